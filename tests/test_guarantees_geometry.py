"""Misuse of the geometry and of the channel generator, as a user would hit it.

Each test builds the scenario or calls the generator the way a user would and
asserts either the clear error (or warning) or the correct answer.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
import warnings

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib import channel as ch
from daun_lib.baselines import dpd, stansfield
from daun_lib.scenario import DICTIONARY_FIELDS, steering

ABOVE_BELOW = ((0.0, 50.0), (0.0, -50.0))
CROSS = ABOVE_BELOW + ((-50.0, 0.0), (50.0, 0.0))


def _no_warnings(**kwargs) -> Scenario:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Scenario(**kwargs)


# ----------------------------------------------------------------------------- defaults untouched
def test_default_scenario_is_unchanged_and_silent():
    s = _no_warnings()
    assert s.array_normal_deg is None
    np.testing.assert_array_equal(s.array_normals, [0.0, 0.0, np.pi, np.pi])
    # the explicit form of the default rule gives the same dictionaries, bit for bit
    e = _no_warnings(array_normal_deg=(0.0, 0.0, 180.0, 180.0))
    for a, b in zip(s.dictionaries(), e.dictionaries(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


def test_dictionary_fields_name_scenario_fields():
    names = {f.name for f in dataclasses.fields(Scenario)}
    assert set(DICTIONARY_FIELDS) <= names
    assert "array_normal_deg" in DICTIONARY_FIELDS and "los_model" not in DICTIONARY_FIELDS


# ----------------------------------------------------------------------------- degenerate geometry
def test_bs_above_and_below_the_area_is_refused_with_the_reason():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="fewer than two usable arrays"):
            Scenario(bs_positions=ABOVE_BELOW)
    messages = [str(w.message) for w in rec if issubclass(w.category, UserWarning)]
    assert any("BS 0 at (0, 50)" in m and "mirror" in m for m in messages)
    assert any("BS 1 at (0, -50)" in m and "mirror" in m for m in messages)


def test_ambiguous_array_is_warned_and_really_is_ambiguous():
    with pytest.warns(UserWarning, match="mirror") as rec:
        s = Scenario(bs_positions=CROSS)
    assert sum("array axis passes through the user area" in str(w.message) for w in rec) == 2
    # the documented reason: users mirrored across x = 0 give the same steering vector at BS 0
    p = np.array([[7.0, 3.0], [-7.0, 3.0]])
    a = steering(s.los_angles(p), s.n_antennas)
    np.testing.assert_allclose(a[0, 0], a[1, 0], atol=1e-12)
    assert np.abs(a[0, 2] - a[1, 2]).max() > 0.1  # a side BS tells them apart


def test_turning_the_arrays_makes_the_cross_layout_work():
    s = _no_warnings(bs_positions=CROSS, array_normal_deg=(-90.0, 90.0, 0.0, 180.0))
    np.testing.assert_allclose(s.array_normals, np.deg2rad([-90.0, 90.0, 0.0, 180.0]))
    p = np.array([[7.0, 3.0], [-7.0, 3.0]])
    a = steering(s.los_angles(p), s.n_antennas)
    assert np.abs(a[0, 0] - a[1, 0]).max() > 0.1
    b = ch.simulate(s, 40, 20.0, seed=3)
    for localize in (dpd.localize, stansfield.localize):
        err = np.linalg.norm(localize(s, b.y) - b.positions, axis=1)
        assert np.mean(err < 1.0) >= 0.9  # measured 1.00 for both (0.85 / 0.80 with the default broadsides)


def test_rotated_arrays_are_used_by_every_consumer():
    s = _no_warnings(array_normal_deg=(30.0, -30.0, 210.0, 150.0))
    b = ch.simulate(s, 40, 20.0, seed=3)
    # the channel's LoS ray and the dictionaries agree: the LoS steering vector dominates h
    a = steering(s.los_angles(b.positions), s.n_antennas)
    corr = np.abs(np.einsum("nmk,nmk->nm", a.conj(), b.h)) / np.sqrt(s.n_antennas)
    assert np.median(corr) > 0.8
    err = np.linalg.norm(stansfield.localize(s, b.y) - b.positions, axis=1)
    assert np.mean(err < 1.0) >= 0.9  # measured 1.00


def test_array_facing_away_is_refused():
    with pytest.raises(ValueError, match="array_normal_deg: BS 0 .* faces away"):
        Scenario(array_normal_deg=(180.0, 0.0, 180.0, 180.0))


@pytest.mark.parametrize("value", [(0.0, 0.0, 180.0), (0.0, 0.0, 180.0, np.nan), "0000", (0, 0, 180, True), 5.0])
def test_bad_array_normal_deg(value):
    with pytest.raises(ValueError, match="array_normal_deg"):
        Scenario(array_normal_deg=value)


def test_single_antenna_measures_no_angle():
    with pytest.raises(ValueError, match=r"n_antennas: expected an integer >= 2"):
        Scenario(n_antennas=1)
    assert _no_warnings(n_antennas=2).dictionaries()[0].shape == (4, 2, 900)


def test_one_bs_is_refused():
    with pytest.raises(ValueError, match="fewer than two usable arrays"):
        Scenario(bs_positions=((-50.0, 0.0),))


def test_coincident_bss():
    with pytest.warns(UserWarning, match=r"BSs \[0, 1\] coincide"):
        s = Scenario(bs_positions=((-50.0, 0.0), (-50.0, 0.0), (50.0, 0.0)))
    assert s.n_bs == 3
    with pytest.warns(UserWarning, match="coincide"):
        with pytest.raises(ValueError, match="fewer than two usable arrays .* 1 distinct position"):
            Scenario(bs_positions=((-50.0, -50.0),) * 4)


def test_grating_lobes_warned_only_when_they_fall_in_the_area():
    with pytest.warns(UserWarning, match="grating lobes"):
        Scenario(antenna_spacing=2.0)
    _no_warnings(antenna_spacing=0.5)
    _no_warnings(antenna_spacing=0.4)


def test_position_on_a_bs_is_refused():
    s = Scenario()
    with pytest.raises(ValueError, match="coincides with a BS"):
        s.los_angles(np.array([[-50.0, -50.0]]))


def test_steering_checks_its_input():
    with pytest.raises(ValueError, match="theta"):
        steering(np.array([0.1, np.nan]), 4)
    with pytest.raises(ValueError, match="theta"):
        steering(np.array([0.1j]), 4)
    with pytest.raises(ValueError, match="n_antennas"):
        steering(0.1, 0)
    with pytest.raises(ValueError, match="spacing"):
        steering(0.1, 4, spacing=-0.5)


# ----------------------------------------------------------------------------- SNR range
@pytest.mark.parametrize("snr", [1e4, -1e4, 150.5, [0.0, 1e3, 0.0]])
def test_simulate_refuses_snr_outside_the_finite_range(snr):
    with pytest.raises(ValueError, match=r"snr_db: expected values in \[-150, 150\] dB"):
        ch.simulate(Scenario(), 3, snr, seed=0)


def test_simulate_is_finite_at_the_snr_limits():
    b = ch.simulate(Scenario(), 2, [-150.0, 150.0], seed=0)
    assert np.isfinite(b.y).all()
    # at 150 dB the noise is 1e-7.5 of the signal
    np.testing.assert_allclose(b.y[1] / 10**7.5, b.h[1], atol=1e-6)


# ----------------------------------------------------------------------------- same numbers, bounded memory
# Values produced by the previous (unchunked) implementation of simulate for these seeds.
PINNED = [
    (
        "always",
        1,
        0,
        10.0,
        (
            4.007572822303375,
            -2.0570846179512223,
            629.8462025286789,
            -1.5663107994083008,
            1.9711577951120947,
            0.8689407052738953,
            -3.7300639565870153,
            4,
        ),
    ),
    (
        "always",
        7,
        1,
        "ramp",
        (
            -47.48371959580838,
            -68.96578128453463,
            4696.251013446049,
            -6.843056937315336,
            -12.529873703452129,
            0.340289980495572,
            20.56494619173772,
            28,
        ),
    ),
    (
        "3gpp",
        300,
        2,
        0.0,
        (
            103.36905107863657,
            3.0987439260642375,
            75994.23392253855,
            0.36415958598410036,
            0.5176921761222033,
            0.5150335086239399,
            -45.97657782405355,
            597,
        ),
    ),
    (
        0.3,
        300,
        4,
        "ramp",
        (
            263.2174793357022,
            371.25615266381146,
            170625.9242461689,
            -1.6168272452299228,
            -8.509671488847733,
            0.8941141539801039,
            672.7763074061361,
            368,
        ),
    ),
]


@pytest.mark.parametrize("los_model, n, seed, snr, expected", PINNED)
def test_simulate_reproduces_the_previous_numbers(los_model, n, seed, snr, expected):
    s = np.linspace(-10.0, 20.0, n) if snr == "ramp" else snr
    b = ch.simulate(Scenario(los_model=los_model), n, s, seed=seed)
    got = (
        b.y.real.sum(),
        b.y.imag.sum(),
        np.abs(b.y).sum(),
        b.y[-1, -1, -1].real,
        b.y[-1, -1, -1].imag,
        b.h[0, 0, 0].real,
        b.positions.sum(),
    )
    np.testing.assert_allclose(got, expected[:-1], rtol=1e-9, atol=1e-9)
    assert int(b.los.sum()) == expected[-1]


@pytest.mark.parametrize("n", [1, 7, 300])
def test_simulate_equals_the_step_by_step_procedure_bit_for_bit(n):
    sc = Scenario(los_model="3gpp")
    snr = np.linspace(-5.0, 15.0, n)
    b = ch.simulate(sc, n, snr, seed=17)
    rng = np.random.default_rng(17)
    pos = rng.uniform(-20.0, 20.0, size=(n, 2))
    los = ch.draw_los(sc, pos, rng)
    h = ch.channel_vectors(sc, ch.draw_clusters(sc, pos, los, rng), rng)
    noise = rng.standard_normal((n, sc.n_bs, sc.n_antennas, 2)) @ np.array([1.0, 1j]) / np.sqrt(2.0)
    y = np.sqrt(10.0 ** (snr / 10.0))[:, None, None] * h + noise
    np.testing.assert_array_equal(b.positions, pos)
    np.testing.assert_array_equal(b.los, los)
    np.testing.assert_array_equal(b.h, h)
    np.testing.assert_array_equal(b.y, y)


def test_simulate_memory_does_not_grow_with_the_batch():
    sc = Scenario()
    ch.simulate(sc, 8, 10.0, seed=0)  # warm-up: one-time allocations are not the batch's

    def extra(n: int) -> tuple[int, int]:
        tracemalloc.start()
        try:
            b = ch.simulate(sc, n, 10.0, seed=1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        out = sum(getattr(b, f).nbytes for f in b._fields)
        return peak - out, out

    small, out_small = extra(500)
    big, out_big = extra(4000)
    # The old implementation held every ray of the batch: about 40 KiB per sample beyond the
    # output (140 MB more at 4000 than at 500).  Now the working set is one block of samples.
    assert big - small < 0.25 * (out_big - out_small), (small, big, out_small, out_big)


# ----------------------------------------------------------------------------- channel helpers
def test_empty_batches():
    sc = Scenario()
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match=r"positions: expected at least one position"):
        ch.draw_los(sc, empty, 0)
    with pytest.raises(ValueError, match=r"positions: expected at least one position"):
        ch.draw_clusters(sc, empty, np.zeros((0, 4), bool), 0)
    assert ch.los_probability(np.zeros(0)).shape == (0,)
    c = ch.draw_clusters(sc, np.zeros((3, 2)), np.ones((3, 4), bool), 0)
    with pytest.raises(ValueError, match="clusters: expected at least one sample"):
        ch.channel_vectors(sc, ch.Clusters(*(f[:0] for f in c)), 0)


def test_nan_and_negative_inputs():
    sc = Scenario()
    with pytest.raises(ValueError, match="d2d: contains NaN"):
        ch.los_probability(np.array([10.0, np.nan]))
    with pytest.raises(ValueError, match="d2d: expected distances >= 0"):
        ch.los_probability(np.array([10.0, -1.0]))
    with pytest.raises(ValueError, match="positions: contains NaN"):
        ch.draw_clusters(sc, np.array([[0.0, np.nan]]), np.ones((1, 4), bool), 0)
    c = ch.draw_clusters(sc, np.zeros((2, 2)), np.ones((2, 4), bool), 0)
    bad_angles = c._replace(ray_angles=np.where(c.ray_angles > 0, np.nan, c.ray_angles))
    with pytest.raises(ValueError, match="clusters.ray_angles: contains NaN"):
        ch.channel_vectors(sc, bad_angles, 0)
    with pytest.raises(ValueError, match="clusters.powers / clusters.los_power: expected non-negative"):
        ch.channel_vectors(sc, c._replace(powers=-c.powers), 0)
    silent = c._replace(powers=np.zeros_like(c.powers), los_power=np.zeros_like(c.los_power))
    with pytest.raises(ValueError, match="positive total power"):
        ch.channel_vectors(sc, silent, 0)
    with pytest.raises(ValueError, match="clusters.powers: expected a float array"):
        ch.channel_vectors(sc, c._replace(powers=c.powers[:, :2]), 0)


def test_default_broadsides_written_out_are_the_default_scenario():
    from daun_lib.methods import REGISTRY

    explicit = Scenario(array_normal_deg=(0, 360, 180, -180))
    assert explicit == Scenario() and explicit.array_normal_deg is None
    y = ch.simulate(Scenario(), 3, 10.0, seed=2).y
    np.testing.assert_array_equal(REGISTRY["DAUN"](explicit, y), REGISTRY["DAUN"](Scenario(), y))
    assert Scenario(array_normal_deg=(0, 0, 180, 170)).array_normal_deg == (0.0, 0.0, 180.0, 170.0)
