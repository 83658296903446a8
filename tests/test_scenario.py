"""Scenario geometry, grids and dictionaries (Sec. II, IV)."""

import dataclasses

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib.scenario import steering


def test_paper_defaults():
    s = Scenario()
    assert s.n_bs == 4 and s.n_antennas == 50 and s.n_grid == 900 and s.n_angles == 100
    assert s.carrier_hz == 30e9 and s.los_model == "always"
    assert s.grid.shape == (900, 2) and s.angles.shape == (100,)
    # cell centres, spacing 40/30 m, all inside the area
    assert np.allclose(s.grid_spacing, (40 / 30, 40 / 30))
    assert np.abs(s.grid).max() < 20.0


def test_grid_index_order_and_nearest():
    s = Scenario(grid_shape=(3, 4), area_size=12.0)
    g = s.grid
    # k = ix * ny + iy
    assert np.allclose(g[1], [g[0, 0], g[0, 1] + 3.0])
    assert np.allclose(g[4], [g[0, 0] + 4.0, g[0, 1]])
    assert np.array_equal(s.nearest_grid(g), np.arange(12))


def test_los_angle_is_papers_arctan():
    s = Scenario()
    rng = np.random.default_rng(1)
    p = rng.uniform(-20, 20, size=(50, 2))
    bs = s.bs_array
    paper = np.arctan((p[:, None, 1] - bs[None, :, 1]) / (p[:, None, 0] - bs[None, :, 0]))
    assert np.allclose(s.los_angles(p), paper)


def test_dictionaries_unit_columns_and_norms():
    s = Scenario()
    A, B = s.dictionaries()
    assert A.shape == (4, 50, 900) and B.shape == (4, 50, 100)
    assert np.allclose(np.linalg.norm(A, axis=1), 1.0)
    assert np.allclose(np.linalg.norm(B, axis=1), 1.0)
    # the spectral norms quoted in the scenario module docstring
    assert np.linalg.norm(A[0], 2) ** 2 == pytest.approx(121, rel=0.01)
    assert np.linalg.norm(B[0], 2) ** 2 == pytest.approx(12.1, rel=0.01)
    # A's column k is the steering vector of the LoS angle of grid point k
    th = s.los_angles(s.grid[[7]])[0]
    for m in range(4):
        assert np.allclose(A[m][:, 7], steering(th[m], 50))


