"""The localiser contract, checked on every registered entry and every registered readout.

Every entry of :data:`daun_lib.localizers.LOCALIZERS` (so of both ``methods.REGISTRY`` and
``multiuser.MULTI_REGISTRY``) and every readout of :data:`daun_lib.readouts.READOUTS` goes through
the same checks (in the spirit of deepinv's parametrised operator tests and scikit-learn's
``parametrize_with_checks``): a new entry is tested by being registered.

* output shape ``(n, 2)`` / ``(n, U, 2)``, float64, finite;
* ``localizer(scenario, y)`` is ``locate(scenario, y, 1)[:, 0]``;
* several users: served (``multi_user``) or refused with ``ValueError`` naming ``n_users``;
* the declared scale behaviour: ``scale_invariant`` entries give the positions of ``y`` for
  ``c * y`` (exactly for grid picks, to round-off otherwise); the others refuse data far below
  their noise power with ``ValueError`` naming ``y``;
* an all-zero sample and bad ``n_users`` refused with ``ValueError`` naming the argument;
* determinism; and the multi-user entries at ``n_users = 1`` equal their single-user twin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import pytest

from daun_lib import Scenario, admm, channel, methods, multiuser, readouts
from daun_lib.baselines.dpd import DPDLocalizer
from daun_lib.localizers import LOCALIZERS, MapLocalizer, register_localizer
from daun_lib.readouts import READOUTS, register_readout

SC = Scenario()
N_SAMPLES = 3
NAMES = sorted(LOCALIZERS)
#: Readouts whose positions are grid cell centres: exactly scale-free.
GRID_READOUTS = {"argmax", "grid", "alg1"}

#: The single-user twin of each multi-user entry: the same positions at ``n_users = 1``.
TWINS = {
    "DPD-peaks": "DPD",
    "DPD-SIC": "DPD",
    "OMP": "DPD",
    "P-ADMM-peaks": "P-ADMM",
    "DAUN-peaks": "DAUN",
    "DPD-peaks-S": "DPD-S",
    "DPD-SIC-ML": "DPD-ML",
    "DPD-AP": "DPD-ML",
    "DAUN-peaks-S": "DAUN-S",
}
#: Entries without a registered single-user twin, and why.
NO_TWIN = {
    "DPD-peaks-APM": "the multi-start readout tries two starts for one user",
    "P-ADMM-peaks-APM": "the multi-start readout tries two starts for one user",
    "DAUN-MU-APM": "the multi-start readout tries two starts for one user",
    "DPD-peaks-APR": "the multi-start readout (then nothing to re-search) tries two starts for one user",
    "DAUN-MU-APR": "the multi-start readout (then nothing to re-search) tries two starts for one user",
    "P-ADMM-peaks-AP": "P-ADMM with the 'ml' readout is not a registered entry (checked below)",
    "P-ADMM-peaks-S": "P-ADMM with the 'subgrid' readout is not a registered entry (checked below)",
    "DAUN-MU": "the two-user network has no single-user entry",
    "DAUN-MU-S": "the two-user network has no single-user entry",
    "DAUN-MU-AP": "the two-user network has no single-user entry",
}


@lru_cache(maxsize=1)
def data() -> tuple[np.ndarray, np.ndarray]:
    """One-user and two-user snapshots at 15 dB (fixed seeds)."""
    one = channel.simulate(SC, N_SAMPLES, 15.0, seed=2024).y
    two = one + channel.simulate(SC, N_SAMPLES, 15.0, seed=2025).y
    return one, two


@cache
def positions(name: str, n_users: int, scale: float = 1.0) -> np.ndarray:
    one, two = data()
    y = (one if n_users == 1 else two) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # high-SNR notes of the Bayesian methods are not the point here
        return LOCALIZERS[name][0].locate(SC, y, n_users)


def _entry(name):
    return LOCALIZERS[name][0]


def _is_grid(loc) -> bool:
    return isinstance(loc, MapLocalizer) and loc.readout in GRID_READOUTS


@pytest.mark.parametrize("name", NAMES)
def test_one_user_shape_dtype_finite(name):
    p = positions(name, 1)
    assert p.shape == (N_SAMPLES, 1, 2) and p.dtype == np.float64
    assert np.isfinite(p).all()
    one, _ = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(_entry(name)(SC, one), p[:, 0])  # the call form is the one-user locate


@pytest.mark.parametrize("name", NAMES)
def test_several_users_served_or_refused(name):
    loc = _entry(name)
    if loc.multi_user:
        p = positions(name, 2)
        assert p.shape == (N_SAMPLES, 2, 2) and p.dtype == np.float64 and np.isfinite(p).all()
        assert np.array_equal(_entry(name)(SC, data()[1], 2), p)
    else:
        with pytest.raises(ValueError, match="n_users"):
            loc.locate(SC, data()[1], 2)


@pytest.mark.parametrize("name", NAMES)
def test_declared_scale_behaviour(name):
    loc = _entry(name)
    if loc.scale_invariant:
        for c in (1e-3, 1e3):
            if _is_grid(loc):
                assert np.array_equal(positions(name, 1, c), positions(name, 1))
            else:  # continuous readouts: round-off (float32 maps move sub-grid fits by ~1e-5 m)
                np.testing.assert_allclose(positions(name, 1, c), positions(name, 1), atol=1e-4)
    else:  # in units of the noise power: data far below it are refused, not answered
        with pytest.raises(ValueError, match="^y: "):
            loc.locate(SC, 1e-4 * data()[0], 1)


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_sample_refused(name):
    y = data()[0].copy()
    y[1] = 0.0
    with pytest.raises(ValueError, match="y"):
        _entry(name).locate(SC, y, 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None, SC.n_grid + 1])
def test_bad_n_users_refused(name, bad):
    with pytest.raises(ValueError, match="n_users"):
        _entry(name).locate(SC, data()[0], bad)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name):
    loc = _entry(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = loc.locate(SC, data()[0], 1)
    assert np.array_equal(again, positions(name, 1))


def test_every_multi_user_entry_has_a_twin_or_a_reason():
    assert set(multiuser.MULTI_REGISTRY) == set(TWINS) | set(NO_TWIN)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_one_user_equals_the_single_user_entry(name):
    twin = positions(TWINS[name], 1)
    if TWINS[name] in ("DPD", "P-ADMM", "DAUN"):  # grid picks: the same cells
        assert np.array_equal(positions(name, 1), twin)
    else:
        np.testing.assert_allclose(positions(name, 1), twin, atol=1e-9)


@pytest.mark.parametrize("name, readout", [("P-ADMM-peaks-AP", "ml"), ("P-ADMM-peaks-S", "subgrid")])
def test_padmm_multi_entries_at_one_user(name, readout):
    want = methods.PADMMLocalizer(readout=readout).locate(SC, data()[0], 1)
    np.testing.assert_allclose(positions(name, 1), want, atol=1e-9)


@pytest.mark.parametrize("name, readout", [("DPD-MMSE", "mmse"), ("DPD-Disk", "disk")])
def test_posterior_estimators_equal_the_map_readout_they_replace(name, readout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = DPDLocalizer(readout=readout)(SC, data()[0])
    assert np.array_equal(positions(name, 1)[:, 0], want)


# ------------------------------------------------------------------------------------------------
# Readouts


@dataclass(frozen=True)
class _FewIterations(MapLocalizer):
    """X (n, K, M) of 20 P-ADMM iterations: a cheap map estimator that every readout accepts."""

    def _map(self, scenario, y):
        A, B = methods.dictionaries(scenario)
        return admm.solve(A, B, y, iterations=20, **admm.default_params(A, B).as_kwargs()).X


@pytest.mark.parametrize("readout", sorted(READOUTS))
def test_every_readout_serves_its_declared_users(readout):
    loc = _FewIterations(readout=readout)
    one, two = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = loc.locate(SC, one, 1)
        assert p.shape == (N_SAMPLES, 1, 2) and np.isfinite(p).all()
        r = READOUTS[readout]
        if r.multi_user:
            q = loc.locate(SC, two, 3)
            assert q.shape == (N_SAMPLES, 3, 2) and np.isfinite(q).all()
        else:
            with pytest.raises(ValueError, match=f"n_users: readout {readout!r} places one user"):
                loc.locate(SC, two, 2)


def test_a_readout_returning_nan_or_the_wrong_shape_is_refused():
    def nan_readout(score, scenario, y):
        return np.full((score.shape[0], 2), np.nan)

    def short_readout(score, scenario, y):
        return np.zeros((score.shape[0] - 1, 2))

    try:
        register_readout("test-nan", nan_readout)
        register_readout("test-short", short_readout)
        with pytest.raises(ValueError, match="readout 'test-nan': returned NaN"):
            DPDLocalizer(readout="test-nan")(SC, data()[0])
        with pytest.raises(ValueError, match=r"readout 'test-short': returned .* shape \(2, 1, 2\)"):
            DPDLocalizer(readout="test-short")(SC, data()[0])
    finally:
        READOUTS.pop("test-nan", None)
        READOUTS.pop("test-short", None)


def test_a_users_multi_user_readout_and_entry_join_the_contract():
    def strongest_cells(score, scenario, y, n_users, *, cells, suppression_m):
        # the U best cells without suppression: a deliberately naive readout
        s = score if score.ndim == 2 else (abs(score) ** 2).sum(axis=2)
        return cells[np.argsort(-s, axis=1)[:, :n_users]]

    try:
        register_readout("test-strongest", strongest_cells, multi_user=True)
        register_localizer("test-DPD-strongest", DPDLocalizer(readout="test-strongest"), multi_user=True)
        assert "test-DPD-strongest" in multiuser.MULTI_REGISTRY and "test-DPD-strongest" not in methods.REGISTRY
        p = multiuser.MULTI_REGISTRY["test-DPD-strongest"](SC, data()[1], 2)
        assert p.shape == (N_SAMPLES, 2, 2)
        # with one user the naive readout is the grid argmax
        assert np.array_equal(DPDLocalizer(readout="test-strongest").locate(SC, data()[0], 1), positions("DPD", 1))
    finally:
        READOUTS.pop("test-strongest", None)
        LOCALIZERS.pop("test-DPD-strongest", None)


def test_registration_checks_its_arguments():
    with pytest.raises(ValueError, match="localizer: expected a daun_lib.localizers.Localizer"):
        register_localizer("x", lambda s, y: y)
    with pytest.raises(ValueError, match="name: localizer 'DPD' is already registered"):
        register_localizer("DPD", DPDLocalizer())
    with pytest.raises(ValueError, match="localizer: .* serves one user"):
        register_localizer("x", methods.REGISTRY["Stansfield"], multi_user=True)
    with pytest.raises(ValueError, match="multi_user: expected True or False"):
        register_readout("x", lambda s, c, y: None, multi_user="yes")
    with pytest.raises(TypeError):
        methods.REGISTRY["x"] = DPDLocalizer()  # a read-only view: register_localizer adds entries
    assert readouts.get_readout("grid") is not None
