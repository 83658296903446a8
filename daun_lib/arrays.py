r"""The uniform linear array (ULA) of every BS: element geometry, phases, steering vectors, and
what a set of ULAs can tell apart.

A ULA with ``N`` elements at spacing ``d`` wavelengths (phase reference at the array centre) sees
a direction only through ``u = sin(theta)``, ``theta`` the angle from its broadside
(Sec. II-A of the paper)::

    a(theta)[n] = exp(j 2 pi d (n - (N-1)/2) sin(theta)) / sqrt(N),  n = 0..N-1      (unit norm)

* :func:`element_offsets` (N,) ``n - (N-1)/2``; :func:`phase_step` ``2 pi d u``;
  :func:`array_phase` (..., N) the phase term, the one place it is written out;
  :func:`element_wavenumbers` (N,) ``k_n = 2 pi d (n - (N-1)/2)``, the factor of ``u`` in it;
* :func:`steering` (..., N) complex: the unit-norm steering vectors of angles (..., );
* :func:`wrap_angle`: angles to ``(-pi, pi]`` (array angle ``wrap(phi - broadside)`` of a global
  azimuth ``phi``);
* :func:`check_identifiable`: the identifiability rules of :class:`daun_lib.scenario.Scenario`
  (mirror images across an array's axis line, an array facing away from the area, grating lobes,
  coinciding BSs, fewer than two usable arrays), on the BS positions (M, 2) and broadsides (M,).

The scenario (:mod:`daun_lib.scenario`) builds its dictionaries and LoS steering vectors from
these functions and re-exports them; they need no :class:`Scenario`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ._validation import positive, real_array

__all__ = [
    "array_phase",
    "check_identifiable",
    "element_offsets",
    "element_wavenumbers",
    "phase_step",
    "steering",
    "wrap_angle",
]


def element_offsets(n_antennas: int) -> np.ndarray:
    """(N,) float: element positions ``n - (N-1)/2``, n = 0..N-1, in units of the spacing (centred)."""
    return np.arange(n_antennas) - (n_antennas - 1) / 2.0


def phase_step(sin_theta: np.ndarray, spacing: float) -> np.ndarray:
    """(...) float: phase difference ``2 pi d sin(theta)`` between neighbouring elements of a ULA."""
    return 2.0 * np.pi * spacing * sin_theta


def array_phase(sin_theta: np.ndarray, n_antennas: int, spacing: float) -> np.ndarray:
    """The ULA phase term of the steering vector, the one place it is written out.

    Parameters
    ----------
    sin_theta : (...) float
        Direction cosines ``sin(theta)`` along the array axis (trusted: finite, real).
    n_antennas : int
        Number of elements N.
    spacing : float
        Element spacing d in wavelengths.

    Returns
    -------
    (..., N) float
        ``2 pi d (n - (N-1)/2) sin(theta)``, i.e. :func:`phase_step` times :func:`element_offsets`.
    """
    return phase_step(sin_theta, spacing)[..., None] * element_offsets(n_antennas)


def element_wavenumbers(n_antennas: int, spacing: float) -> np.ndarray:
    """(N,) float: ``2 pi d (n - (N-1)/2)``, the factor of ``sin(theta)`` in :func:`array_phase`.

    For code that multiplies many ``sin(theta)`` values by the same factor
    (``u[..., None] * element_wavenumbers(N, d)``); equal to :func:`array_phase`
    up to float rounding (the products are associated differently).
    """
    return 2.0 * np.pi * spacing * element_offsets(n_antennas)


def steering(theta: np.ndarray, n_antennas: int, spacing: float = 0.5) -> np.ndarray:
    """Unit-norm ULA steering vectors.

    Parameters
    ----------
    theta : (...,) float
        Angles from broadside, radians.
    n_antennas : int
        Number of elements N.
    spacing : float
        Element spacing in wavelengths.

    Returns
    -------
    (..., N) complex128
        ``exp(j 2 pi spacing (n - (N-1)/2) sin(theta)) / sqrt(N)`` (:func:`array_phase`).

    Raises
    ------
    ValueError
        ``theta`` not real or not finite, ``n_antennas`` not a positive
        integer, ``spacing`` not a finite positive number.
    """
    positive(n_antennas, "n_antennas", integer=True)
    positive(spacing, "spacing")
    theta = real_array(theta, "theta", "a real array of angles")
    if not np.isfinite(theta).all():
        raise ValueError("theta: contains NaN or inf")
    return np.exp(1j * array_phase(np.sin(theta), n_antennas, spacing)) / np.sqrt(n_antennas)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap angles to (-pi, pi]."""
    return -(np.mod(-np.asarray(angle) + np.pi, 2.0 * np.pi) - np.pi)


