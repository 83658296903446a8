"""The cases listed in issue 24 ("No silent wrong answer"): each gives a correct number or a
``ValueError`` naming the argument.  One test per case; each fails on the behaviour the issue found.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from daun_lib import Scenario, admm, bounds, channel, continuous, experiments, joint_ml, posterior
from daun_lib.baselines import dpd, mm
from daun_lib.localizers import Localizer
from daun_lib.readouts import READOUTS, register_readout
from daun_lib.studies import limits

SC = Scenario()


@pytest.fixture(scope="module")
def batch():
    return channel.simulate(SC, 3, 10.0, seed=0)


@pytest.fixture
def readout_names():
    """Names registered by a test, removed afterwards (the registry is global)."""
    names: list[str] = []
    yield names
    for name in names:
        READOUTS.pop(name, None)


# 1 ------------------------------------------------------------------------------------------------
def test_user_readout_output_is_checked_when_a_localiser_is_called_directly(batch, readout_names):
    bad = {
        "issue24-nan": lambda s, sc, y: np.full((y.shape[0], 2), np.nan),
        "issue24-n3": lambda s, sc, y: np.zeros((y.shape[0], 3)),
        "issue24-n-1": lambda s, sc, y: np.zeros((y.shape[0] - 1, 2)),
    }
    for name, fn in bad.items():
        register_readout(name, fn)
        readout_names.append(name)
        loc = dpd.DPDLocalizer(readout=name)
        with pytest.raises(ValueError, match=f"readout '{name}'"):
            loc(SC, batch.y)
        with pytest.raises(ValueError, match=f"readout '{name}'"):
            loc.locate(SC, batch.y, 1)
    # a multi-user readout returning too few users, and a localiser whose own output is wrong
    register_readout("issue24-multi", lambda s, sc, y, n_users, **kw: np.zeros((y.shape[0], 1, 2)), multi_user=True)
    readout_names.append("issue24-multi")
    with pytest.raises(ValueError, match="readout 'issue24-multi'"):
        dpd.DPDLocalizer(readout="issue24-multi").locate(SC, batch.y, 2)

    class Wrong(Localizer):
        def _locate(self, scenario, y):
            return np.zeros((y.shape[0], 3))

    with pytest.raises(ValueError, match="Wrong"):
        Wrong()(SC, batch.y)


# 2 ------------------------------------------------------------------------------------------------
def test_ml_localize_refuses_a_start_outside_the_area_as_joint_ml_does(batch):
    p = batch.positions
    near = continuous.ml_localize(SC, batch.y, start=p)
    assert np.linalg.norm(near - p, axis=1).max() < 1.0  # a start inside the area: a correct number
    for fn in (
        lambda s: continuous.ml_localize(SC, batch.y, start=s),
        lambda s: continuous.newton_ml(SC, batch.y, start=s),
        lambda s: joint_ml.joint_newton(SC, batch.y, s[:, None]),
    ):
        with pytest.raises(ValueError, match=r"^start: expected points inside the user area"):
            fn(p + 100.0)
    edge = np.full_like(p, SC.area_size / 2.0)  # on the boundary: inside
    assert np.isfinite(continuous.ml_localize(SC, batch.y, start=edge)).all()


# 3 ------------------------------------------------------------------------------------------------
def test_closest_report_does_not_depend_on_row_order_with_a_nan_mse():
    nan = {"method": "Broken", "snr_db": 0.0, "mse": np.nan, "mse_over_crb": np.nan, "mse_over_ml": np.nan}
    good = {"method": "Good", "snr_db": 0.0, "mse": 2.0, "mse_over_crb": 3.0, "mse_over_ml": 1.5}
    first, last = limits.closest_report([nan, good]), limits.closest_report([good, nan])
    assert first == last
    assert first.startswith("0 dB: Good (MSE 2 m^2")
    assert "no finite MSE: Broken" in first
    assert limits.closest_report([nan]) == "0 dB: no method with a finite MSE (Broken)"


# 4 ------------------------------------------------------------------------------------------------
def test_crb_refuses_snr_beyond_the_range_of_simulate():
    p = np.zeros((2, 2))
    lo, hi = channel.SNR_DB_RANGE
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        for snr in (1e4, -1e4, hi + 1.0, lo - 1.0):
            for fn in (bounds.crb_trace, bounds.position_fim, bounds.position_crb):
                with pytest.raises(ValueError, match=r"^snr_db: .*SNR_DB_RANGE"):
                    fn(SC, p, snr)
            with pytest.raises(ValueError, match=r"^snr_db: "):
                bounds.mean_crb_trace(SC, snr, n=4)
            with pytest.raises(ValueError, match=r"^snr_db: "):
                bounds.sine_information(SC, snr)
        at_cap = bounds.crb_trace(SC, p, hi)
    assert np.isfinite(at_cap).all() and (at_cap > 0).all()
    assert at_cap[0] == pytest.approx(bounds.crb_trace(SC, p, 0.0)[0] * 10 ** (-hi / 10), rel=1e-12)


# 5 ------------------------------------------------------------------------------------------------
def test_joint_fit_refuses_y_whose_energy_overflows(batch):
    p = batch.positions[:, None]
    fit = joint_ml.joint_fit(SC, batch.y, p)
    assert np.isfinite(fit).all() and (fit > 0).all()
    big = joint_ml.joint_fit(SC, batch.y * 1e100, p)
    np.testing.assert_allclose(big, fit * 1e200, rtol=1e-12)  # exact scale behaviour inside the guard
    for scale in (1e200, 1e-200):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"^y: sample 0 has magnitudes"):
                joint_ml.joint_fit(SC, batch.y * scale, p)


# 6 ------------------------------------------------------------------------------------------------
def test_entry_points_taking_y_say_another_geometry_cannot_be_told():
    from daun_lib.daun import DAUN

    for fn in (Localizer.__call__, Localizer.locate, admm.solve, DAUN.localize, channel.simulate):
        doc = " ".join(inspect.getdoc(fn).split())
        assert "another geometry of the same shape" in doc, fn.__qualname__
        assert "issue 22" in doc, fn.__qualname__


# 7 ------------------------------------------------------------------------------------------------
def test_posterior_params_refuse_snr_beyond_the_range_of_simulate():
    lo, hi = channel.SNR_DB_RANGE
    for snr in (1e6, -1e6, hi + 1.0, lo - 1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"^snr_db: expected None or a number in \[-150, 150\] dB"):
            posterior.PosteriorParams(snr_db=snr)
    assert posterior.PosteriorParams(snr_db=hi).snr_db == hi


# 8 ------------------------------------------------------------------------------------------------
def test_penalised_objective_names_x_and_z_of_the_wrong_shape():
    rng = np.random.default_rng(0)
    M, N, K, L, n = 2, 4, 5, 3, 2
    A = rng.standard_normal((M, N, K)) + 1j * rng.standard_normal((M, N, K))
    B = rng.standard_normal((M, N, L)) + 1j * rng.standard_normal((M, N, L))
    y = rng.standard_normal((n, M, N)) + 1j * rng.standard_normal((n, M, N))
    X = rng.standard_normal((n, K, M)) + 0j
    Z = rng.standard_normal((n, L, M)) + 0j
    f = mm.penalised_objective(A, B, y, X, Z, 0.5)
    r = y - np.einsum("mnk,bkm->bmn", A, X) - np.einsum("mnl,blm->bmn", B, Z)
    want = 0.5 * (np.abs(r) ** 2).sum(axis=(1, 2)) + 0.5 * (
        np.linalg.norm(X, axis=2).sum(axis=1) + np.abs(Z).sum(axis=(1, 2))
    )
    np.testing.assert_allclose(f, want, rtol=1e-12)
    for wrong in (X[:, :-1], X.transpose(0, 2, 1), X[:1], X.reshape(n, -1)):
        with pytest.raises(ValueError, match=r"^X: expected shape \(n, K, M\)"):
            mm.penalised_objective(A, B, y, wrong, Z, 0.5)
    with pytest.raises(ValueError, match=r"^Z: expected shape \(n, L, M\)"):
        mm.penalised_objective(A, B, y, X, Z.transpose(0, 2, 1), 0.5)
    with pytest.raises(ValueError, match=r"^X: contains NaN"):
        mm.penalised_objective(A, B, y, np.full_like(X, np.nan), Z, 0.5)
    # one sample: (K, M) and (L, M) as well as (1, K, M)
    one = mm.penalised_objective(A, B, y[0], X[0], Z[0], 0.5)
    np.testing.assert_allclose(one, f[:1], rtol=1e-12)


# 9 ------------------------------------------------------------------------------------------------
def test_trial_seed_names_the_argument():
    assert experiments.trial_seed(0, 0, 0) == experiments.trial_seed(np.int64(0), 0, 0)
    for args, name in (((-1, 0, 0), "seed"), ((0, -1, 0), "snr_index"), ((0, 0, -1), "trial")):
        with pytest.raises(ValueError, match=rf"^{name}: expected an integer >= 0"):
            experiments.trial_seed(*args)
    for bad in (1.5, "1", True, None):
        with pytest.raises(ValueError, match=r"^seed: "):
            experiments.trial_seed(bad, 0, 0)


# 10 -----------------------------------------------------------------------------------------------
def test_params_hash_names_the_parameter_that_is_not_json():
    good = {"a": 1, "b": [np.float64(2.0), (3, "x")], "c": {"d": None}}
    assert experiments.params_hash(good) == experiments.params_hash(dict(reversed(list(good.items()))))
    with pytest.raises(ValueError, match=r"^params\['c'\]\['d'\]: not JSON-serialisable: object"):
        experiments.params_hash({"a": 1, "c": {"d": object()}})
    with pytest.raises(ValueError, match=r"^params\['b'\]\[1\]: not JSON-serialisable: set"):
        experiments.params_hash({"b": [1, {2}]})
    with pytest.raises(ValueError, match=r"^params: expected a mapping"):
        experiments.params_hash([1, 2])


# The rule for positions leaving any localiser: inside a margin around the user area -----------------
def test_positions_far_outside_the_area_name_method_and_readout(batch, readout_names):
    from daun_lib.readouts import POSITION_MARGIN_AREAS

    far = SC.area_size / 2 + 1e4
    register_readout("issue24-far", lambda s, sc, y: np.full((y.shape[0], 2), far))
    register_readout("issue24-edge", lambda s, sc, y: np.full((y.shape[0], 2), SC.area_size / 2 + 1.0))
    readout_names.extend(["issue24-far", "issue24-edge"])
    loc = dpd.DPDLocalizer(readout="issue24-far")
    pattern = r"DPDLocalizer: readout 'issue24-far': returned a position .* outside the user area"
    with pytest.raises(ValueError, match=pattern):
        loc(SC, batch.y)
    with pytest.raises(ValueError, match=pattern):
        loc.locate(SC, batch.y, 1)
    with pytest.raises(RuntimeError, match="method 'far' failed at snr_db=10.0.*" + pattern) as info:
        experiments.accuracy_sweep({"far": loc}, SC, [10.0], 2, 0, cache_dir=None, progress=False)
    assert isinstance(info.value.__cause__, ValueError)
    # 1 m outside the edge is within the margin: the number is passed on unchanged
    assert POSITION_MARGIN_AREAS * SC.area_size > 1.0
    np.testing.assert_array_equal(dpd.DPDLocalizer(readout="issue24-edge")(SC, batch.y), SC.area_size / 2 + 1.0)

    class Far(Localizer):  # a localiser whose own output is far off (no readout)
        def _locate(self, scenario, y):
            return np.full((y.shape[0], 2), far)

    with pytest.raises(ValueError, match=r"^Far: returned a position"):
        Far()(SC, batch.y)
