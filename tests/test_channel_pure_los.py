"""Scenario(multipath=False): each link its LoS ray alone (the position CRB's model), paired with the UMa batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from daun_lib import Scenario, channel
from daun_lib._fingerprint import fingerprint
from daun_lib.channel import draw_clusters
from daun_lib.methods import REGISTRY
from daun_lib.scenario import steering

N_USERS = 40
SNR = np.linspace(-10.0, 30.0, N_USERS)  # per sample, so the noise pairing is checked over a range of amplitudes

SCENARIOS = {
    "2d": Scenario(),
    "3d": Scenario(geometry="3d"),
    "3d-heights": Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0)),
}


def _pair(base: Scenario, seed: int = 7):
    uma = channel.simulate(base, N_USERS, snr_db=SNR, seed=seed)
    los = channel.simulate(dataclasses.replace(base, multipath=False), N_USERS, snr_db=SNR, seed=seed)
    return uma, los


def _steering(scenario: Scenario, batch) -> np.ndarray:
    """(n, M, N) unit-norm steering vectors of the measured LoS sines u_m(p) (user's own height in 3-D)."""
    heights = batch.ut_heights if scenario.ut_height_range_m is not None else None
    u = scenario.los_sines(batch.positions, heights)
    return steering(np.arcsin(u), scenario.n_antennas, scenario.antenna_spacing)


# ----------------------------------------------------------------------------- the field
def test_default_is_multipath_and_not_a_dictionary_field():
    s = Scenario()
    assert s.multipath is True
    assert "multipath" not in s.dictionary_fields()
    for geometry in ("2d", "3d"):
        base = Scenario(geometry=geometry)
        assert dataclasses.replace(base, multipath=False).dictionary_fields() == base.dictionary_fields()


@pytest.mark.parametrize("bad", [0, 1, "False", None, 1.0, np.bool_(False)])
def test_multipath_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="multipath"):
        Scenario(multipath=bad)


@pytest.mark.parametrize("los_model", ["3gpp", 0.5, 1.0])
def test_pure_los_needs_every_link_los(los_model):
    with pytest.raises(ValueError, match="multipath.*no signal"):
        Scenario(multipath=False, los_model=los_model)
    Scenario(multipath=True, los_model=los_model)  # unchanged


def test_fingerprint_separates_the_two_channels():
    assert fingerprint(Scenario(multipath=False)) != fingerprint(Scenario())
    assert fingerprint(Scenario(multipath=True)) == fingerprint(Scenario())


# ----------------------------------------------------------------------------- the channel
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_link_is_one_steering_vector(name):
    s = SCENARIOS[name]
    _, b = _pair(s)
    N = s.n_antennas
    a = _steering(s, b)
    gain = np.abs(np.einsum("imn,imn->im", a.conj(), b.h)) ** 2  # |a_m(u_m(p))^H h_m|^2
    np.testing.assert_allclose(gain, N, rtol=1e-9)
    np.testing.assert_allclose(np.sum(np.abs(b.h) ** 2, axis=-1), N, rtol=1e-12)
    np.testing.assert_allclose(np.abs(b.h), 1.0, rtol=1e-12)  # every element has modulus 1
    assert b.los.all()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_paired_with_the_uma_batch(name):
    """Same seed: same users, LoS states, heights, LoS-ray phase and noise; only the clusters are gone."""
    s = SCENARIOS[name]
    uma, los = _pair(s)
    for field in ("positions", "los", "snr_db", "ut_heights"):
        np.testing.assert_array_equal(getattr(uma, field), getattr(los, field))
    amp = np.sqrt(10.0 ** (SNR / 10.0))[:, None, None]
    np.testing.assert_allclose(los.y - amp * los.h, uma.y - amp * uma.h, rtol=0, atol=1e-9)
    assert not np.allclose(uma.h, los.h)  # the UMa batch does have clusters