def check_identifiable(
    bs: np.ndarray,
    normals: np.ndarray,
    area_size: float,
    spacing: float,
    los_sines: Callable[[np.ndarray], np.ndarray] | None,
    stacklevel: int,
) -> None:
    """Apply the identifiability rules of the :class:`~daun_lib.scenario.Scenario` docstring (warn or raise).

    Parameters
    ----------
    bs : (M, 2) float
        BS (array centre) positions, metres.
    normals : (M,) float
        Global azimuth of each array's broadside, radians.
    area_size : float
        Side of the square user area centred at the origin, metres.
    spacing : float
        Element spacing in wavelengths (grating lobes above 0.5).
    los_sines : callable or None
        ``points (k, 2) -> (k, M)``: the sines the arrays measure (``Scenario.los_sines`` in
        ``"3d"``); None: the in-plane sines of the 2-D model.
    stacklevel : int
        Of the warnings (the caller's frame that they name).

    Raises
    ------
    ValueError
        An unambiguous array facing away from the area (``array_normal_deg``) or fewer than two
        usable arrays at distinct positions (``bs_positions``).
    """
    half = area_size / 2.0
    corners = np.array([[-half, -half], [-half, half], [half, -half], [half, half]])
    scale = half + np.abs(bs).max()
    tol = 1e-9 * scale
    usable = []
    for m, (b, nrm) in enumerate(zip(bs, normals, strict=True)):
        nvec = np.array([np.cos(nrm), np.sin(nrm)])
        ahead = (corners - b) @ nvec  # signed distances of the corners from the axis line
        where = f"BS {m} at ({b[0]:g}, {b[1]:g}) (broadside {np.rad2deg(nrm):g} deg)"
        if ahead.min() < -tol and ahead.max() > tol:
            warnings.warn(
                f"{where}: its array axis passes through the user area, so users mirrored across that "
                f"line give identical signals at this BS (mirror ambiguity); set array_normal_deg or move "
                f"the BS so that the whole area lies on one side of the axis",
                UserWarning,
                stacklevel=stacklevel,
            )
            continue
        if ahead.max() <= tol:
            raise ValueError(
                f"array_normal_deg: {where} faces away from the user area; a ULA cannot tell front from "
                f"back, so every angle it reports would be mirrored: turn this broadside by 180 deg"
            )
        usable.append(m)
        axis = np.array([-np.sin(nrm), np.cos(nrm)])
        if los_sines is not None:
            sin_t = los_sines(corners)[:, m]
        else:
            rel = corners - b
            sin_t = (rel @ axis) / np.linalg.norm(rel, axis=1)
        if spacing > 0.5 and (sin_t.max() - sin_t.min()) * spacing >= 1.0 - 1e-12:
            warnings.warn(
                f"{where}: with antenna_spacing {spacing:g} > 0.5 the array has grating lobes "
                f"inside the user area (directions whose sin(theta) differ by 1/spacing give identical signals)",
                UserWarning,
                stacklevel=stacklevel,
            )
    M = len(bs)
    groups: list[list[int]] = []
    for m in range(M):
        for g in groups:
            if np.linalg.norm(bs[g[0]] - bs[m]) <= tol:
                g.append(m)
                break
        else:
            groups.append([m])
    for g in groups:
        if len(g) > 1:
            warnings.warn(
                f"bs_positions: BSs {g} coincide at ({bs[g[0]][0]:g}, {bs[g[0]][1]:g}); they measure the "
                f"same bearing and add no geometric diversity",
                UserWarning,
                stacklevel=stacklevel,
            )
    distinct = {min(g) for g in groups for m in g if m in usable}
    if len(distinct) < 2:
        raise ValueError(
            f"bs_positions: fewer than two usable arrays ({len(usable)} of {M} arrays are unambiguous, at "
            f"{len(distinct)} distinct position(s)); a position needs bearings from at least two distinct "
            f"points whose array axes do not cross the user area (see the Scenario docstring; "
            f"array_normal_deg sets the broadsides)"
        )
