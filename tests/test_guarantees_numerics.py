"""Guarantees under misuse: the solvers never return a silent wrong answer.

Each test calls the public API the way a user would and checks for either the
correct answer or a ValueError that names the offending argument.
"""

from __future__ import annotations

import pytest
import torch

from daun_lib._devices import check_device


# ---------------------------------------------------------------------------
# device arguments
# ---------------------------------------------------------------------------
def test_check_device_accepts_cpu_forms():
    for dev in (None, "cpu", torch.device("cpu"), "cpu:0"):
        assert check_device(dev).type == "cpu"


@pytest.mark.parametrize("bad", ["foo", "", 3.5, True, object(), -1, "meta"])
def test_check_device_rejects_unparsable(bad):
    with pytest.raises(ValueError, match="^my_dev: "):
        check_device(bad, "my_dev")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0", 0, torch.device("cuda")])
def test_check_device_rejects_missing_cuda(dev):
    with pytest.raises(ValueError, match="device: .*CUDA is not available"):
        check_device(dev)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_check_device_rejects_missing_cuda_index():
    with pytest.raises(ValueError, match="does not exist"):
        check_device(f"cuda:{torch.cuda.device_count()}")


# ---------------------------------------------------------------------------
# shared data
# ---------------------------------------------------------------------------
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from daun_lib import admm, channel, methods  # noqa: E402
from daun_lib.baselines import mm, srl, vb  # noqa: E402
from daun_lib.refine import argmax_rows, refine  # noqa: E402
from daun_lib.scenario import Scenario  # noqa: E402

SCALES = (1e-30, 1e-20, 1e-10, 1.0, 1e10, 1e20, 1e30)
#: Methods that need no noise level: the same positions for c * y as for y.
SCALE_FREE = ("DAUN", "DAUN-R", "DAUN-S", "P-ADMM", "DPD", "DPD-S", "Stansfield")
#: Methods set in noise units (VB, MM, SRL): invariant when y and the noise power scale together.
NOISE_UNITS = ("SRL", "VB", "MM")


@pytest.fixture(scope="module")
def paper():
    sc = Scenario()
    A, B = sc.dictionaries()
    y = channel.simulate(sc, 4, 10.0, seed=11).y
    return sc, A, B, y


@pytest.fixture(scope="module")
def small():
    sc = Scenario(n_antennas=8, grid_shape=(4, 4), n_angles=12)
    A, B = sc.dictionaries()
    y = channel.simulate(sc, 20, 10.0, seed=3).y
    return sc, A, B, y


def _needs_daun(name):
    if name.startswith("DAUN") and not methods.daun_available():
        pytest.skip(f"pretrained DAUN unavailable: {methods.daun_unavailable()}")


# ---------------------------------------------------------------------------
# item 1: divergence is an error, never a NaN estimate
# ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:tau2=0.5")
@pytest.mark.parametrize("n", [3, 20])  # numpy small-batch path and torch batch path
def test_paper_literal_steps_warn_then_raise_divergence(paper, n):
    sc, A, B, _ = paper
    y = channel.simulate(sc, n, 10.0, seed=5).y
    with pytest.warns(UserWarning, match="tau1=0.5 is not below the convergence bound"):
        with pytest.raises(admm.DivergenceError, match=r"tau1=0\.5.*1/max_m \|\|A_m\|\|\^2 = 0\.008"):
            admm.solve(A, B, y, rho=5.0, tau1=0.5, tau2=0.5, w=1.0, iterations=300)


def test_divergence_error_is_a_value_error():
    assert issubclass(admm.DivergenceError, ValueError)


def test_steps_within_bound_do_not_warn(small):
    _, A, B, y = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = admm.solve(A, B, y, iterations=20, **admm.default_params(A, B).as_kwargs())
    assert np.isfinite(res.X).all()


