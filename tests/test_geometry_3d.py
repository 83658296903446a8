"""Issue 12: ``Scenario(geometry="3d")``, height-aware dictionaries and the localisers in 3-D."""

from __future__ import annotations

import numpy as np
import pytest

from daun_lib.scenario import DICTIONARY_FIELDS, Scenario, steering

S3 = Scenario(geometry="3d")


def test_geometry_is_validated():
    for bad in ("3D", "2", None, 3):
        with pytest.raises(ValueError, match="geometry: expected one of"):
            Scenario(geometry=bad)
    assert Scenario().geometry == "2d"
    assert Scenario(geometry="2d") == Scenario()


def test_array_axes_and_los_sines_2d_equal_sin_of_los_angles():
    s = Scenario()
    axes = s.array_axes
    assert axes.shape == (4, 2)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=1), 1.0)
    nrm = s.array_normals
    np.testing.assert_allclose(axes, np.column_stack([-np.sin(nrm), np.cos(nrm)]))
    p = np.random.default_rng(0).uniform(-20, 20, (200, 2))
    u = s.los_sines(p)
    assert u.shape == (200, 4)
    np.testing.assert_allclose(u, np.sin(s.los_angles(p)), rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="positions"):
        s.los_sines(np.array([[np.nan, 0.0]]))


def test_los_sines_3d_is_the_cone_angle():
    p = np.random.default_rng(1).uniform(-20, 20, (50, 2))
    u = S3.los_sines(p)
    dz = -(S3.bs_height_m - S3.ut_height_m)
    for m, (b, ax) in enumerate(zip(S3.bs_array, S3.array_axes, strict=True)):
        d3 = np.column_stack([p - b, np.full(len(p), dz)])
        a3 = np.append(ax, 0.0)
        np.testing.assert_allclose(u[:, m], d3 @ a3 / np.linalg.norm(d3, axis=1), rtol=1e-13)
    # the elevation compresses the measured quantity
    assert (np.abs(u) < np.abs(Scenario().los_sines(p)) + 1e-15).all()


def test_3d_dictionaries_are_height_aware():
    A, B = S3.dictionaries()
    A2, B2 = Scenario().dictionaries()
    assert A.shape == A2.shape and B.shape == B2.shape
    np.testing.assert_array_equal(B, B2)  # B: a grid of the measured quantity in both geometries
    u = S3.los_sines(S3.grid)  # (K, M)
    ref = np.swapaxes(steering(np.arcsin(u.T), S3.n_antennas, S3.antenna_spacing), 1, 2)
    np.testing.assert_allclose(A, ref, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0)
    coh = np.abs(np.einsum("mnk,mnk->mk", A.conj(), A2))  # |a_3d^H a_2d| per grid column
    assert coh.min() < 0.5  # the 2-D columns are far from the measured ones
    # equal heights in 3-D give the 2-D dictionaries up to round-off
    flat = Scenario(geometry="3d", bs_height_m=1.5, ut_height_m=1.5)
    np.testing.assert_allclose(flat.dictionaries()[0], A2, atol=1e-12)


def test_dictionary_fields():
    d2 = Scenario().dictionary_fields()
    assert set(d2) == set(DICTIONARY_FIELDS) | {"geometry"}
    assert Scenario(bs_height_m=10.0).dictionary_fields() == d2
    d3 = S3.dictionary_fields()
    assert set(d3) == set(d2) | {"bs_height_m", "ut_height_m"}
    assert d3["geometry"] == "3d"
    assert Scenario(geometry="3d", bs_height_m=10.0).dictionary_fields() != d3


def test_identifiability_rules_hold_in_3d():
    with pytest.warns(UserWarning, match="mirror ambiguity"):
        Scenario(geometry="3d", bs_positions=((-50.0, 0.0), (0.0, 50.0), (50.0, 0.0)))
    with pytest.raises(ValueError, match="faces away"):
        Scenario(geometry="3d", array_normal_deg=(180.0, 0.0, 180.0, 180.0))
    with pytest.warns(UserWarning, match="grating lobes"):
        Scenario(geometry="3d", antenna_spacing=3.0)


def test_pretrained_daun_checks_the_dictionaries_of_its_geometry():
    from daun_lib import methods

    # 2-D with other heights: the same dictionaries, accepted by the check
    methods.REGISTRY["DAUN"]._check_scenario(Scenario(bs_height_m=10.0, ut_height_m=2.0))
    with pytest.raises(ValueError, match=r"changes \['n_angles'\]"):
        methods.REGISTRY["DAUN"]._check_scenario(Scenario(n_angles=50))
    # 3-D: the 3-D weights, which fit only the heights they were trained for
    methods.REGISTRY["DAUN"]._check_scenario(S3)
    with pytest.raises(ValueError, match=r"geometry='3d'.*changes \['bs_height_m'\]"):
        methods.REGISTRY["DAUN-S"](Scenario(geometry="3d", bs_height_m=10.0), np.ones((2, 4, 50), complex))