def test_channel_batch_fields_keep_their_shapes_and_types():
    uma, los = _pair(Scenario())
    assert type(los) is type(uma) and los._fields == uma._fields
    for field in uma._fields:
        u, v = getattr(uma, field), getattr(los, field)
        assert np.asarray(u).shape == np.asarray(v).shape and np.asarray(u).dtype == np.asarray(v).dtype, field


def test_one_sample_and_blocks_agree():
    """A batch spanning several blocks equals its first sample drawn alone (the draw order does not depend on n)."""
    s = Scenario(multipath=False)
    one = channel.simulate(s, 1, snr_db=0.0, seed=3)
    many = channel.simulate(s, 300, snr_db=0.0, seed=3)
    np.testing.assert_array_equal(one.positions[0], many.positions[0])
    a = _steering(s, many)
    np.testing.assert_allclose(np.abs(np.einsum("imn,imn->im", a.conj(), many.h)) ** 2, s.n_antennas, rtol=1e-9)


def test_channel_vectors_follow_the_scenario():
    s = Scenario(multipath=False)
    rng = np.random.default_rng(0)
    p = rng.uniform(-20, 20, size=(5, 2))
    cl = draw_clusters(s, p, np.ones((5, s.n_bs), bool), seed=1)
    h_los = channel.channel_vectors(s, cl, seed=2)
    h_uma = channel.channel_vectors(Scenario(), cl, seed=2)
    a = steering(np.arcsin(s.los_sines(p)), s.n_antennas)
    np.testing.assert_allclose(np.abs(np.einsum("imn,imn->im", a.conj(), h_los)) ** 2, s.n_antennas, rtol=1e-9)
    assert not np.allclose(h_los, h_uma)
    # the LoS phase is the clustered channel's: with the cluster powers shrunk to 1e-300 (same slots, so the same
    # phase draws) the clustered sum is the LoS ray alone up to round-off
    faint = cl._replace(powers=np.where(cl.powers > 0, 1e-300, 0.0))
    np.testing.assert_allclose(channel.channel_vectors(Scenario(), faint, seed=2), h_los, rtol=0, atol=1e-10)
    blocked = cl._replace(los_power=np.where(np.arange(s.n_bs) == 0, 0.0, cl.los_power))
    with pytest.raises(ValueError, match="clusters.*LoS"):
        channel.channel_vectors(s, blocked, seed=2)


def test_pretrained_daun_accepts_the_pure_los_scenario():
    s = Scenario(multipath=False)
    b = channel.simulate(s, 3, snr_db=20.0, seed=0)
    est = REGISTRY["DAUN"](s, b.y)
    assert est.shape == (3, 2) and np.isfinite(est).all()


# ----------------------------------------------------------------------------- compatibility
@pytest.mark.parametrize("geometry", ["2d", "3d"])
def test_shipped_weights_load_with_either_setting(geometry):
    """The shipped checkpoints have no multipath field: they load (default True) and accept multipath=False."""
    from daun_lib.daun import DAUN, load_pretrained
    from daun_lib.daun.checkpoints import VARIANTS, VARIANTS_3D, WEIGHTS_DIR

    net = load_pretrained(geometry=geometry)
    assert net.scenario.multipath is True
    table = VARIANTS if geometry == "2d" else VARIANTS_3D
    for file in table.values():
        back = DAUN.load(WEIGHTS_DIR / file, scenario=Scenario(geometry=geometry, multipath=False))
        assert back.scenario.multipath is False


def test_checkpoint_written_now_round_trips(tmp_path):
    from daun_lib.daun import DAUN

    tiny = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, multipath=False)
    path = DAUN(2, scenario=tiny).save(tmp_path / "n.pt")
    assert DAUN.load(path).scenario == tiny  # the stored field comes back
    assert DAUN.load(path, scenario=dataclasses.replace(tiny, multipath=True)).scenario.multipath is True


def test_experiment_cache_key_separates_the_channels():
    import functools

    from daun_lib.experiments.keys import callable_key

    uma = functools.partial(channel.simulate, Scenario())
    los = functools.partial(channel.simulate, Scenario(multipath=False))
    assert callable_key(uma, "generator") != callable_key(los, "generator")
