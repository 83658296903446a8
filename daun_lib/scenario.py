"""The localisation scenario of Sec. II and IV: base stations, area, grids, dictionaries.

Conventions (used by every module of the package)
--------------------------------------------------
* Coordinates are metres in a 2-D plane; the user area is the square
  ``[-area_size/2, area_size/2]^2`` centred at the origin.
* Each BS carries a uniform linear array (ULA) with ``n_antennas`` elements at
  ``antenna_spacing`` wavelengths.  Its broadside (array normal) points along
  +x for a BS left of the area centre and along -x otherwise, so the array axis
  is the y axis.  The angle of a direction with global azimuth ``phi`` is
  ``theta = wrap(phi - normal)`` in ``(-pi, pi]``; for points of the area this
  is exactly the paper's ``theta_m(p) = arctan((p_y - p~_y) / (p_x - p~_x))``
  (Sec. II-A).  A ULA sees only ``sin(theta)``: front and back are the same.
* Steering vector (phase reference at the array centre, unit norm)::

      a(theta)[n] = exp(j 2 pi d (n - (N-1)/2) sin(theta)) / sqrt(N),  n = 0..N-1

* Dictionary scaling: every column of ``A_m`` and ``B_m`` is a unit-norm
  steering vector.  At paper scale ``||A_m||_2^2 ~= 121`` and
  ``||B_m||_2^2 ~= 12.1``; the P-ADMM steps are set from these norms
  (:func:`daun_lib.admm.default_params`).
* Position grid: ``K = nx * ny`` cell centres, spacing ``area_size / nx``;
  index ``k = ix * ny + iy`` (x major).  Angle grid: ``L`` angles uniform in
  ``(-pi/2, pi/2)`` at the bin centres ``-pi/2 + pi (l + 1/2) / L``.
* Array orientation of the dictionaries: ``A`` is ``(M, N, K)`` and ``B`` is
  ``(M, N, L)``, i.e. ``A[m]`` is the paper's ``A_m``; signals ``y`` are
  ``(n, M, N)`` and sparse estimates ``X`` are ``(n, K, M)``, ``Z`` ``(n, L, M)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

PAPER_BS_POSITIONS: tuple[tuple[float, float], ...] = (
    (-50.0, -50.0),
    (-50.0, 50.0),
    (50.0, 50.0),
    (50.0, -50.0),
)
"""BS positions of Sec. IV (metres)."""


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
        ``exp(j 2 pi spacing (n - (N-1)/2) sin(theta)) / sqrt(N)``.
    """
    theta = np.asarray(theta, dtype=float)
    n = np.arange(n_antennas) - (n_antennas - 1) / 2.0
    phase = 2.0 * np.pi * spacing * np.sin(theta)[..., None] * n
    return np.exp(1j * phase) / np.sqrt(n_antennas)


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Wrap angles to (-pi, pi]."""
    return -(np.mod(-np.asarray(angle) + np.pi, 2.0 * np.pi) - np.pi)


@dataclass(frozen=True)
class Scenario:
    """Geometry and grids of the direct-localisation problem (paper defaults).

    Parameters
    ----------
    bs_positions : tuple of (x, y)
        Centres of the M BS arrays, metres.  Default: Sec. IV, M = 4.
    n_antennas : int
        ULA elements per BS, N (50).
    area_size : float
        Side of the square user area centred at the origin, metres (40).
    grid_shape : (int, int)
        Position grid (nx, ny), K = nx * ny (30 x 30 = 900).
    n_angles : int
        Angle grid size L of the NLoS dictionaries (100).
    carrier_hz : float
        Carrier frequency (30 GHz); used by the channel model.
    los_model : "always", "3gpp" or float in [0, 1]
        Whether links have a LoS path: always (default, reproduces the paper),
        the TR 38.901 UMa LoS probability, or a fixed probability.
    antenna_spacing : float
        Element spacing in wavelengths (0.5).
    bs_height_m, ut_height_m : float
        Heights used by the TR 38.901 channel model (25 m and 1.5 m, UMa).
    """

    bs_positions: tuple[tuple[float, float], ...] = PAPER_BS_POSITIONS
    n_antennas: int = 50
    area_size: float = 40.0
    grid_shape: tuple[int, int] = (30, 30)
    n_angles: int = 100
    carrier_hz: float = 30e9
    los_model: str | float = "always"
    antenna_spacing: float = 0.5
    bs_height_m: float = 25.0
    ut_height_m: float = 1.5

    def __post_init__(self) -> None:
        try:
            bs = tuple(tuple(float(c) for c in p) for p in self.bs_positions)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bs_positions: expected a sequence of (x, y) pairs, got {self.bs_positions!r}") from exc
        if len(bs) < 1 or any(len(p) != 2 for p in bs) or not np.isfinite(np.array(bs)).all():
            raise ValueError(f"bs_positions: expected at least one finite (x, y) pair, got {self.bs_positions!r}")
        object.__setattr__(self, "bs_positions", bs)
        if isinstance(self.n_antennas, bool) or not isinstance(self.n_antennas, numbers.Integral) or self.n_antennas < 1:
            raise ValueError(f"n_antennas: expected a positive integer, got {self.n_antennas!r}")
        if isinstance(self.n_angles, bool) or not isinstance(self.n_angles, numbers.Integral) or self.n_angles < 1:
            raise ValueError(f"n_angles: expected a positive integer, got {self.n_angles!r}")
        gs = tuple(self.grid_shape) if isinstance(self.grid_shape, (tuple, list)) else None
        if (
            gs is None
            or len(gs) != 2
            or any(isinstance(g, bool) or not isinstance(g, numbers.Integral) or g < 1 for g in gs)
        ):
            raise ValueError(f"grid_shape: expected two positive integers (nx, ny), got {self.grid_shape!r}")
        object.__setattr__(self, "grid_shape", (int(gs[0]), int(gs[1])))
        for name in ("area_size", "carrier_hz", "antenna_spacing", "bs_height_m", "ut_height_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name}: expected a finite positive number, got {v!r}")
        lm = self.los_model
        if isinstance(lm, str):
            if lm not in ("always", "3gpp"):
                raise ValueError(f"los_model: expected 'always', '3gpp' or a probability in [0, 1], got {lm!r}")
        elif isinstance(lm, bool) or not isinstance(lm, numbers.Real) or not (0.0 <= lm <= 1.0):
            raise ValueError(f"los_model: expected 'always', '3gpp' or a probability in [0, 1], got {lm!r}")
        half = self.area_size / 2.0
        inside = [abs(x) <= half and abs(y) <= half for x, y in bs]
        if any(inside):
            raise ValueError("bs_positions: every BS must lie outside the user area (far field, Sec. II-A)")

    # ------------------------------------------------------------------ sizes
    @property
    def n_bs(self) -> int:
        """Number of base stations M."""
        return len(self.bs_positions)

    @property
    def n_grid(self) -> int:
        """Number of grid positions K."""
        return self.grid_shape[0] * self.grid_shape[1]

    @property
    def grid_spacing(self) -> tuple[float, float]:
        """Cell size (dx, dy) of the position grid, metres."""
        return (self.area_size / self.grid_shape[0], self.area_size / self.grid_shape[1])

    @property
    def wavelength(self) -> float:
        """Carrier wavelength, metres."""
        return 299_792_458.0 / self.carrier_hz

    # ------------------------------------------------------------------ grids
    @property
    def bs_array(self) -> np.ndarray:
        """(M, 2) float: BS positions."""
        return np.array(self.bs_positions, dtype=float)

    @property
    def array_normals(self) -> np.ndarray:
        """(M,) float: global azimuth of each array's broadside (0 or pi)."""
        return np.where(self.bs_array[:, 0] < 0.0, 0.0, np.pi)

    @property
    def grid(self) -> np.ndarray:
        """(K, 2) float: cell centres of the position grid, index k = ix * ny + iy."""
        nx, ny = self.grid_shape
        half = self.area_size / 2.0
        xs = -half + (np.arange(nx) + 0.5) * self.area_size / nx
        ys = -half + (np.arange(ny) + 0.5) * self.area_size / ny
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1)

    @property
    def angles(self) -> np.ndarray:
        """(L,) float: the NLoS angle grid, radians, bin centres in (-pi/2, pi/2)."""
        return -np.pi / 2 + np.pi * (np.arange(self.n_angles) + 0.5) / self.n_angles

    def los_angles(self, positions: np.ndarray) -> np.ndarray:
        """Angle of the LoS path from each position to each BS array.

        Parameters
        ----------
        positions : (n, 2) float
            User positions, metres.

        Returns
        -------
        (n, M) float
            ``theta_m(p)`` in radians relative to each array's broadside.
        """
        p = np.asarray(positions, dtype=float)
        if p.ndim != 2 or p.shape[1] != 2 or not np.isfinite(p).all():
            raise ValueError(f"positions: expected a finite (n, 2) array, got shape {p.shape}")
        d = p[:, None, :] - self.bs_array[None, :, :]
        phi = np.arctan2(d[..., 1], d[..., 0])
        return _wrap(phi - self.array_normals[None, :])

    def dictionaries(self) -> tuple[np.ndarray, np.ndarray]:
        """The sparse dictionaries of (2).

        Returns
        -------
        A : (M, N, K) complex128
            ``A[m][:, k] = a_m(theta_m(Phi_k))``, unit-norm columns.
        B : (M, N, L) complex128
            ``B[m][:, l] = a_m(vartheta_l)``, unit-norm columns.
        """
        theta = self.los_angles(self.grid).T  # (M, K)
        A = np.swapaxes(steering(theta, self.n_antennas, self.antenna_spacing), 1, 2)
        b = steering(self.angles, self.n_antennas, self.antenna_spacing).T  # (N, L)
        B = np.broadcast_to(b, (self.n_bs,) + b.shape).copy()
        return np.ascontiguousarray(A), B

    def nearest_grid(self, positions: np.ndarray) -> np.ndarray:
        """(n,) int: index of the grid cell nearest to each of ``positions`` (n, 2)."""
        p = np.asarray(positions, dtype=float)
        if p.ndim != 2 or p.shape[1] != 2 or not np.isfinite(p).all():
            raise ValueError(f"positions: expected a finite (n, 2) array, got shape {p.shape}")
        nx, ny = self.grid_shape
        dx, dy = self.grid_spacing
        half = self.area_size / 2.0
        ix = np.clip(np.floor((p[:, 0] + half) / dx), 0, nx - 1).astype(int)
        iy = np.clip(np.floor((p[:, 1] + half) / dy), 0, ny - 1).astype(int)
        return ix * ny + iy