def test_shipped_3d_network_localises_on_3d_channels():
    """The 3-D variant (load_pretrained(geometry="3d")) on the package's 3-D channel, all links LoS, 20 dB."""
    from daun_lib import channel, daun, methods

    net = daun.load_pretrained(geometry="3d")
    assert net.scenario == S3 and net.n_layers == 10
    with pytest.raises(ValueError, match="variant"):
        daun.load_pretrained("paper", geometry="3d")
    with pytest.raises(ValueError, match="geometry"):
        daun.load_pretrained(geometry="2.5d")
    b = channel.simulate(S3, 60, 20.0, seed=12)
    err = np.linalg.norm(methods.REGISTRY["DAUN-S"](S3, b.y) - b.positions, axis=1)
    assert np.mean(err < 1.0) >= 0.95
    flat = np.linalg.norm(methods.REGISTRY["DPD-S"](Scenario(), b.y) - b.positions, axis=1)
    assert np.median(flat) > 2.0  # the 2-D model on the same 3-D data


def test_checkpoint_compare_uses_dictionary_fields():
    from daun_lib import daun
    from daun_lib.daun.checkpoints import DEFAULT_VARIANT, VARIANTS, WEIGHTS_DIR

    path = WEIGHTS_DIR / VARIANTS[DEFAULT_VARIANT]
    net = daun.DAUN.load(path, scenario=Scenario(bs_height_m=10.0))  # 2-D, other heights: accepted
    assert net.scenario.bs_height_m == 10.0
    with pytest.raises(ValueError, match=r"geometry is '2d' in the checkpoint but '3d' here"):
        daun.DAUN.load(path, scenario=S3)