def test_steering_phase_reference_at_centre():
    a = steering(np.array(0.3), 5)
    # symmetric element indices -> the centre element has zero phase
    assert np.isclose(np.angle(a[2]), 0.0)
    assert np.isclose(np.linalg.norm(a), 1.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_antennas": 0}, "n_antennas"),
        ({"n_antennas": 2.5}, "n_antennas"),
        ({"n_antennas": 1}, "n_antennas"),
        ({"grid_shape": (0, 30)}, "grid_shape"),
        ({"grid_shape": (30,)}, "grid_shape"),
        ({"n_angles": 0}, "n_angles"),
        ({"area_size": -1.0}, "area_size"),
        ({"area_size": float("nan")}, "area_size"),
        ({"carrier_hz": 0.0}, "carrier_hz"),
        ({"los_model": "sometimes"}, "los_model"),
        ({"los_model": 1.5}, "los_model"),
        ({"bs_positions": ()}, "bs_positions"),
        ({"bs_positions": ((0.0, 0.0),)}, "bs_positions"),
        ({"bs_positions": ((float("nan"), 60.0),)}, "bs_positions"),
        ({"bs_positions": ((-50.0, 0.0),)}, "bs_positions"),
        ({"array_normal_deg": (0.0, 0.0)}, "array_normal_deg"),
        ({"array_normal_deg": (0.0, 0.0, 180.0, float("inf"))}, "array_normal_deg"),
    ],
)
def test_bad_scenarios(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Scenario(**kwargs)


def test_bad_positions():
    s = Scenario()
    with pytest.raises(ValueError, match="positions"):
        s.los_angles(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="positions"):
        s.nearest_grid(np.zeros((3, 3)))


def test_frozen_and_hashable():
    s = Scenario()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n_antennas = 3  # type: ignore[misc]
    assert hash(s) == hash(Scenario())


def test_array_phase_is_the_phase_of_steering():
    from daun_lib.scenario import array_phase, element_offsets, element_wavenumbers, phase_step

    theta = np.linspace(-1.4, 1.4, 9)
    for N, d in ((50, 0.5), (7, 0.7)):
        ph = array_phase(np.sin(theta), N, d)
        assert ph.shape == (9, N)
        np.testing.assert_array_equal(np.exp(1j * ph) / np.sqrt(N), steering(theta, N, d))
        np.testing.assert_array_equal(element_offsets(N), np.arange(N) - (N - 1) / 2.0)
        np.testing.assert_array_equal(ph, phase_step(np.sin(theta), d)[:, None] * element_offsets(N))
        np.testing.assert_allclose(np.sin(theta)[:, None] * element_wavenumbers(N, d), ph, rtol=1e-13, atol=1e-12)


def test_shared_validation_helpers_name_the_argument():
    from daun_lib import _checks
    from daun_lib import _validation as v

    with pytest.raises(ValueError, match="scenario: expected a daun_lib.Scenario"):
        _checks.check_scenario("paper")
    s = Scenario()
    assert _checks.check_scenario(s) is s
    with pytest.raises(ValueError, match="positions: expected at least one position"):
        v.positions(np.zeros((0, 2)))
    assert v.positions(np.zeros((0, 2)), allow_empty=True).shape == (0, 2)
    with pytest.raises(ValueError, match="pos: contains NaN"):
        v.positions([[np.nan, 0.0]], "pos")
    with pytest.raises(ValueError, match=r"y: expected shape \(n, 4, 50\)"):
        v.signals(np.ones((2, 4, 49), complex), 4, 50)
    assert v.signals(np.ones((4, 50), complex), 4, 50).shape == (1, 4, 50)
    with pytest.raises(ValueError, match=r"y: sample\(s\) \[1\] are all zero"):
        v.reject_zero_samples([1])
    v.reject_zero_samples([])
    np.testing.assert_array_equal(v.weights(2, 3), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="w: expected finite positive"):
        v.weights([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="w: expected a scalar or a length-2"):
        v.weights([1.0, 1.0, 1.0], 2)


# ----------------------------------------------------------------------------- per-user heights (issue 12)
def test_ut_height_range_validated_and_canonical():
    s = Scenario(geometry="3d", ut_height_range_m=[1, 10])
    assert s.ut_height_range_m == (1.0, 10.0) and isinstance(s.ut_height_range_m[0], float)
    assert s == Scenario(geometry="3d", ut_height_range_m=(1.0, 10.0))
    assert Scenario().ut_height_range_m is None
    bad = [
        ((1.5,), "ut_height_range_m"),
        ("ab", "ut_height_range_m"),
        ((1.5, np.nan), "ut_height_range_m"),
        ((1.5, np.inf), "ut_height_range_m"),
        ((0.0, 10.0), "ut_height_range_m"),
        ((10.0, 2.0), "ut_height_range_m"),
        ((1.5, 25.0), "bs_height_m"),  # at the BS height
        ((2.0, 10.0), "nominal ut_height_m"),  # the dictionaries' height must lie in the range
        ((True, 10.0), "ut_height_range_m"),
    ]
    for rng, msg in bad:
        with pytest.raises(ValueError, match=msg):
            Scenario(geometry="3d", ut_height_range_m=rng)
    with pytest.raises(ValueError, match="geometry='3d'"):
        Scenario(ut_height_range_m=(1.5, 10.0))  # "2d" has no heights
    with pytest.raises(ValueError, match="23 m"):
        Scenario(geometry="3d", los_model="3gpp", ut_height_range_m=(1.5, 24.0))
    Scenario(geometry="3d", ut_height_range_m=(1.5, 1.5))  # a degenerate range is the fixed height


def test_los_sines_per_user_heights():
    s = Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0))
    p = np.array([[0.0, 0.0], [10.0, -5.0], [-19.0, 19.0]])
    h = np.array([1.5, 6.0, 10.0])
    d = p[:, None, :] - s.bs_array[None]
    dz = (s.bs_height_m - h)[:, None]
    want = np.einsum("nmc,mc->nm", d, s.array_axes) / np.sqrt((d**2).sum(-1) + dz**2)
    np.testing.assert_allclose(s.los_sines(p, h), want, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(s.los_sines(p, np.full(3, 1.5)), s.los_sines(p))
    for bad in (np.ones(2), np.array([1.0, np.nan, 2.0]), np.array([1.0, 25.0, 2.0]), np.array([1.0, -1.0, 2.0])):
        with pytest.raises(ValueError, match="ut_heights"):
            s.los_sines(p, bad)
    with pytest.raises(ValueError, match="ut_heights"):
        Scenario().los_sines(p, h)


def test_ut_height_range_is_not_a_dictionary_field():
    s = Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0))
    assert "ut_height_range_m" not in s.dictionary_fields()
    assert s.dictionary_fields() == Scenario(geometry="3d").dictionary_fields()
    A, B = s.dictionaries()
    A0, B0 = Scenario(geometry="3d").dictionaries()
    assert np.array_equal(A, A0) and np.array_equal(B, B0)  # the nominal ut_height_m
