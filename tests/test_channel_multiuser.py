"""Several users in one snapshot (issue 14): ``channel.simulate(..., n_users=U)``.

Model: ``y_m = sum_u sqrt(omega_u) h_{u,m} + n_m`` with one noise draw ``n_m ~ CN(0, I_N)``; each
user its own position, LoS states, channel (``||h_{u,m}||^2 = N``) and SNR.

The single-user batch must not move: ``test_one_user_matches_reference`` compares 4 batches (y, h,
positions, LoS states, SNR, heights) with ``tests/data/channel_one_user_reference.npz`` (written by
``tests/data/make_channel_references.py``, which says what is stored and how it is compared), and
``n_users=1`` must give the very same arrays, bit for bit, as the call without it.  This test first
compared SHA-256 digests of the arrays from the code before ``n_users`` existed (5404456), recorded
on another platform; the digests were platform-dependent (numpy's float64 exp/sin/log/power differ in the
last bit between CPUs and libms) and failed on the CI machine with the model unchanged.  The
references were regenerated on the CI machine (numpy 2.4.6, AMD EPYC) from the current code, which
gives there batches bit-identical to those of 5404456; they are compared at rtol 1e-10 and an
absolute 1e-12 of each array's largest magnitude (far below any modelling change), LoS states
exactly.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib import channel as ch
from daun_lib.scenario import steering

SC = Scenario()
M, N = SC.n_bs, SC.n_antennas


def _load_references():
    """``tests/data/make_channel_references.py``: the reference cases, files and comparison."""
    path = Path(__file__).parent / "data" / "make_channel_references.py"
    spec = importlib.util.spec_from_file_location("make_channel_references", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_REFS = _load_references()


def _residual(b: ch.ChannelBatch) -> np.ndarray:
    """``y - sum_u sqrt(omega_u) h_u``, (n, M, N): the noise."""
    amp = np.sqrt(10.0 ** (b.snr_db / 10.0))
    return b.y - (amp[:, :, None, None] * b.h).sum(axis=1)


def _same(a: ch.ChannelBatch, b: ch.ChannelBatch) -> bool:
    return all(x.dtype == z.dtype and np.array_equal(x, z) for x, z in zip(a, b, strict=True))


# ----------------------------------------------------------------------------- one user: unchanged
@pytest.mark.parametrize("name", sorted(_REFS.CASES_ONE_USER))
def test_one_user_matches_reference(name):
    kw, n, snr, seed = _REFS.CASES_ONE_USER[name]
    sc = Scenario(**kw)
    b = ch.simulate(sc, n, snr, seed)
    _REFS.assert_matches_reference(_REFS.FILE_ONE_USER, name, b)
    for extra in ({"n_users": 1}, {"n_users": 1, "min_separation_m": 0.0, "power_spread_db": 0.0}):
        assert _same(ch.simulate(sc, n, snr, seed, **extra), b)


def test_experiment_cache_key_of_simulate_is_pinned():
    # the sweep keys its generator by fingerprint (module, name, defaults, keyword defaults); a change of
    # the signature moves every cache key that uses simulate, so it must be deliberate: update the value
    # below only together with such a change (it moved once, when n_users became keyword-only arguments)
    from daun_lib._fingerprint import fingerprint

    assert ch.simulate.__defaults__ == (None,)
    assert ch.simulate.__kwdefaults__ == {"n_users": 1, "min_separation_m": 0.0, "power_spread_db": 0.0}
    assert fingerprint(ch.simulate, name="simulate")[:16] == "994a7cbc48025a68"
    params = inspect.signature(ch.simulate).parameters
    assert [params[k].default for k in ("n_users", "min_separation_m", "power_spread_db")] == [1, 0.0, 0.0]
    with pytest.raises(TypeError, match="n_user"):
        ch.simulate(SC, 1, 10.0, 0, n_user=2)


def test_one_user_ignores_min_separation():
    assert _same(ch.simulate(SC, 3, 5.0, 4, min_separation_m=10.0), ch.simulate(SC, 3, 5.0, 4))


# ----------------------------------------------------------------------------- shapes and the model
@pytest.mark.parametrize("U", [2, 3])
def test_shapes_dtypes_and_unit_norm(U):
    n = 4
    b = ch.simulate(SC, n, 10.0, 0, n_users=U)
    assert b.y.shape == (n, M, N) and b.y.dtype == np.complex128
    assert b.positions.shape == (n, U, 2) and b.positions.dtype == np.float64
    assert b.los.shape == (n, U, M) and b.los.dtype == np.bool_
    assert b.snr_db.shape == (n, U) and np.all(b.snr_db == 10.0)
    assert b.h.shape == (n, U, M, N) and b.h.dtype == np.complex128
    assert b.ut_heights.shape == (n, U) and np.all(b.ut_heights == SC.ut_height_m)
    np.testing.assert_allclose(np.sum(np.abs(b.h) ** 2, axis=-1), N, rtol=1e-12)
    assert np.all(np.abs(b.positions) <= SC.area_size / 2)
    assert b.los.all()  # the paper's "always"


def test_y_is_the_superposition_plus_unit_noise():
    b = ch.simulate(SC, 15, 10.0, 1, n_users=2)  # 15 * 4 * 50 = 3000 noise entries
    e = _residual(b)
    # CN(0, 1): E|e|^2 = 1 (sd of the mean 1/sqrt(3000) = 0.018), real and imaginary parts N(0, 1/2)
    assert abs(np.mean(np.abs(e) ** 2) - 1.0) < 0.08
    assert abs(np.var(e.real) - 0.5) < 0.05 and abs(np.var(e.imag) - 0.5) < 0.05
    assert abs(np.mean(e.real)) < 0.06 and abs(np.mean(e.imag)) < 0.06
    # one noise draw whatever the SNR: same seed, another SNR -> the same users, channels and noise
    b2 = ch.simulate(SC, 15, 20.0, 1, n_users=2)
    assert np.array_equal(b2.positions, b.positions) and np.array_equal(b2.h, b.h)
    np.testing.assert_allclose(_residual(b2), e, atol=1e-9)
    assert not np.allclose(b.y, b2.y)


def test_each_user_has_its_own_los_channel():
    # pure LoS: h[i, u, m] = exp(j phi) sqrt(N) a_m(u_m(p_u)), so each user's channel points at its own position
    sc = Scenario(multipath=False)
    n, U = 5, 3
    b = ch.simulate(sc, n, 10.0, 2, n_users=U)
    a = steering(np.arcsin(sc.los_sines(b.positions.reshape(n * U, 2))), N, sc.antenna_spacing).reshape(n, U, M, N)
    # |a^H h|^2 / N: 1 for the user's own steering vector, a sidelobe level for another user's
    gain = np.abs(np.sum(np.conj(a)[:, :, None] * b.h[:, None], axis=-1)) ** 2 / N  # (n, U_a, U_h, M)
    own = np.einsum("iuum->ium", gain)
    np.testing.assert_allclose(own, 1.0, rtol=1e-9)
    other = gain[:, ~np.eye(U, dtype=bool)]
    assert np.median(other) < 0.5


def test_los_states_per_user():
    n, U = 200, 3
    b = ch.simulate(Scenario(los_model=0.5), n, 10.0, 3, n_users=U)
    frac = b.los.mean(axis=(0, 2))  # per user; sd sqrt(0.25 / 800) = 0.018
    assert np.all(np.abs(frac - 0.5) < 0.07)
    assert (b.los[:, 0] != b.los[:, 1]).mean() > 0.3  # independent users (0.5 expected)
    b3 = ch.simulate(Scenario(los_model="3gpp"), 6, 10.0, 3, n_users=2)
    assert b3.los.shape == (6, 2, M)


def test_three_d_with_per_user_heights():
    sc = Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0))
    n, U = 6, 2
    b = ch.simulate(sc, n, 10.0, 4, n_users=U)
    assert b.ut_heights.shape == (n, U)
    assert np.all((b.ut_heights >= 1.5) & (b.ut_heights <= 10.0))
    assert np.unique(b.ut_heights).size == n * U
    np.testing.assert_allclose(np.sum(np.abs(b.h) ** 2, axis=-1), N, rtol=1e-12)
    b_fixed = ch.simulate(Scenario(geometry="3d"), n, 10.0, 4, n_users=U)
    assert np.all(b_fixed.ut_heights == sc.ut_height_m)
    assert np.array_equal(b_fixed.positions, b.positions)  # heights from the jumped-ahead stream


# ----------------------------------------------------------------------------- seeds
def test_reproducible_with_the_seed():
    kw = {"n_users": 3, "min_separation_m": 5.0, "power_spread_db": 6.0}
    a = ch.simulate(SC, 4, 5.0, 7, **kw)
    assert _same(a, ch.simulate(SC, 4, 5.0, 7, **kw))
    assert _same(a, ch.simulate(SC, 4, 5.0, np.random.default_rng(7), **kw))
    assert not np.array_equal(a.positions, ch.simulate(SC, 4, 5.0, 8, **kw).positions)
    # any numpy Generator works (the child stream is PCG64), heights included
    sc = Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0))
    g = ch.simulate(sc, 2, 5.0, np.random.Generator(np.random.MT19937(1)), n_users=2)
    assert g.ut_heights.shape == (2, 2)


# ----------------------------------------------------------------------------- separation and power spread
def test_min_separation_respected():
    n, U, d = 100, 3, 15.0
    b = ch.simulate(SC, n, 10.0, 5, n_users=U, min_separation_m=d)
    dist = np.linalg.norm(b.positions[:, :, None] - b.positions[:, None], axis=-1)
    iu = np.triu_indices(U, k=1)
    assert dist[:, iu[0], iu[1]].min() >= d
    free = ch.simulate(SC, n, 10.0, 5, n_users=U)
    fd = np.linalg.norm(free.positions[:, :, None] - free.positions[:, None], axis=-1)
    assert fd[:, iu[0], iu[1]].min() < d  # the constraint did something


def test_power_spread_range_and_use():
    n, U, s = 50, 2, 6.0
    b = ch.simulate(SC, n, 10.0, 6, n_users=U, power_spread_db=s)
    assert np.all((b.snr_db >= 10.0 - s / 2) & (b.snr_db <= 10.0 + s / 2))
    assert np.ptp(b.snr_db) > s / 2  # spread over the range
    assert abs(np.mean(np.abs(_residual(b)) ** 2) - 1.0) < 0.05  # y built with the per-user SNR
    flat = ch.simulate(SC, n, 10.0, 6, n_users=U)
    assert np.array_equal(flat.positions, b.positions) and np.array_equal(flat.h, b.h)
    # per-sample SNR input: offsets around each sample's SNR
    snr = np.linspace(-5.0, 15.0, n)
    c = ch.simulate(SC, n, snr, 6, n_users=U, power_spread_db=s)
    assert np.all(np.abs(c.snr_db - snr[:, None]) <= s / 2)


# ----------------------------------------------------------------------------- invalid arguments
@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_users": ch.MAX_USERS + 1}, "n_users"),
        ({"n_users": 2.0}, "n_users"),
        ({"n_users": True}, "n_users"),
        ({"n_users": "2"}, "n_users"),
        ({"n_users": 2, "min_separation_m": -1.0}, "min_separation_m"),
        ({"n_users": 2, "min_separation_m": float("nan")}, "min_separation_m"),
        ({"n_users": 2, "min_separation_m": float("inf")}, "min_separation_m"),
        ({"n_users": 2, "min_separation_m": 60.0}, "min_separation_m"),  # > diagonal 56.6 m
        ({"n_users": 16, "min_separation_m": 20.0}, "min_separation_m"),  # packing bound
        ({"n_users": 2, "min_separation_m": 56.0}, "min_separation_m"),  # rejection gives up
        ({"n_users": 2, "power_spread_db": -1.0}, "power_spread_db"),
        ({"n_users": 2, "power_spread_db": float("nan")}, "power_spread_db"),
        ({"power_spread_db": 3.0}, "power_spread_db"),  # one user
        ({"n_users": 2, "power_spread_db": 400.0}, "power_spread_db"),  # leaves SNR_DB_RANGE
    ],
)
def test_invalid_arguments_are_named(kw, name):
    with pytest.raises(ValueError, match=name):
        ch.simulate(SC, 2, 10.0, 0, **kw)


@pytest.mark.parametrize(
    ("U", "d", "why"),
    [(2, 60.0, "diagonal"), (16, 20.0, "packing bound"), (2, 56.0, "redraw rounds")],
)
def test_impossible_separation_says_why(U, d, why):
    with pytest.raises(ValueError, match=f"min_separation_m: .*{why}"):
        ch.simulate(SC, 1, 10.0, 0, n_users=U, min_separation_m=d)