@pytest.mark.parametrize("rho", [1e-300, 1e300, 1e-13, 1e13])
def test_rho_outside_range_is_rejected(small, rho):
    _, A, B, y = small
    p = admm.default_params(A, B)
    with pytest.raises(ValueError, match=r"^rho: expected a penalty in \[1e-12, 1e\+12\]"):
        admm.solve(A, B, y, rho=rho, tau1=p.tau1, tau2=p.tau2, w=1.0, iterations=5)


def test_inference_lists_reject_rho_outside_range(small):
    _, A, B, y = small
    ops = admm.make_operators(A, B, torch.complex64)
    yt, _ = admm.prepare_y(y, torch.complex64, None, True)
    with pytest.raises(ValueError, match="^rho: "):
        admm.iterate(ops, yt, [1e-300], [0.01], [0.01], np.ones(A.shape[0]))


# ---------------------------------------------------------------------------
# item 3: crashes become clear errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("w", ["a", [1.0, "a", 1.0, 1.0], object()])
def test_unparsable_w_names_w(paper, w):
    _, A, B, y = paper
    with pytest.raises(ValueError, match="^w: "):
        admm.solve(A, B, y, rho=0.1, tau1=0.008, tau2=0.08, w=w, iterations=3)


def test_huge_iteration_count_is_rejected_not_a_memory_error(small):
    _, A, B, y = small
    with pytest.raises(ValueError, match="^iterations: expected at most"):
        admm.solve(A, B, y[:1], iterations=10**9, **admm.default_params(A, B).as_kwargs())


@pytest.mark.parametrize("device", ["foo", 3.5])
def test_solve_rejects_bad_device(small, device):
    _, A, B, y = small
    with pytest.raises(ValueError, match="^device: "):
        admm.solve(A, B, y, iterations=3, device=device, **admm.default_params(A, B).as_kwargs())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_solve_rejects_missing_cuda(small):
    _, A, B, y = small
    with pytest.raises(ValueError, match="^device: 'cuda' cannot be used"):
        admm.solve(A, B, y, iterations=3, device="cuda", **admm.default_params(A, B).as_kwargs())


