"""Several users per snapshot (issue 14): assignment metrics and the Monte Carlo engine with ``n_users``."""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from daun_lib import Scenario, metrics
from daun_lib import experiments as ex


def _scipy_assigned(est: np.ndarray, tru: np.ndarray) -> np.ndarray:
    out = np.empty(tru.shape[:2])
    for i in range(tru.shape[0]):
        d = np.linalg.norm(tru[i][:, None, :] - est[i][None, :, :], axis=-1)
        r, c = linear_sum_assignment(d)
        out[i, r] = d[r, c]
    return out


@pytest.mark.parametrize("n_users", [1, 2, 3, 4, 5, 6])
def test_assigned_errors_equal_scipy(n_users):
    rng = np.random.default_rng(n_users)
    tru = rng.uniform(-20, 20, (200, n_users, 2))
    est = tru + rng.normal(0, 8, tru.shape)
    got = metrics.assigned_errors(est, tru)
    assert got.shape == (200, n_users)
    np.testing.assert_allclose(got, _scipy_assigned(est, tru), rtol=0, atol=1e-12)
    # estimates in any order give the same errors
    perm = rng.permutation(n_users)
    np.testing.assert_array_equal(metrics.assigned_errors(est[:, perm], tru), got)


def test_assigned_errors_one_user_is_the_plain_distance():
    rng = np.random.default_rng(0)
    tru, est = rng.normal(size=(2, 50, 2))
    np.testing.assert_array_equal(
        metrics.assigned_errors(est[:, None], tru[:, None])[:, 0], metrics.position_errors(est, tru)
    )


def test_user_metrics_values():
    err = np.array([[0.1, 0.5], [0.2, 3.0], [2.0, 4.0], [0.0, 0.9]])
    assert metrics.fraction_all_within(err) == 0.5
    assert metrics.fraction_within_per_user(err) == 5 / 8
    assert metrics.fraction_all_within(err, radius_m=5.0) == 1.0
    assert metrics.mse_per_user(err) == pytest.approx(np.mean(err**2))
    assert metrics.median_error_per_user(err) == pytest.approx(np.median(err))
    assert metrics.fraction_all_within_stderr(err) == pytest.approx(np.sqrt(0.25 / 4))
    frac = np.array([1.0, 0.5, 0.0, 1.0])
    assert metrics.fraction_within_per_user_stderr(err) == pytest.approx(np.std(frac, ddof=1) / 2)
    assert metrics.mse_per_user_stderr(err) == pytest.approx(np.std(np.mean(err**2, axis=1), ddof=1) / 2)
    assert np.isnan(metrics.mse_per_user_stderr(err[:1]))


def test_user_metrics_bad_input():
    with pytest.raises(ValueError, match="estimate, truth"):
        metrics.assigned_errors(np.zeros((3, 2, 2)), np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="estimate"):
        metrics.assigned_errors(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="truth"):
        metrics.assigned_errors(np.zeros((3, 2, 2)), np.full((3, 2, 2), np.nan))
    with pytest.raises(ValueError, match="errors"):
        metrics.fraction_all_within(np.zeros(3))
    with pytest.raises(ValueError, match="errors"):
        metrics.mse_per_user(-np.ones((3, 2)))
    with pytest.raises(ValueError, match="radius_m"):
        metrics.fraction_all_within(np.zeros((3, 2)), radius_m=0.0)


# ---------------------------------------------------------------------------
# the engine with several users: stand-ins (module level: picklable)
# ---------------------------------------------------------------------------
SMALL = Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=12)
SNR = [0.0, 10.0]


class Batch(NamedTuple):
    y: np.ndarray
    positions: np.ndarray
    los: np.ndarray


def coded_simulate(scenario, n, snr_db, seed=None, *, n_users=1):
    """Noise-like y whose BS-0 first 2U entries carry the true positions, so fake methods can read them back."""
    rng = np.random.default_rng(seed)
    half = scenario.area_size / 2
    shape = (n, n_users, 2) if n_users > 1 else (n, 2)
    p = rng.uniform(-half, half, size=shape)
    y = (rng.standard_normal((n, scenario.n_bs, scenario.n_antennas)) + 0j) * 10 ** (snr_db / 20)
    y[:, 0, : 2 * n_users] = p.reshape(n, -1)
    los = rng.random(shape[:-1] + (scenario.n_bs,)) < 0.5
    return Batch(y=y, positions=p, los=los)


def _decode(y, n_users):
    return y[:, 0, : 2 * n_users].real.reshape(y.shape[0], n_users, 2)


