"""Sionna as a data source (daun_lib.channel.sionna); skipped when the optional extra 'sionna' is absent."""

import numpy as np
import pytest

from daun_lib.scenario import Scenario, steering

pytest.importorskip("sionna.phy.channel.tr38901")

from daun_lib.channel.sionna import simulate_sionna  # noqa: E402

N_USERS = 40


@pytest.fixture(scope="module")
def batch():
    return simulate_sionna(Scenario(), N_USERS, 20.0, seed=5)


def test_shapes_and_types(batch):
    s = Scenario()
    M, N = s.n_bs, s.n_antennas
    assert batch.y.shape == (N_USERS, M, N) and batch.y.dtype == complex
    assert batch.h.shape == (N_USERS, M, N)
    assert batch.positions.shape == (N_USERS, 2)
    assert batch.los.shape == (N_USERS, M) and batch.los.dtype == bool
    assert batch.snr_db.shape == (N_USERS,)
    assert np.all(np.abs(batch.positions) <= s.area_size / 2)


def test_snr_normalisation(batch):
    s = Scenario()
    np.testing.assert_allclose(np.linalg.norm(batch.h, axis=-1) ** 2, s.n_antennas, rtol=1e-12)
    noise = batch.y - np.sqrt(10 ** (20.0 / 10)) * batch.h
    # unit complex noise per entry: mean power 1 within sampling error (8000 entries)
    assert abs(np.mean(np.abs(noise) ** 2) - 1.0) < 0.06


def test_seed_reproducible(batch):
    again = simulate_sionna(Scenario(), N_USERS, 20.0, seed=5)
    assert np.array_equal(again.y, batch.y) and np.array_equal(again.positions, batch.positions)
    other = simulate_sionna(Scenario(), N_USERS, 20.0, seed=6)
    assert not np.array_equal(other.h, batch.h)


def test_all_los_beam_peak_near_cone_angle(batch):
    s = Scenario()
    assert batch.los.all()
    # cone angle of the LoS ray at each BS (3-D geometry: Sionna always has the heights)
    d = batch.positions[:, None, :] - s.bs_array[None, :, :]
    axes = np.stack([-np.sin(s.array_normals), np.cos(s.array_normals)], axis=1)
    dz = s.bs_height_m - s.ut_height_m
    u = np.einsum("nmc,mc->nm", d, axes) / np.sqrt((d**2).sum(-1) + dz**2)
    grid = np.linspace(-1, 1, 4001)
    spectrum = np.abs(batch.h @ steering(np.arcsin(grid), s.n_antennas).conj().T) ** 2
    peak = grid[spectrum.argmax(-1)]
    offset = np.degrees(np.abs(np.arcsin(peak) - np.arcsin(u)))
    assert np.median(offset) < 0.3
    assert np.mean(offset < 1.0) > 0.9


def test_los_models():
    b = simulate_sionna(Scenario(los_model=0.0), 8, 0.0, seed=1)
    assert not b.los.any()


def test_invalid_arguments():
    with pytest.raises(ValueError, match="n"):
        simulate_sionna(Scenario(), 0, 10.0, seed=1)
    with pytest.raises(ValueError, match="snr_db"):
        simulate_sionna(Scenario(), 3, [1.0, 2.0], seed=1)
    with pytest.raises(ValueError, match="precision"):
        simulate_sionna(Scenario(), 3, 10.0, seed=1, precision="half")
    with pytest.raises(ValueError, match="scenario"):
        simulate_sionna("not a scenario", 3, 10.0, seed=1)
    with pytest.raises(ValueError, match="multipath"):
        simulate_sionna(Scenario(multipath=False), 3, 10.0, seed=1)
