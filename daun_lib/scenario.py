"""The localisation scenario of Sec. II and IV: base stations, area, grids, dictionaries.

Conventions (used by every module of the package)
--------------------------------------------------
* Coordinates are metres in a 2-D plane; the user area is the square
  ``[-area_size/2, area_size/2]^2`` centred at the origin.
* Each BS carries a uniform linear array (ULA) with ``n_antennas`` elements at
  ``antenna_spacing`` wavelengths.  By default its broadside (array normal)
  points along +x for a BS left of the area centre and along -x otherwise, so
  the array axis is parallel to the y axis; ``Scenario.array_normal_deg`` sets
  each broadside explicitly.  The angle of a direction with global azimuth ``phi`` is
  ``theta = wrap(phi - normal)`` in ``(-pi, pi]``; for points of the area this
  is exactly the paper's ``theta_m(p) = arctan((p_y - p~_y) / (p_x - p~_x))``
  (Sec. II-A).  A ULA sees only ``sin(theta)``: front and back are the same.
* Steering vector (phase reference at the array centre, unit norm; :mod:`daun_lib.arrays`)::

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

from ._validation import positions as _check_positions
from ._validation import positive, real_array
from .arrays import (
    array_phase,
    check_identifiable,
    element_offsets,
    element_wavenumbers,
    phase_step,
    steering,
    wrap_angle,
)
from .operators import for_scenario

__all__ = [
    "DICTIONARY_FIELDS",
    "GEOMETRIES",
    "PAPER_BS_POSITIONS",
    "Scenario",
    "array_phase",
    "element_offsets",
    "element_wavenumbers",
    "phase_step",
    "steering",
    "wrap_angle",
]

#: Scenario fields that determine the dictionaries ``A`` and ``B`` (and hence a
#: trained network's operators) in the default ``geometry="2d"``, where the LoS
#: model, carrier and heights only change the channel statistics.  Kept for
#: compatibility: the complete rule, which adds ``geometry`` and, in ``"3d"``,
#: the heights, is :meth:`Scenario.dictionary_fields`.
DICTIONARY_FIELDS: tuple[str, ...] = (
    "bs_positions",
    "n_antennas",
    "area_size",
    "grid_shape",
    "n_angles",
    "antenna_spacing",
    "array_normal_deg",
)

#: Values of :attr:`Scenario.geometry`.
GEOMETRIES: tuple[str, ...] = ("2d", "3d")

PAPER_BS_POSITIONS: tuple[tuple[float, float], ...] = (
    (-50.0, -50.0),
    (-50.0, 50.0),
    (50.0, 50.0),
    (50.0, -50.0),
)
"""BS positions of Sec. IV (metres)."""


@dataclass(frozen=True)
class Scenario:
    """Geometry and grids of the direct-localisation problem (paper defaults).

    Parameters
    ----------
    bs_positions : tuple of (x, y)
        Centres of the M BS arrays, metres, all outside the user area.
        Default: Sec. IV, M = 4.
    n_antennas : int
        ULA elements per BS, N >= 2 (50).
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
        Heights of the arrays and of the users (25 m and 1.5 m, TR 38.901
        Table 7.4.1-1 UMa).  In ``"2d"`` only the TR 38.901 channel model uses
        them; in ``"3d"`` they also set the measured LoS direction (and so the
        dictionaries, see :meth:`los_sines`).
    array_normal_deg : tuple of M floats or None
        Global azimuth of each array's broadside, degrees counter-clockwise
        from +x.  ``None`` (default) keeps the paper's rule: 0 deg for a BS with
        x < 0, 180 deg otherwise; an explicit value equal to that rule (modulo
        360 deg) is stored as ``None``, so equal geometries compare equal (the
        pretrained weights accept it).  :attr:`array_normals` gives the values
        in radians.
    geometry : "2d" or "3d"
        ``"2d"`` (default, the paper's Sec. II-A): arrays and users in one
        plane, a ULA measures ``sin`` of the in-plane angle.  ``"3d"``: the
        arrays are horizontal ULAs at ``bs_height_m`` and the users are at
        ``ut_height_m``; a ULA measures the cosine of the angle between its
        axis and the 3-D direction to the user (the cone angle), which the
        elevation compresses.  ``A`` is then built from that cone angle
        (height-aware dictionaries); ``B`` stays a grid of the measured
        ``sin(theta)``.
    ut_height_range_m : (low, high) or None
        ``"3d"`` only (``"2d"`` ignores heights, so a range there raises
        ``ValueError``).  ``None`` (default): every user at ``ut_height_m``.
        A range: :func:`daun_lib.channel.simulate` draws each user's height
        uniformly in ``[low, high]`` metres (reported as
        ``ChannelBatch.ut_heights``) and the 3-D channel uses it (LoS cone
        angle, LoS zenith, lgZSD, ZOD offset and LoS probability of TR 38.901
        Tables 7.4.2-1 and 7.5-7).  The dictionaries keep the nominal
        ``ut_height_m`` (the localiser does not know the user's height), so
        the range is not a dictionary field (:meth:`dictionary_fields`).
        Requires finite ``0 < low <= ut_height_m <= high < bs_height_m`` and,
        with ``los_model="3gpp"``, ``high <= 23`` (the UMa LoS probability's
        domain).
    multipath : bool
        ``True`` (default): each link is the TR 38.901 UMa clustered channel
        (LoS ray plus the scattered clusters, :mod:`daun_lib.channel`).
        ``False``: each link is its LoS ray alone,
        ``h_m = exp(j phi_m) sqrt(N) a_m(u_m(p))`` with ``u_m(p)`` of
        :meth:`los_sines` (the user's own height in ``"3d"``), the model of
        the position CRB (:mod:`daun_lib.bounds`); the same seed draws the
        same numbers as with ``True`` (same users, LoS phases and noise) and
        only the cluster rays are dropped.  Requires ``los_model="always"``
        (``ValueError`` naming ``multipath`` otherwise): a blocked link has
        no LoS ray, so without its clusters it would carry no signal.  Not a
        dictionary field (the dictionaries and a trained network do not
        depend on it).

    Identifiability rules (checked on construction, :func:`daun_lib.arrays.check_identifiable`)
    -------------------------------------------------------------------------------------------
    A ULA measures only ``sin(theta)``, the direction cosine along its axis
    (the line through the BS perpendicular to the broadside).  Two points that
    are mirror images across that axis line give the same steering vector, and
    directions whose ``sin(theta)`` differ by ``1 / antenna_spacing`` alias
    (grating lobes).  Hence:

    * ``n_antennas < 2`` raises ``ValueError``: one antenna measures no angle.
    * An array is *ambiguous* when its axis line passes through the interior
      of the user area (e.g. a BS straight above the area with the default
      broadside): users mirrored across that line are indistinguishable for
      it.  Each ambiguous array gets a ``UserWarning`` naming its index and
      position.
    * An unambiguous array whose broadside points away from the area raises
      ``ValueError`` (``array_normal_deg``): its angles would be the mirror
      images of the true ones for every bearing-based method; turn it by
      180 deg.
    * BSs at the same position give a ``UserWarning`` (they measure the same
      bearing).
    * Fewer than two unambiguous arrays at distinct positions raises
      ``ValueError`` ("fewer than two usable arrays"): one bearing (or a set of
      bearings from one point) fixes a line, not a position.  This also
      rejects a one-BS scenario and BSs that all coincide.  A single link's
      channel can still be studied with any valid scenario (each BS's
      channel is drawn independently).
    * An unambiguous array with ``antenna_spacing > 0.5`` whose view of the
      area spans ``sin(theta)`` values at least ``1 / antenna_spacing`` apart
      gets a ``UserWarning`` (grating-lobe ambiguity inside the area).

    The same rules hold in ``"3d"``: users mirrored across the (horizontal)
    axis line have the same 3-D distance and the same offset along the axis,
    hence the same cone angle; the grating-lobe check uses the 3-D
    ``sin(theta)`` values (:meth:`los_sines`).

    The paper's default set-up triggers none of these.
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
    array_normal_deg: tuple[float, ...] | None = None
    geometry: str = "2d"
    ut_height_range_m: tuple[float, float] | None = None
    multipath: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, str) or self.geometry not in GEOMETRIES:
            raise ValueError(f"geometry: expected one of {GEOMETRIES}, got {self.geometry!r}")
        try:
            bs = tuple(tuple(float(c) for c in p) for p in self.bs_positions)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bs_positions: expected a sequence of (x, y) pairs, got {self.bs_positions!r}") from exc
        if len(bs) < 1 or any(len(p) != 2 for p in bs) or not np.isfinite(np.array(bs)).all():
            raise ValueError(f"bs_positions: expected at least one finite (x, y) pair, got {self.bs_positions!r}")
        object.__setattr__(self, "bs_positions", bs)
        if (
            isinstance(self.n_antennas, bool)
            or not isinstance(self.n_antennas, numbers.Integral)
            or self.n_antennas < 2
        ):
            raise ValueError(
                f"n_antennas: expected an integer >= 2 (a single antenna measures no angle), got {self.n_antennas!r}"
            )
        positive(self.n_angles, "n_angles", integer=True)
        gs = tuple(self.grid_shape) if isinstance(self.grid_shape, (tuple, list)) else None
        if (
            gs is None
            or len(gs) != 2
            or any(isinstance(g, bool) or not isinstance(g, numbers.Integral) or g < 1 for g in gs)
        ):
            raise ValueError(f"grid_shape: expected two positive integers (nx, ny), got {self.grid_shape!r}")
        object.__setattr__(self, "grid_shape", (int(gs[0]), int(gs[1])))
        for name in ("area_size", "carrier_hz", "antenna_spacing", "bs_height_m", "ut_height_m"):
            positive(getattr(self, name), name)
        lm = self.los_model
        if isinstance(lm, str):
            if lm not in ("always", "3gpp"):
                raise ValueError(f"los_model: expected 'always', '3gpp' or a probability in [0, 1], got {lm!r}")
        elif isinstance(lm, bool) or not isinstance(lm, numbers.Real) or not (0.0 <= lm <= 1.0):
            raise ValueError(f"los_model: expected 'always', '3gpp' or a probability in [0, 1], got {lm!r}")
        if not isinstance(self.multipath, bool):
            raise ValueError(f"multipath: expected True or False (a bool), got {self.multipath!r}")
        if not self.multipath and lm != "always":
            raise ValueError(
                f"multipath: False (each link its LoS ray alone) needs los_model='always', got los_model={lm!r}; "
                f"a link without LoS would carry no signal once its NLoS clusters are dropped"
            )
        self._check_height_range()
        half = self.area_size / 2.0
        inside = [abs(x) <= half and abs(y) <= half for x, y in bs]
        if any(inside):
            raise ValueError("bs_positions: every BS must lie outside the user area (far field, Sec. II-A)")
        nd = self.array_normal_deg
        if nd is not None:
            bad = ValueError(
                f"array_normal_deg: expected None or {len(bs)} finite angles in degrees (one per BS), got {nd!r}"
            )
            if isinstance(nd, (str, bytes)) or not hasattr(nd, "__len__"):
                raise bad
            if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in nd):
                raise bad
            nd = tuple(float(v) for v in nd)
            if len(nd) != len(bs) or not np.isfinite(np.array(nd)).all():
                raise bad
            rule = tuple(0.0 if x < 0.0 else 180.0 for x, _ in bs)
            if all(v % 360.0 == r for v, r in zip(nd, rule, strict=True)):
                nd = None  # the default geometry written out: one canonical form, so equal scenarios compare equal
            object.__setattr__(self, "array_normal_deg", nd)
        # the identifiability rules of the class docstring; stacklevel 4: the warnings name the caller of Scenario(...)
        check_identifiable(
            self.bs_array,
            self.array_normals,
            self.area_size,
            self.antenna_spacing,
            self.los_sines if self.geometry == "3d" else None,
            stacklevel=4,
        )

    def _check_height_range(self) -> None:
        """Validate and canonicalise :attr:`ut_height_range_m` (a tuple of two floats or None)."""
        rng = self.ut_height_range_m
        if rng is None:
            return
        bad = f"ut_height_range_m: expected None or (low, high) in metres, got {rng!r}"
        if isinstance(rng, (str, bytes)) or not hasattr(rng, "__len__") or len(rng) != 2:
            raise ValueError(bad)
        if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in rng):
            raise ValueError(bad)
        lo, hi = (float(v) for v in rng)
        if self.geometry != "3d":
            raise ValueError(
                "ut_height_range_m: per-user heights need geometry='3d' (the 2-D model has no heights); "
                f"got geometry={self.geometry!r}"
            )
        if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 < lo <= hi < self.bs_height_m):
            raise ValueError(
                f"ut_height_range_m: expected finite 0 < low <= high < bs_height_m ({self.bs_height_m:g}), got {rng!r}"
            )
        if not lo <= self.ut_height_m <= hi:
            raise ValueError(
                f"ut_height_range_m: the nominal ut_height_m ({self.ut_height_m:g}), which the dictionaries "
                f"assume, must lie in the range, got {rng!r}"
            )
        if self.los_model == "3gpp" and hi > 23.0:
            raise ValueError(
                f"ut_height_range_m: the UMa LoS probability (los_model='3gpp') is defined for h_UT <= 23 m, "
                f"got {rng!r}"
            )
        object.__setattr__(self, "ut_height_range_m", (lo, hi))

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
        """(M,) float: global azimuth of each array's broadside, radians.

        ``np.deg2rad(array_normal_deg)`` when it is set; otherwise the default
        rule: 0 for a BS with x < 0 and pi otherwise.
        """
        if self.array_normal_deg is not None:
            return np.deg2rad(np.array(self.array_normal_deg, dtype=float))
        return np.where(self.bs_array[:, 0] < 0.0, 0.0, np.pi)

    @property
    def array_axes(self) -> np.ndarray:
        """(M, 2) float: horizontal unit vector of each array's axis, ``(-sin(normal_m), cos(normal_m))``.

        ``normal_m`` is :attr:`array_normals` ``[m]``; a direction ``d`` from
        array ``m`` has ``sin(theta) = (d . axis_m) / |d|`` (:meth:`los_sines`).
        """
        nrm = self.array_normals
        return np.stack([-np.sin(nrm), np.cos(nrm)], axis=1)

    def dictionary_fields(self) -> dict:
        """The scenario fields that determine the dictionaries ``A`` and ``B``, by name.

        Returns
        -------
        dict
            ``{name: value}`` for :data:`DICTIONARY_FIELDS` and ``geometry``,
            plus ``bs_height_m`` and ``ut_height_m`` when ``geometry == "3d"``
            (in ``"2d"`` the heights do not enter the dictionaries).  Two
            scenarios with equal ``dictionary_fields()`` have identical
            dictionaries; a trained network's operators depend on nothing else.
        """
        names = DICTIONARY_FIELDS + ("geometry",)
        if self.geometry == "3d":
            names = names + ("bs_height_m", "ut_height_m")
        return {name: getattr(self, name) for name in names}

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
            User positions, metres; finite, none exactly at a BS position
            (the direction is undefined there).

        Returns
        -------
        (n, M) float
            ``theta_m(p)`` in radians relative to each array's broadside: the
            in-plane (azimuth) angle of Sec. II-A in both geometries.  In
            ``"3d"`` the array does not measure its sine; the measured
            quantity is :meth:`los_sines`.
        """
        p = _check_positions(positions, allow_empty=True)
        d = p[:, None, :] - self.bs_array[None, :, :]
        if (np.abs(d).max(axis=-1) == 0.0).any():
            raise ValueError("positions: a position coincides with a BS; its direction from that BS is undefined")
        phi = np.arctan2(d[..., 1], d[..., 0])
        return wrap_angle(phi - self.array_normals[None, :])

    def los_sines(self, positions: np.ndarray, ut_heights: np.ndarray | None = None) -> np.ndarray:
        """The quantity each ULA measures for the LoS path: ``u = sin(theta)`` along its axis.

        Parameters
        ----------
        positions : (n, 2) float
            Horizontal user positions, metres; finite, none exactly at a BS
            position.
        ut_heights : (n,) float or None
            ``"3d"`` only: each user's height, metres, finite, in
            ``(0, bs_height_m)``; ``None`` (default) puts every user at
            ``ut_height_m``.  Must be ``None`` in ``"2d"``.

        Returns
        -------
        (n, M) float
            ``u_m(p) = (d . axis_m) / |d|`` (:attr:`array_axes`), with ``d`` the
            vector from array ``m`` to the user: ``(dx, dy)`` in ``"2d"``
            (equal to ``sin(los_angles(p))`` up to round-off, the paper's
            ``sin(theta_m(p))`` of Sec. II-A), and
            ``(dx, dy, -(bs_height_m - h_n))`` in ``"3d"``, ``h_n`` the user's
            height (``ut_heights[n]`` or ``ut_height_m``) (the cosine
            of the cone angle between the axis and the 3-D direction; the
            array response of TR 38.901 eq. (7.5-22) for a horizontal ULA).
            Values lie in [-1, 1].
        """
        p = _check_positions(positions, allow_empty=True)
        dz = None
        if ut_heights is not None:
            if self.geometry != "3d":
                raise ValueError("ut_heights: per-user heights need geometry='3d' (the 2-D model has no heights)")
            h = real_array(ut_heights, "ut_heights", "a real (n,) array of heights")
            if h.shape != (p.shape[0],):
                raise ValueError(f"ut_heights: expected shape ({p.shape[0]},), got {h.shape}")
            if not (np.isfinite(h).all() and (h > 0.0).all() and (h < self.bs_height_m).all()):
                raise ValueError(f"ut_heights: expected finite heights in (0, bs_height_m = {self.bs_height_m:g})")
            dz = (self.bs_height_m - h)[:, None]
        d = p[:, None, :] - self.bs_array[None, :, :]
        if (np.abs(d).max(axis=-1) == 0.0).any():
            raise ValueError("positions: a position coincides with a BS; its direction from that BS is undefined")
        along = np.einsum("nmc,mc->nm", d, self.array_axes)
        dist2 = (d**2).sum(axis=-1)
        if self.geometry == "3d":
            dist2 = dist2 + ((self.bs_height_m - self.ut_height_m) ** 2 if dz is None else dz**2)
        return np.clip(along / np.sqrt(dist2), -1.0, 1.0)

    def los_steering(self, positions: np.ndarray) -> np.ndarray:
        """Unit-norm LoS steering vectors at continuous positions: (n, 2) metres -> (n, M, N) complex.

        ``exp(j array_phase(u)) / sqrt(N)`` of the measured sine ``u`` (:meth:`los_sines`,
        height-aware in ``"3d"``): the column of ``A`` a user at ``positions`` would have (in
        ``"3d"`` exactly the columns of :meth:`dictionaries` on the grid; in ``"2d"`` equal to
        them up to float rounding, ``A`` being built from the angles).
        """
        u = self.los_sines(positions)  # (n, M)
        return np.exp(1j * array_phase(u, self.n_antennas, self.antenna_spacing)) / np.sqrt(self.n_antennas)

    def dictionaries(self) -> tuple[np.ndarray, np.ndarray]:
        """The sparse dictionaries of (2).

        Returns
        -------
        A : (M, N, K) complex128
            ``A[m][:, k] = a_m(theta_m(Phi_k))``, unit-norm columns; in
            ``"3d"`` the steering vector of the measured ``u_m(Phi_k)``
            (:meth:`los_sines`, height-aware), i.e. ``exp(j array_phase(u)) / sqrt(N)``.
        B : (M, N, L) complex128
            ``B[m][:, l] = a_m(vartheta_l)``, unit-norm columns (a grid of the
            measured ``sin(theta)`` in both geometries).
        """
        if self.geometry == "3d":
            A = np.transpose(self.los_steering(self.grid), (1, 2, 0))  # (K, M, N) -> (M, N, K)
        else:
            theta = self.los_angles(self.grid).T  # (M, K)
            A = np.swapaxes(steering(theta, self.n_antennas, self.antenna_spacing), 1, 2)
        b = steering(self.angles, self.n_antennas, self.antenna_spacing).T  # (N, L)
        B = np.broadcast_to(b, (self.n_bs,) + b.shape).copy()
        return np.ascontiguousarray(A), B

    def nearest_grid(self, positions: np.ndarray) -> np.ndarray:
        """(n,) int: index of the grid cell nearest to each of ``positions`` (n, 2), finite.

        Positions outside the area map to the nearest edge cell; ``n = 0``
        gives an empty result.
        """
        p = _check_positions(positions, allow_empty=True)
        nx, ny = self.grid_shape
        dx, dy = self.grid_spacing
        half = self.area_size / 2.0
        ix = np.clip(np.floor((p[:, 0] + half) / dx), 0, nx - 1).astype(int)
        iy = np.clip(np.floor((p[:, 1] + half) / dy), 0, ny - 1).astype(int)
        return ix * ny + iy

    def operators(self, kind: str = "auto", batch: int = 256) -> tuple:
        """(A, B) as operators ("dense" or FFT-based "structured", any grid): :func:`daun_lib.operators.for_scenario`."""
        return for_scenario(self, kind, batch)