def oracle_reversed(scenario, y, n_users):
    """The true positions, users in reverse order (assignment must undo it)."""
    return _decode(y, n_users)[:, ::-1]


def one_far(scenario, y, n_users):
    """User 0 exact but moved 10 m: P(all < 1 m) = 0, per-user P = (U-1)/U."""
    est = _decode(y, n_users).copy()
    est[:, 0, 0] += 10.0
    return est


def jitter(scenario, y, n_users):
    """The true positions plus a sample-dependent offset of up to 0.8 m per coordinate."""
    est = _decode(y, n_users)
    return est + 0.8 * np.sin(7.0 * est)


class Counting:
    def __init__(self, inner=jitter):
        self.inner, self.calls = inner, 0

    @property
    def cache_key(self):
        return f"counting:{self.inner.__qualname__}"

    def __call__(self, scenario, y, n_users):
        self.calls += 1
        return self.inner(scenario, y, n_users)


def msweep(methods, n_users=2, n_trials=10, **kw):
    kw.setdefault("cache_dir", None)
    kw.setdefault("progress", False)
    kw.setdefault("simulate", coded_simulate)
    kw.setdefault("chunk_size", 4)
    return ex.accuracy_sweep(methods, SMALL, kw.pop("snr_db", SNR), n_trials, 3, n_users=n_users, **kw)


def test_two_user_rows_oracle_and_one_far():
    rows, trials = msweep({"oracle": oracle_reversed, "far": one_far, "jit": jitter}, return_trials=True)
    assert [r["method"] for r in rows] == ["oracle"] * 2 + ["far"] * 2 + ["jit"] * 2
    for r in rows:
        assert tuple(r) == ex.MULTI_USER_ROW_FIELDS and r["n_users"] == 2 and r["n_trials"] == 10
    ora, far, jit = rows[0], rows[2], rows[4]
    assert ora["mse"] == 0.0 and ora["p_all_submeter"] == 1.0 and ora["p_submeter"] == 1.0
    assert far["p_all_submeter"] == 0.0 and far["p_submeter"] == 0.5
    assert far["mse"] == pytest.approx(100.0 / 2) and far["median_error"] == pytest.approx(5.0)
    t = trials[("jit", 1)]
    assert t["errors"].shape == (10, 2) and t["estimates"].shape == t["positions"].shape == (10, 2, 2)
    assert t["los"].shape == (10, 2, SMALL.n_bs) and t["los"].dtype == bool
    err = metrics.assigned_errors(t["estimates"], t["positions"])
    np.testing.assert_array_equal(t["errors"], err)
    assert jit["p_all_submeter"] == metrics.fraction_all_within(trials[("jit", 0)]["errors"])
    assert jit["mse"] == metrics.mse_per_user(trials[("jit", 0)]["errors"])
    assert 0.0 < jit["p_all_submeter"] <= jit["p_submeter"] < 1.0
    # common random numbers: the same users for every method, regenerable from trial_seed
    b = coded_simulate(SMALL, 1, SNR[1], seed=ex.trial_seed(3, 1, 7), n_users=2)
    np.testing.assert_array_equal(t["positions"][7], b.positions[0])


def test_three_users_and_chunking_invariance():
    a = msweep({"jit": jitter}, n_users=3, chunk_size=3)
    b = msweep({"jit": jitter}, n_users=3, chunk_size=10)
    assert a == b and a[0]["n_users"] == 3


def test_cache_resume_and_key_separates_n_users(tmp_path):
    m = Counting()
    ref = msweep({"M": m}, cache_dir=tmp_path)
    assert m.calls == 2 * 3
    folder = next(tmp_path.glob("M-*"))
    params = json.loads((folder / "params.json").read_text())
    assert params["n_users"] == 2 and folder.name == f"M-{ex.params_hash(params)}"
    with np.load(next(folder.glob("snr*.npz")), allow_pickle=False) as f:
        assert f["errors"].shape == (4, 2) and f["estimates"].shape == (4, 2, 2) and f["los"].shape == (4, 2, 4)
    # resume: delete one chunk, only it is recomputed
    next(folder.glob("snr001-*.npz")).unlink()
    m2 = Counting()
    assert msweep({"M": m2}, cache_dir=tmp_path) == ref
    assert m2.calls == 1
    m3 = Counting()
    assert msweep({"M": m3}, cache_dir=tmp_path) == ref and m3.calls == 0
    # U = 3 and U = 1 never reuse the U = 2 chunks
    m4 = Counting()
    msweep({"M": m4}, n_users=3, cache_dir=tmp_path)
    assert m4.calls == 2 * 3
    single = ex.accuracy_sweep(
        {"M": lambda s, y: _decode(y, 1)[:, 0]},
        SMALL,
        SNR,
        10,
        3,
        cache_dir=tmp_path,
        progress=False,
        simulate=coded_simulate,
        chunk_size=4,
    )
    assert tuple(single[0]) == ex.ROW_FIELDS and single[0]["mse"] == 0.0
    assert len(list(tmp_path.glob("M-*"))) == 3