@pytest.mark.parametrize(
    "args, name",
    [
        ((0,), "n_antennas"),
        ((2.5,), "n_antennas"),
        ((50, 0.0), "noise_var"),
        ((50, 1.0, 1.0), "confidence"),
        ((50, 1.0, 0.0), "confidence"),
    ],
)
def test_srl_noise_bound_validates(args, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        srl.noise_bound(*args)


def test_srl_noise_bound_value():
    # ||n||^2 / sigma^2 ~ Gamma(N, 1); its median is about N - 1/3
    assert srl.noise_bound(50, 1.0, 0.5) == pytest.approx(np.sqrt(49.67), rel=1e-3)


# ---------------------------------------------------------------------------
# item 2: all-zero input and scale invariance
# ---------------------------------------------------------------------------
def test_solve_rejects_an_all_zero_sample(small):
    _, A, B, y = small
    y = y[:3].copy()
    y[1] = 0
    with pytest.raises(ValueError, match=r"^y: sample\(s\) \[1\] are all zero"):
        admm.solve(A, B, y, iterations=3, **admm.default_params(A, B).as_kwargs())


@pytest.mark.parametrize("name", list(methods.REGISTRY))
def test_registry_rejects_an_all_zero_sample(paper, name):
    _needs_daun(name)
    sc, _, _, y = paper
    y = y.copy()
    y[2] = 0
    with pytest.raises(ValueError, match=r"^y: sample\(s\) \[2\] are all zero"):
        methods.REGISTRY[name](sc, y)


@pytest.mark.parametrize("e", [-100, -60, 60, 100])
def test_solve_is_exactly_scale_equivariant_for_powers_of_two(small, e):
    _, A, B, y = small
    kw = admm.default_params(A, B).as_kwargs()
    ref = admm.solve(A, B, y, iterations=30, **kw)
    res = admm.solve(A, B, np.ldexp(y.real, e) + 1j * np.ldexp(y.imag, e), iterations=30, **kw)
    assert np.array_equal(res.X, np.ldexp(ref.X.real, e) + 1j * np.ldexp(ref.X.imag, e))
    assert np.array_equal(res.nmse, ref.nmse)


@pytest.mark.parametrize("c", [1e-30, 1e18, 1e30])
def test_solve_tensor_input_keeps_its_scale(small, c):
    _, A, B, y = small
    kw = admm.default_params(A, B).as_kwargs()
    ref = admm.solve(A, B, y, iterations=30, **kw)
    res = admm.solve(A, B, torch.as_tensor(y * c), iterations=30, **kw)
    assert torch.isfinite(res.X).all()
    np.testing.assert_allclose(res.X.numpy() / c, ref.X, rtol=0, atol=1e-4 * np.abs(ref.X).max())
    np.testing.assert_allclose(res.nmse.numpy(), ref.nmse, rtol=1e-4)


@pytest.mark.parametrize("c", [1e-30, 1e30])
def test_argmax_readouts_survive_any_scale_of_x(small, c):
    _, A, B, y = small
    X = admm.solve(A, B, y, iterations=30, **admm.default_params(A, B).as_kwargs()).X  # complex64
    Xc = (X * np.complex64(c)).astype(np.complex64)
    assert np.array_equal(argmax_rows(Xc), argmax_rows(X))
    assert np.array_equal(refine(Xc), refine(X))


@pytest.mark.parametrize("name", SCALE_FREE)
def test_registry_positions_do_not_depend_on_the_scale_of_y(paper, name):
    _needs_daun(name)
    sc, _, _, y = paper
    base = methods.REGISTRY[name](sc, y)
    # grid readouts must agree exactly; the continuous ones to float (32-bit for DAUN-S) round-off
    atol = {"DAUN-S": 2e-5, "DPD-S": 1e-9, "Stansfield": 1e-9}.get(name, 0.0)
    for c in SCALES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow/underflow warnings either
            out = methods.REGISTRY[name](sc, y * c)
        np.testing.assert_allclose(out, base, rtol=0, atol=atol, err_msg=f"{name} at scale {c:g}")


@pytest.mark.parametrize("c", [1e-170, 1e-150, 1e152, 1e160, 1e170])
@pytest.mark.parametrize("name", ["DPD", "DPD-S", "Stansfield"])
def test_squaring_methods_refuse_scales_float64_cannot_square(paper, name, c):
    # at these scales |a^H y|^2 overflows or underflows: DPD's argmax was an arbitrary cell (37 m
    # off at 1e160 and 1e-170) and Stansfield's bearings garbage (18 m off at 1e-170)
    sc, _, _, y = paper
    with pytest.raises(ValueError, match="^y: sample 0 has magnitudes"):
        methods.REGISTRY[name](sc, y * c)


@pytest.mark.parametrize("name", ["DPD-MMSE", "DPD-Disk", "Subset-MAP", "Mixture-MMSE"])
def test_noise_unit_posteriors_warn_at_very_high_snr_and_refuse_overflow(paper, name):
    # Mixture-MMSE returned NaN at 1e170 and Subset-MAP a different position, both silently
    sc, _, _, y = paper
    with pytest.warns(UserWarning, match=r"dB above the assumed noise power 1 \(the unit noise power .*divide y"):
        methods.REGISTRY[name](sc, y[:2] * 1e10)
    with pytest.raises(ValueError, match="^y: sample 0 has magnitudes"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        methods.REGISTRY[name](sc, y[:2] * 1e170)


@pytest.mark.parametrize("name", ["DPD-MMSE", "Subset-MAP"])
def test_noise_unit_posteriors_reject_y_far_below_the_noise(paper, name):
    sc, _, _, y = paper
    with pytest.raises(ValueError, match=r"^y: sample\(s\) \[0, 1\] have a mean power .* far below .*divide y"):
        methods.REGISTRY[name](sc, y[:2] * 1e-10)


@pytest.mark.parametrize("name", NOISE_UNITS)
def test_noise_unit_methods_reject_y_far_below_the_noise(paper, name):
    sc, _, _, y = paper
    with pytest.raises(
        ValueError,
        match=r"^y: sample\(s\) \[0, 1, 2, 3\] have a mean power .* far below the "
        r"assumed noise power 1",
    ):
        methods.REGISTRY[name](sc, y * 1e-10)


@pytest.mark.parametrize("name", NOISE_UNITS)
def test_noise_unit_methods_answer_and_warn_at_very_high_snr(paper, name):
    sc, _, _, y = paper
    h = sc.area_size / 2
    outs = []
    for c in (1e10, 1e20, 1e30):
        # legal (a very high SNR) but far beyond the modelled links: the user is told how it is read
        with pytest.warns(UserWarning, match=r"dB above the assumed noise power .*other units"):
            outs.append(methods.REGISTRY[name](sc, y * c))
    for out in outs:
        assert np.isfinite(out).all() and (np.abs(out) <= h).all()
    # far above the noise the answer no longer depends on the scale
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(outs[2], outs[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("c", SCALES)
def test_noise_unit_methods_are_invariant_when_noise_scales_with_y(paper, c):
    sc, _, _, y = paper
    np.testing.assert_array_equal(vb.localize(sc, y * c, vb.VBParams(noise_var=c**2)), vb.localize(sc, y))
    np.testing.assert_array_equal(mm.localize(sc, y * c, mm.MMParams(noise_std=c)), mm.localize(sc, y))
    np.testing.assert_allclose(
        srl.localize(sc, y * c, srl.SRLParams(noise_var=c**2)), srl.localize(sc, y), rtol=0, atol=1e-4
    )


def test_mm_power_of_two_scaling_changes_no_bit(paper):
    sc, _, _, y = paper
    ref = mm.solve_scenario(sc, y, track=True)
    res = mm.solve_scenario(sc, np.ldexp(y.real, 3) + 1j * np.ldexp(y.imag, 3), mm.MMParams(noise_std=8.0), track=True)
    assert np.array_equal(res.X, np.ldexp(ref.X.real, 3) + 1j * np.ldexp(ref.X.imag, 3))
    assert np.array_equal(res.objective, np.ldexp(ref.objective, 6))


# ---------------------------------------------------------------------------
# item 5: DAUN-S works in bounded blocks
# ---------------------------------------------------------------------------
def test_daun_s_reads_out_in_blocks(paper, monkeypatch):
    _needs_daun("DAUN-S")
    sc, _, _, _ = paper
    y = channel.simulate(sc, 40, 10.0, seed=4).y
    ref = methods.REGISTRY["DAUN-S"](sc, y)
    net = methods._pretrained()
    sizes = []
    real = type(net).estimate_x

    def spy(self, yy, **kw):
        sizes.append(len(yy))
        return real(self, yy, **kw)

    monkeypatch.setattr(type(net), "estimate_x", spy)
    monkeypatch.setattr(methods, "DAUN_S_CHUNK", 16)
    out = methods.REGISTRY["DAUN-S"](sc, y)
    assert sizes == [16, 16, 8]
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def test_dictionary_fields_alias():
    from daun_lib import scenario

    assert methods.DICTIONARY_FIELDS is scenario.DICTIONARY_FIELDS
    assert "array_normal_deg" in methods.DICTIONARY_FIELDS


@pytest.mark.parametrize("n", [3, 20])  # the numpy small-batch path and the torch block path
def test_overflowing_residual_is_divergence_not_an_inf_nmse(n):
    """The literal steps overflow the float32 residual at iteration 16 before the iterate itself."""
    A, B = Scenario().dictionaries()
    y = channel.simulate(Scenario(), n, 0.0, seed=1).y
    with pytest.warns(UserWarning, match="convergence bound"):
        ok = admm.solve(A, B, y, rho=5.0, tau1=0.5, tau2=0.5, w=1.0, iterations=15)
    assert np.isfinite(ok.nmse).all()
    with pytest.warns(UserWarning), pytest.raises(admm.DivergenceError, match="iteration 16"):
        admm.solve(A, B, y, rho=5.0, tau1=0.5, tau2=0.5, w=1.0, iterations=16)
