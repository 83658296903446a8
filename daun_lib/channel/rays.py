"""Channel vectors from rays: steps 10-11 of TR 38.901 Sec. 7.5 (ray phases, sum, normalisation).

``h_m = c sum_i sqrt(P_i) exp(j Phi_i) a(u_i)`` over the LoS ray and the cluster rays of a link,
``Phi_i ~ U(-pi, pi)`` independent, ``a`` the unit-norm steering vector of the measured sine
``u_i`` (:func:`daun_lib.arrays.steering`) and ``c`` such that ``||h_m||^2 = N``.  Shapes:
cluster powers (b, M, c), ray sines (b, M, c, R), channels (n, M, N) complex; batches are
processed in blocks of :data:`CHUNK` samples (bounded memory; the ray phases are drawn block by
block, so the block size is part of the random stream).  :func:`channel_vectors` is the checked
entry point for clusters of :func:`daun_lib.channel.draw_clusters`; :func:`daun_lib.channel.simulate`
(:mod:`daun_lib.channel.signals`) sums the rays of its links with :func:`sum_rays`.

Pure LoS (``Scenario(multipath=False)``): the ray phases are drawn exactly as for the clustered
channel (one uniform per ray, LoS ray first, same shape and order), and only the LoS ray is
summed.  Step 11 scales ``h_m = c sqrt(P_LoS) exp(j Phi_LoS) a(u)`` (``a`` unit-norm,
:func:`daun_lib.arrays.steering`) to ``||h_m||^2 = N``, i.e. ``c sqrt(P_LoS) = sqrt(N)``, so
``h_m = exp(j Phi_LoS) sqrt(N) a(u)``, element ``n`` being ``exp(j (Phi_LoS + array_phase(u)[n]))``;
that is how it is computed (every element has modulus 1, no normalisation step is needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_scenario
from .._validation import rng_from_seed
from ..arrays import array_phase, element_offsets, phase_step
from ..scenario import Scenario
from .clusters import Clusters
from .tables import RAY_OFFSETS

__all__ = ["CHUNK", "channel_vectors", "ray_sines", "sample_blocks", "sum_rays", "used_slots"]

#: Samples per block when summing rays and drawing noise (memory bound; fixed, for determinism).
CHUNK = 256


def sample_blocks(n: int) -> list[slice]:
    """Consecutive slices of at most :data:`CHUNK` of ``n`` samples."""
    return [slice(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]


def ray_sines(ray_angles: np.ndarray, ray_zen: np.ndarray | None) -> np.ndarray:
    """What a horizontal ULA measures of each ray, ``u = sin(zenith) sin(azimuth - broadside)``.

    ``sin(zenith)`` is the cosine of the elevation and ``sin(azimuth - broadside)`` the horizontal
    direction's component along the array axis; ``ray_zen`` None (2-D) gives ``sin(ray_angles)``.
    """
    if ray_zen is None:
        return np.sin(ray_angles)
    return np.sin(ray_zen) * np.sin(ray_angles)


def sum_rays(
    N: int,
    spacing: float,
    los_power: np.ndarray,
    los_sine: np.ndarray,
    powers: np.ndarray,
    ray_sines: np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    multipath: bool = True,
) -> None:
    """Steps 10-11 for one block: ``out (b, M, N)`` = normalised sum of the rays.

    ``powers (b, M, c)`` and ``ray_sines (b, M, c, R)`` (the measured ``u = sin(theta)`` of each
    ray) hold the cluster slots that are summed; ``los_sine (b, M)`` is the LoS ray's ``u``.
    Draws the ray phases of the block (one uniform per ray, shape ``(b, M, 1 + c R)``, LoS ray
    first).  ``multipath=False``: the same draw, then ``out = exp(j (Phi_LoS + array_phase(u)))``
    (the LoS ray alone, normalised; module docstring); every link needs ``los_power > 0``.
    """
    b, M, c, R = ray_sines.shape
    if not multipath:
        if not (los_power > 0).all():
            raise ValueError(
                "clusters: multipath=False keeps only the LoS ray, but a link has no LoS power (los_power == 0)"
            )
        phase = rng.uniform(-np.pi, np.pi, size=(b, M, 1 + c * R))  # the draw of the clustered channel
        out[...] = np.exp(1j * (phase[..., :1] + array_phase(los_sine, N, spacing)))
        return
    pw = np.concatenate(
        [los_power[..., None], np.broadcast_to(powers[..., None] / R, (b, M, c, R)).reshape(b, M, c * R)], axis=-1
    )
    sn = np.concatenate([los_sine[..., None], ray_sines.reshape(b, M, c * R)], axis=-1)
    phase = rng.uniform(-np.pi, np.pi, size=pw.shape)
    # the phase of scenario.array_phase, element by element: element 0 at k0 * u, then steps of u
    k0 = element_offsets(N)[0]
    u = phase_step(sn, spacing)  # phase step per element
    w = np.sqrt(pw) * np.exp(1j * (phase + k0 * u))  # ray weight x element 0
    step = np.exp(1j * u)
    for i in range(N):  # h[k] = sum_r w_r step_r^k
        out[:, :, i] = w.sum(axis=-1)
        w *= step
    energy = np.sum(np.abs(out) ** 2, axis=-1, keepdims=True)
    if not (np.isfinite(energy).all() and (energy > 0).all()):
        raise ValueError("clusters: a link's rays sum to a zero or non-finite channel (check its powers and angles)")
    out *= np.sqrt(N / energy)


def used_slots(powers: np.ndarray) -> int:
    """Number of leading cluster slots that carry power somewhere in ``powers (n, M, C)``."""
    used = np.flatnonzero((powers > 0).any(axis=(0, 1)))
    return int(used.max()) + 1 if used.size else 0


def _check_clusters(clusters: Any, M: int) -> None:
    if not isinstance(clusters, Clusters):
        raise ValueError(f"clusters: expected a Clusters tuple from draw_clusters, got {type(clusters).__name__}")
    la = np.asarray(clusters.los_angle)
    if la.ndim != 2 or la.shape[1] != M:
        raise ValueError(f"clusters: expected {M} BSs, got shape {la.shape}")
    n = la.shape[0]
    if n < 1:
        raise ValueError("clusters: expected at least one sample (n >= 1), got an empty batch")
    want = {
        "los_power": (n, M),
        "los_angle": (n, M),
        "powers": (n, M, None),
        "angles": (n, M, None),
        "ray_angles": (n, M, None, RAY_OFFSETS.size),
    }
    arrays = {}
    for name, shape in want.items():
        a = np.asarray(getattr(clusters, name))
        if (
            a.dtype == object
            or not np.issubdtype(a.dtype, np.floating)
            or a.ndim != len(shape)
            or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=True))
        ):
            raise ValueError(
                f"clusters.{name}: expected a float array of shape {shape} (None: any), got {a.dtype} {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"clusters.{name}: contains NaN or inf")
        arrays[name] = a
    if arrays["powers"].shape[2] != arrays["ray_angles"].shape[2]:
        raise ValueError(
            f"clusters.ray_angles: expected {arrays['powers'].shape[2]} cluster slots like powers, "
            f"got {arrays['ray_angles'].shape[2]}"
        )
    for name, like in (("los_sine", "los_angle"), ("ray_zeniths", "ray_angles")):
        v = getattr(clusters, name, None)
        if v is None:
            continue
        a = np.asarray(v)
        if a.dtype == object or not np.issubdtype(a.dtype, np.floating) or a.shape != arrays[like].shape:
            raise ValueError(
                f"clusters.{name}: expected a float array of the shape of {like} {arrays[like].shape}, "
                f"got {a.dtype} {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"clusters.{name}: contains NaN or inf")
    if clusters.los_sine is not None and (np.abs(clusters.los_sine) > 1.0).any():
        raise ValueError("clusters.los_sine: expected values in [-1, 1] (a direction's sine)")
    if (arrays["powers"] < 0).any() or (arrays["los_power"] < 0).any():
        raise ValueError("clusters.powers / clusters.los_power: expected non-negative powers")
    if ((arrays["powers"].sum(-1) + arrays["los_power"]) <= 0).any():
        raise ValueError("clusters.powers: every link needs a positive total power")


def channel_vectors(scenario: Scenario, clusters: Clusters, seed: Any = None) -> np.ndarray:
    """Sum the rays of ``clusters`` into normalised channel vectors (steps 10-11).

    ``h_m = c sum_i sqrt(P_i) exp(j Phi_i) a(theta_i)`` over the LoS ray and all
    cluster rays of :meth:`Clusters.rays`, with independent phases
    ``Phi_i ~ U(-pi, pi)``, unit-norm steering vectors ``a`` of
    :func:`daun_lib.scenario.steering` and ``c`` such that ``||h_m||^2 = N``.
    With ``scenario.multipath`` False only the LoS ray is kept,
    ``h_m = exp(j Phi_LoS) sqrt(N) a(u_m)`` (the phases are drawn as with True;
    every link needs ``los_power > 0``).

    Parameters
    ----------
    scenario : Scenario
        Supplies N and the element spacing.
    clusters : Clusters
        From :func:`~daun_lib.channel.draw_clusters`, ``n >= 1`` samples and ``M = scenario.n_bs``.
        Checked: consistent shapes, finite angles and powers, non-negative
        powers and a positive total power on every link.
    seed : int, None or numpy.random.Generator
        Draws the ray phases (block by block, in a fixed order).

    Returns
    -------
    (n, M, N) complex128

    Raises
    ------
    ValueError
        Naming ``scenario``, ``clusters`` (or the offending field) or ``seed``.
    """
    scenario = check_scenario(scenario)
    _check_clusters(clusters, scenario.n_bs)
    three_d_rays = clusters.ray_zeniths is not None and not np.all(clusters.ray_zeniths == np.pi / 2)
    if scenario.geometry == "2d" and three_d_rays:
        raise ValueError("clusters: drawn for geometry='3d' (ray zeniths off the horizon), the scenario is 2-D")
    if scenario.geometry == "3d" and not three_d_rays:
        raise ValueError("clusters: drawn for geometry='2d' (every ray on the horizon), the scenario is 3-D")
    rng = rng_from_seed(seed)
    N, d = scenario.n_antennas, scenario.antenna_spacing
    multipath = scenario.multipath
    n, M = clusters.los_angle.shape
    # Cluster slots that carry power anywhere in the batch (drops the padding of all-LoS batches).
    c_used = used_slots(clusters.powers)
    h = np.empty((n, M, N), dtype=complex)
    three_d = clusters.ray_zeniths is not None
    for sl in sample_blocks(n):
        rz = clusters.ray_zeniths[sl, :, :c_used] if three_d else None
        los_sine = clusters.los_sine[sl] if clusters.los_sine is not None else np.sin(clusters.los_angle[sl])
        sum_rays(
            N,
            d,
            clusters.los_power[sl],
            los_sine,
            clusters.powers[sl, :, :c_used],
            ray_sines(clusters.ray_angles[sl, :, :c_used], rz),
            rng,
            h[sl],
            multipath=multipath,
        )
    return h