def test_tampered_two_user_chunk_is_recomputed(tmp_path):
    ref = msweep({"M": Counting()}, cache_dir=tmp_path)
    path = sorted(tmp_path.rglob("snr*.npz"))[0]
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "checksum"}
    arrays["errors"] = arrays["errors"][:, ::-1].copy()  # checksum made consistent: only the recomputation catches it
    ex.save_chunk(path, arrays)
    m = Counting()
    with pytest.warns(ex.CacheWarning, match="assigned errors"):
        assert msweep({"M": m}, cache_dir=tmp_path) == ref
    assert m.calls == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_n_users_validation(bad):
    with pytest.raises(ValueError, match="n_users"):
        msweep({"jit": jitter}, n_users=bad)
    with pytest.raises(ValueError, match="n_users"):
        ex.plan_sweep({"jit": jitter}, SMALL, SNR, 2, 0, cache_dir=None, n_users=bad)


def test_wrong_shapes_and_non_finite_estimates_raise():
    with pytest.raises(RuntimeError, match=r"method 'bad' failed .*shape"):
        msweep({"bad": lambda s, y, u: np.zeros((y.shape[0], 2))})
    with pytest.raises(RuntimeError, match=r"method 'nan' failed .*non-finite"):
        msweep({"nan": lambda s, y, u: np.full((y.shape[0], u, 2), np.nan)})

    def single_user_positions(scenario, n, snr_db, seed=None, *, n_users=1):
        return coded_simulate(scenario, n, snr_db, seed)

    with pytest.raises(ValueError, match=r"simulate: .*positions of shape \(1, 2, 2\)"):
        msweep({"jit": jitter}, simulate=single_user_positions)


def test_one_user_path_unchanged():
    """n_users=1 calls the generator and the methods without n_users and gives the single-user rows."""

    def sim(scenario, n, snr_db, seed=None):  # no n_users keyword: must not be passed one
        return coded_simulate(scenario, n, snr_db, seed)

    rows = ex.accuracy_sweep(
        {"M": lambda s, y: _decode(y, 1)[:, 0] + 0.5}, SMALL, SNR, 6, 1, cache_dir=None, progress=False, simulate=sim
    )
    assert tuple(rows[0]) == ex.ROW_FIELDS
    assert rows[0]["mse"] == pytest.approx(0.5) and rows[0]["p_submeter"] == 1.0


def test_real_two_user_channel_and_multi_registry_names(tmp_path):
    """channel.simulate(..., n_users=2) and MULTI_REGISTRY names through the engine, cached and reloaded."""
    from daun_lib.multiuser import MULTI_REGISTRY

    kw = dict(cache_dir=tmp_path, progress=False, chunk_size=3, n_users=2)
    rows, trials = ex.accuracy_sweep(["DPD-peaks", "DPD-SIC"], SMALL, [20.0], 5, 1, return_trials=True, **kw)
    assert [r["method"] for r in rows] == ["DPD-peaks", "DPD-SIC"]
    assert trials[("DPD-SIC", 0)]["los"].shape == (5, 2, SMALL.n_bs)
    from daun_lib import channel

    b = channel.simulate(SMALL, 1, 20.0, seed=ex.trial_seed(1, 0, 4), n_users=2)
    np.testing.assert_array_equal(trials[("DPD-peaks", 0)]["positions"][4], b.positions[0])
    est = MULTI_REGISTRY["DPD-peaks"](SMALL, b.y, 2)
    np.testing.assert_array_equal(trials[("DPD-peaks", 0)]["estimates"][4], est[0])
    assert ex.accuracy_sweep(["DPD-peaks", "DPD-SIC"], SMALL, [20.0], 5, 1, **kw) == rows
    with pytest.raises(ValueError, match="unknown method 'DPD'"):
        ex.accuracy_sweep(["DPD"], SMALL, [20.0], 5, 1, **kw)