def _pure_los(scenario, n, snr_db, seed):
    """Users uniform in the area and y (n, M, N) = sqrt(snr) sqrt(N) a(arcsin u_m(p)) + CN(0, 1) noise."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-scenario.area_size / 2, scenario.area_size / 2, (n, 2))
    N = scenario.n_antennas
    h = np.sqrt(N) * steering(np.arcsin(scenario.los_sines(p)), N, scenario.antenna_spacing)
    noise = (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape)) / np.sqrt(2)
    return p, np.sqrt(10 ** (snr_db / 10)) * h + noise


@pytest.fixture(scope="module")
def los3d():
    return _pure_los(S3, 40, 20.0, 0)


@pytest.mark.parametrize("name", ["DPD", "DPD-S", "P-ADMM", "VB", "MM", "Stansfield", "SRL"])
def test_localisers_find_3d_users_with_height_aware_model(los3d, name):
    from daun_lib import methods

    p, y = los3d
    e = np.linalg.norm(methods.REGISTRY[name](S3, y) - p, axis=1)
    # grid maps: one cell (spacing 1.33 m) -> error <= half a diagonal (0.94 m); measured max 0.86
    assert e.max() < 1.0, (name, e.max())
    if name == "DPD-S":
        # measured median 0.046, max 0.58 (the sub-grid Gaussian fit near the area edge; the same in 2-D)
        assert np.median(e) < 0.1
    if name in ("Stansfield", "SRL"):
        assert np.median(e) < 0.1  # cone intersection; measured median 0.02, max 0.06


def test_offgrid_dpd_uses_the_3d_model(los3d):
    from daun_lib.baselines import dpd

    p, y = los3d
    e = np.linalg.norm(dpd.localize(S3, y, dpd.DPDParams(offgrid=True)) - p, axis=1)
    assert np.median(e) < 0.1 and e.max() < 0.5, (np.median(e), e.max())


def test_2d_dictionaries_fail_on_3d_data(los3d):
    from daun_lib import methods

    p, y = los3d
    for name in ("DPD", "DPD-S"):
        e = np.linalg.norm(methods.REGISTRY[name](Scenario(), y) - p, axis=1)
        assert np.median(e) > 2.0, (name, np.median(e))  # measured median 5.9 m (DPD) and 5.9 m (DPD-S)


def test_cone_intersection_validates_and_is_exact_without_noise():
    from daun_lib.baselines.bearings import cone_intersection

    p = np.random.default_rng(3).uniform(-19, 19, (30, 2))
    np.testing.assert_allclose(cone_intersection(S3, S3.los_sines(p)), p, atol=1e-6)
    with pytest.raises(ValueError, match="u: expected"):
        cone_intersection(S3, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="weights: expected"):
        cone_intersection(S3, np.zeros((3, 4)), -np.ones((3, 4)))
    with pytest.raises(ValueError, match="scenario"):
        cone_intersection("3d", np.zeros((3, 4)))


def test_2d_default_is_bit_identical_to_the_2d_code_path():
    # geometry="2d" keeps the azimuth code path of the dictionaries (the saved references of the
    # issue-12 work compared every REGISTRY entry and channel.simulate bit for bit)
    s = Scenario()
    A, B = s.dictionaries()
    theta = s.los_angles(s.grid).T
    np.testing.assert_array_equal(A, np.swapaxes(steering(theta, s.n_antennas, s.antenna_spacing), 1, 2))
    assert Scenario(geometry="2d").dictionaries()[0].tobytes() == A.tobytes()


def test_3d_network_checkpoint_round_trip_and_height_check(tmp_path, los3d):
    from daun_lib import daun, methods

    net = daun.DAUN(2, scenario=S3)
    path = daun.checkpoints.save(net, tmp_path / "net3d.pt")
    back = daun.DAUN.load(path)
    assert back.scenario == S3
    daun.DAUN.load(path, scenario=Scenario(geometry="3d", los_model="3gpp"))  # channel option: accepted
    with pytest.raises(ValueError, match=r"bs_height_m is 25.0 in the checkpoint but 10.0 here"):
        daun.DAUN.load(path, scenario=Scenario(geometry="3d", bs_height_m=10.0))
    with pytest.raises(ValueError, match=r"geometry is '3d' in the checkpoint but '2d' here"):
        daun.DAUN.load(path, scenario=Scenario())
    # the Algorithm-1 readout on a 3-D map
    p, y = los3d
    e = np.linalg.norm(methods.PADMMLocalizer(readout="alg1")(S3, y[:8]) - p[:8], axis=1)
    assert e.max() < 1.0, e.max()


# ----------------------------------------------------------------------------- per-user heights
SR = Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0))


def test_daun_checks_accept_a_height_range(tmp_path):
    from daun_lib import daun, methods
    from daun_lib.daun.checkpoints import VARIANTS_3D, WEIGHTS_DIR

    methods.REGISTRY["DAUN"]._check_scenario(SR)  # the range changes the data, not the dictionaries
    path = WEIGHTS_DIR / next(iter(VARIANTS_3D.values()))
    net = daun.DAUN.load(path, scenario=SR)
    assert net.scenario.ut_height_range_m == (1.5, 10.0)
    # a network saved with the range loads back with it (JSON list -> tuple), and fits the fixed height
    saved = daun.checkpoints.save(daun.DAUN(2, scenario=SR), tmp_path / "range.pt")
    assert daun.DAUN.load(saved).scenario == SR
    daun.DAUN.load(saved, scenario=S3)


def test_localisers_with_per_user_heights():
    """DPD-S, height-aware dictionaries at the nominal 1.5 m, 200 users, 20 dB, all links LoS.

    Heights uniform in [1.5, 10] m against the fixed 1.5 m: the localiser assumes the nominal
    height, so the cone-angle mismatch grows with the user's height (numbers in the README).
    """
    from daun_lib import channel, methods

    out = {}
    for sc in (S3, SR):
        b = channel.simulate(sc, 200, 20.0, seed=7)
        e = np.linalg.norm(methods.REGISTRY["DPD-S"](sc, b.y) - b.positions, axis=1)
        out[sc.ut_height_range_m] = (e, b.ut_heights)
    e_fixed, _ = out[None]
    e_range, hts = out[(1.5, 10.0)]
    assert np.mean(e_fixed < 1.0) >= 0.98
    assert np.mean(e_range < 1.0) < np.mean(e_fixed < 1.0) - 0.2  # the height mismatch costs accuracy
    low = hts < 3.0  # near the nominal height the range batch still localises
    assert low.sum() > 20 and np.mean(e_range[low] < 1.0) >= 0.95
    assert np.median(e_range[hts > 8.0]) > np.median(e_range[low])


def test_sionna_adapter_refuses_per_user_heights_before_importing_sionna():
    from daun_lib import Scenario
    from daun_lib.channel.sionna import simulate_sionna

    with pytest.raises(ValueError, match="ut_height_range_m"):
        simulate_sionna(Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0)), 2, 10.0, seed=0)


def test_clusters_and_scenario_must_agree_on_the_geometry():
    from daun_lib import channel

    flat = channel.simulate(Scenario(), 3, 10.0, seed=4)
    # the 2-D round trip with the heights simulate reports
    los = channel.draw_los(Scenario(), flat.positions, seed=1, ut_heights=flat.ut_heights)
    cl2 = channel.draw_clusters(Scenario(), flat.positions, los, seed=2, ut_heights=flat.ut_heights)
    cl3 = channel.draw_clusters(S3, flat.positions, los, seed=2)
    with pytest.raises(ValueError, match="clusters: drawn for geometry='3d'"):
        channel.channel_vectors(Scenario(), cl3, seed=3)
    with pytest.raises(ValueError, match="clusters: drawn for geometry='2d'"):
        channel.channel_vectors(S3, cl2, seed=3)
    with pytest.raises(ValueError, match="azimuths only"):
        cl3.rays()
    assert cl2.rays()[0].shape[:2] == (3, 4)


def test_the_2d_model_uses_the_layout_of_the_sweeps_scenario():
    from daun_lib import channel, daun, methods
    from daun_lib.studies import accuracy, geometry_study

    moved = ((-60.0, -50.0), (-50.0, 60.0), (50.0, 50.0), (50.0, -50.0))
    s3 = Scenario(geometry="3d", bs_positions=moved)
    y = channel.simulate(s3, 4, 20.0, seed=5).y
    got = geometry_study.with_2d_model("DPD")(s3, y)
    np.testing.assert_array_equal(got, methods.REGISTRY["DPD"](Scenario(bs_positions=moved), y))
    with pytest.raises(ValueError, match="other dictionaries"):
        accuracy.daun_readout(daun.load_pretrained(), refine=False)(S3, y)
