"""Issue 12: the TR 38.901 UMa channel with BS-side zenith angles (``Scenario(geometry="3d")``).

The 2-D channel must not move: its outputs are compared with SHA-256 fingerprints of the arrays
that ``channel.simulate`` returned before the zenith code existed (computed on this platform's
numpy; a different libm may change the last bits and then these fingerprints, not the model).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib import channel as ch
from daun_lib.channel.tables import RAY_OFFSETS
from daun_lib.scenario import array_phase

S2 = Scenario()
S3 = Scenario(geometry="3d")
FC = 30.0  # GHz
N = S3.n_antennas

# sha256(y | h | positions | los)[:16] of simulate(Scenario(los_model=model), n, 10 dB, seed) before the edit
REFERENCE_2D = {
    ("always", 1, 0): "64a6712bf20f04c6",
    ("always", 1, 123): "66e286ae7e978c37",
    ("always", 7, 0): "2bbe71067fff7357",
    ("always", 7, 123): "773c19e6debf30b0",
    ("always", 300, 0): "5a422f92a34b12a4",
    ("always", 300, 123): "302cab61c897b27d",
    ("3gpp", 1, 0): "d26b80d49294d46e",
    ("3gpp", 1, 123): "d332b7402202a914",
    ("3gpp", 7, 0): "1fca56ffcb3faa41",
    ("3gpp", 7, 123): "ee5bbf8aed982fbe",
    ("3gpp", 300, 0): "4b7b69256efb9ac0",
    ("3gpp", 300, 123): "746b5a74e48e9b19",
    (0.4, 1, 0): "d26b80d49294d46e",
    (0.4, 1, 123): "d332b7402202a914",
    (0.4, 7, 0): "b8ecc4e8ac150e5c",
    (0.4, 7, 123): "e541fc052eed2e68",
    (0.4, 300, 0): "09fc90396d5336ae",
    (0.4, 300, 123): "35128becf5b65460",
}


@pytest.mark.parametrize("key", sorted(REFERENCE_2D, key=str))
def test_2d_simulate_bit_identical_to_before(key):
    model, n, seed = key
    b = ch.simulate(Scenario(los_model=model), n, 10.0, seed)
    digest = hashlib.sha256(b.y.tobytes() + b.h.tobytes() + b.positions.tobytes() + b.los.tobytes()).hexdigest()
    assert digest[:16] == REFERENCE_2D[key]


# ----------------------------------------------------------------------------- draws
@pytest.fixture(scope="module")
def draws():
    """2-D and 3-D cluster draws from the same seed, all-LoS and all-NLoS, 3000 users each."""
    rng = np.random.default_rng(21)
    n = 3000
    pos = rng.uniform(-20, 20, (n, 2))
    out = {}
    for name, los in (("los", np.ones((n, 4), bool)), ("nlos", np.zeros((n, 4), bool))):
        out[name + "2"] = ch.draw_clusters(S2, pos, los, 5)
        out[name + "3"] = ch.draw_clusters(S3, pos, los, 5)
    out["pos"] = pos
    return out


def _mu_lgzsd(d2d, h_ut, los):
    # TR 38.901 v16.1 Table 7.5-7 (UMa), written out independently of daun_lib.channel.tables
    base = -2.1 * d2d / 1000.0 - 0.01 * (h_ut - 1.5)
    return np.maximum(-0.5, base + (0.75 if los else 0.9))


@pytest.mark.parametrize("name,sigma", [("los", 0.40), ("nlos", 0.49)])
def test_lgzsd_matches_table(draws, name, sigma):
    c = draws[name + "3"]
    d2d = np.linalg.norm(draws["pos"][:, None] - S3.bs_array[None], axis=-1)
    mu = _mu_lgzsd(d2d, S3.ut_height_m, name == "los")
    z = (np.log10(c.zsd_deg) - mu) / sigma  # standard normal, right tail capped at lg 52 deg
    n = z.size
    assert abs(np.median(z)) < 4 * 1.2533 / np.sqrt(n)
    q25, q75 = np.quantile(z, [0.25, 0.75])
    assert abs((q75 - q25) - 1.349) < 0.08
    assert c.zsd_deg.max() <= 52.0


def test_azimuths_k_factor_and_powers_unchanged_from_2d(draws):
    for name in ("los", "nlos"):
        c2, c3 = draws[name + "2"], draws[name + "3"]
        for f in ("k_factor_db", "asd_deg", "ds_s", "powers", "los_power", "angles", "ray_angles", "los_angle"):
            np.testing.assert_array_equal(getattr(c2, f), getattr(c3, f), err_msg=f)
    c = draws["los3"]
    k_real = 10 * np.log10(c.los_power / c.powers.sum(-1))  # realised K before the -25 dB cut removes power
    assert np.all(k_real >= c.k_factor_db - 1e-9)


def test_zenith_geometry_and_los_cluster(draws):
    c = draws["los3"]
    d2d = np.linalg.norm(draws["pos"][:, None] - S3.bs_array[None], axis=-1)
    want = np.pi / 2 + np.arctan((S3.bs_height_m - S3.ut_height_m) / d2d)  # below the array: zenith > 90 deg
    np.testing.assert_allclose(c.los_zenith, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.zeniths[..., 0], c.los_zenith, atol=1e-12)  # (7.5-17) form: cluster 1 on the LoS
    # the measured LoS sine is the cone sine, and it factors as sin(zenith) sin(azimuth)
    np.testing.assert_allclose(c.los_sine, S3.los_sines(draws["pos"]), atol=0)
    np.testing.assert_allclose(c.los_sine, np.sin(c.los_zenith) * np.sin(c.los_angle), atol=1e-12)
    assert np.all((c.zeniths >= 0) & (c.zeniths <= np.pi))
    # 2-D: the plane's zenith
    assert np.all(draws["los2"].los_zenith == np.pi / 2) and np.isnan(draws["los2"].zsd_deg).all()


def test_nlos_zod_offset_and_ray_coupling(draws):
    c = draws["nlos3"]
    d2d = np.linalg.norm(draws["pos"][:, None] - S3.bs_array[None], axis=-1)
    lg = np.log10(FC)
    a, cc, e = 0.208 * lg - 0.782, -0.13 * lg + 2.03, 7.66 * lg - 5.96
    off = e - 10.0 ** (a * np.log10(np.maximum(25.0, d2d)) + cc - 0.07 * (S3.ut_height_m - 1.5))  # Table 7.5-7
    # (7.5-19): cluster zeniths = X theta' + Y + theta_LOS + offset; X theta' + Y is symmetric about 0,
    # so its median is 0 (the median is unaffected by the reflection of zeniths beyond 180 deg)
    dev = np.rad2deg(c.zeniths - c.los_zenith[..., None]) - off[..., None]
    iqr = np.subtract(*np.quantile(dev, [0.75, 0.25]))
    assert abs(np.median(dev)) < 4 * 1.2533 * (iqr / 1.349) / np.sqrt(dev.size / 20)  # clusters of a link: correlated
    assert np.all(off < 0)  # at 30 GHz and 50-90 m the UMa NLoS ZOD offset is negative
    # step 8: within a cluster the 20 ray zenith offsets are a permutation of c_ZSD alpha_m
    mu = _mu_lgzsd(d2d, S3.ut_height_m, False)
    rel = np.rad2deg(c.ray_zeniths - c.zeniths[..., None]) / (0.375 * 10**mu)[..., None, None]
    inner = np.abs(np.rad2deg(c.zeniths[..., None]) - 90) < 80  # away from the pole reflection
    r = rel[np.broadcast_to(inner, rel.shape).all(-1)]
    np.testing.assert_allclose(np.sort(r, axis=-1), np.broadcast_to(np.sort(RAY_OFFSETS), r.shape), atol=1e-9)
    assert not np.all(np.argsort(r, axis=-1) == np.argsort(r[:1], axis=-1))  # the coupling is random


# ----------------------------------------------------------------------------- channels
def _beamscan_peak(h, u_grid):
    a = np.exp(1j * array_phase(u_grid, N, S3.antenna_spacing)) / np.sqrt(N)  # (G, N)
    power = np.abs(h @ a.conj().T) ** 2  # (..., G)
    return u_grid[power.argmax(-1)], power.max(-1) / np.sum(np.abs(h) ** 2, axis=-1)


def test_pure_los_beam_peak_at_cone_sine(draws):
    c = draws["los3"]._replace(los_power=np.ones((3000, 4)), powers=np.zeros_like(draws["los3"].powers))
    sl = slice(0, 300)
    c = ch.Clusters(*(f[sl] for f in c))
    h = ch.channel_vectors(S3, c, 0)
    peak, frac = _beamscan_peak(h, np.linspace(-1, 1, 20001))
    u = S3.los_sines(draws["pos"][sl])
    assert np.abs(peak - u).max() < 1.0 / N
    assert np.abs(peak - u).max() < 2e-4  # the grid step: the peak is exactly on the cone sine
    assert np.allclose(frac, 1.0)
    # and not on the 2-D azimuth's sine (the compression by cos(elevation) is resolvable)
    assert np.median(np.abs(peak - np.sin(S3.los_angles(draws["pos"][sl])))) > 1.0 / N


def test_simulate_3d_snr_normalisation_and_determinism():
    b = ch.simulate(S3, 600, 3.0, 4)
    np.testing.assert_allclose(np.sum(np.abs(b.h) ** 2, axis=-1), N, rtol=1e-12)
    noise = b.y - np.sqrt(10**0.3) * b.h
    assert abs(np.mean(np.sum(np.abs(noise) ** 2, -1)) / N - 1.0) < 0.01
    b2 = ch.simulate(S3, 600, 3.0, 4)
    np.testing.assert_array_equal(b.y, b2.y)
    # simulate equals draw_clusters + channel_vectors (+ noise) also in 3-D
    rng = np.random.default_rng(4)
    pos = rng.uniform(-20, 20, (600, 2))
    los = ch.draw_los(S3, pos, rng)
    h = ch.channel_vectors(S3, ch.draw_clusters(S3, pos, los, rng), rng)
    np.testing.assert_array_equal(h, b.h)


def test_channel_vectors_checks_zenith_fields(draws):
    c = ch.Clusters(*(f[:2] for f in draws["los3"]))
    with pytest.raises(ValueError, match="clusters.ray_zeniths: expected a float array"):
        ch.channel_vectors(S3, c._replace(ray_zeniths=c.ray_zeniths[..., :3]), 0)
    with pytest.raises(ValueError, match="clusters.ray_zeniths: contains NaN"):
        ch.channel_vectors(S3, c._replace(ray_zeniths=np.full_like(c.ray_zeniths, np.nan)), 0)
    with pytest.raises(ValueError, match=r"clusters.los_sine: expected values in \[-1, 1\]"):
        ch.channel_vectors(S3, c._replace(los_sine=c.los_sine + 2.0), 0)
    # a Clusters of the ten 2-D fields (older code) is the 2-D model
    c2 = ch.Clusters(*(f[:2] for f in draws["los2"]))
    old = ch.Clusters(*c2[:10])
    np.testing.assert_array_equal(ch.channel_vectors(S2, old, 1), ch.channel_vectors(S2, c2, 1))
