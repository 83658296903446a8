"""Property tests (issue 24): every entry of :data:`daun_lib.methods.REGISTRY` over random valid and invalid ``y``.

Valid input (one user, a batch of 1 to 4 samples of ``channel.simulate`` at -10 to 30 dB) gives finite (n, 2)
positions; invalid ``y`` (wrong shape, NaN / inf, empty, non-numeric dtype, an all-zero sample) raises a
``ValueError`` naming ``y``.  A new registry entry is covered without editing this file.

The examples are derandomised (the same in every run) and few, so ``make test`` stays quick;
``DAUN_PROPERTY_PROFILE=long pytest tests/test_properties.py`` runs many more, drawn at random.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from daun_lib import Scenario, channel
from daun_lib.methods import REGISTRY

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

PROFILES = {
    "quick": hypothesis.settings(derandomize=True, max_examples=5, deadline=None, database=None),
    "long": hypothesis.settings(max_examples=200, deadline=None, database=None),
}
SETTINGS = PROFILES[os.environ.get("DAUN_PROPERTY_PROFILE", "quick")]

SC = Scenario()
M, N = SC.n_bs, SC.n_antennas
METHODS = sorted(REGISTRY)
BASE = channel.simulate(SC, 3, 10.0, seed=0).y  # (3, M, N): the valid batch that the invalid inputs spoil


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@hypothesis.given(
    n=st.integers(1, 4),
    snr_db=st.floats(-10.0, 30.0, allow_nan=False),
    seed=st.integers(0, 2**32 - 1),
)
def test_valid_y_gives_finite_positions(method, n, snr_db, seed):
    y = channel.simulate(SC, n, snr_db, seed=seed).y
    p = REGISTRY[method](SC, y)
    assert isinstance(p, np.ndarray) and p.shape == (n, 2) and p.dtype == np.float64
    assert np.isfinite(p).all()


KINDS = ["shape", "ndim", "nonfinite", "empty", "dtype", "zero"]


@st.composite
def invalid_y(draw, kind):
    """A ``y`` of the given kind that no localiser may answer."""
    if kind == "shape":
        m, k = draw(st.tuples(st.integers(1, 6), st.integers(1, 60)).filter(lambda s: s != (M, N)))
        return np.ones((draw(st.integers(1, 3)), m, k), dtype=complex)
    if kind == "ndim":
        return BASE.reshape(draw(st.sampled_from([(-1,), (1, 3, M, N), (3, M, N, 1)])))
    if kind == "nonfinite":
        y = BASE.copy()
        i = draw(st.integers(0, y.size - 1))
        bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        y.flat[i] = complex(bad, 0.0) if draw(st.booleans()) else complex(0.0, bad)
        return y
    if kind == "empty":
        return np.empty(draw(st.sampled_from([(0, M, N), (0, N), (M, 0)])), dtype=complex)
    if kind == "dtype":
        return BASE.astype(draw(st.sampled_from([object, str, bool])))
    y = BASE.copy()  # "zero": one sample all zero
    y[draw(st.integers(0, y.shape[0] - 1))] = 0.0
    return y


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@hypothesis.given(data=st.data())
def test_invalid_y_raises_naming_y(method, kind, data):
    y = data.draw(invalid_y(kind))
    with pytest.raises(ValueError, match=r"^y: "):
        REGISTRY[method](SC, y)
