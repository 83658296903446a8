r"""Multi-user searches that are not a readout of one map: successive cancellation and OMP.

* :class:`SICLocalizer`: DPD with successive cancellation.  Step ``u`` searches the conditional
  DPD cost of a new user given the ``u - 1`` found ones: per BS, ``y_m`` is projected onto the
  orthogonal complement of the found users' LoS steering vectors ``a_m(p_j)``
  (``P_m = I - V_m V_m^+``) and a cell scores ``sum_m |a_m(k)^H P_m y_m|^2 / ||P_m a_m(k)||^2``
  (:func:`conditional_cost`: the concentrated likelihood of one more LoS source with unknown
  gain, the first step of Ziskind & Wax's alternating projection; a BS that sees the cell in the
  span of the found vectors, ``||P_m a_m(k)||^2 < 1e-6``, contributes nothing).  Step 1 is the
  plain DPD cost.  Found users' neighbourhoods (``suppression_m``) are excluded as in the peak
  picking of :mod:`daun_lib.peaks`: a grid pick is up to half a cell off the user, so the
  projection leaves a residue of that user next to its cell.  Readouts ``"grid"``, ``"ml"`` (per
  user after cancelling the others) and ``"ap"`` (the joint ML from the picks).
* :class:`OMPLocalizer`: simultaneous orthogonal matching pursuit on ``A`` (Tropp, Gilbert &
  Strauss 2006): the support is shared by the BSs (one grid cell = one atom per BS), each step
  picks ``argmax_k sum_m |A_m[:, k]^H r_m|^2`` and refits the gains of all picked cells per BS by
  least squares, ``r_m = (I - A_{m,S} A_{m,S}^+) y_m``.  The NLoS dictionary ``B`` is *not* in the
  fit: its atoms have a free support per BS, so a greedy fit with ``B`` explains any user's beam
  at one BS by a ``B`` atom (the freedom that makes loss (18) collapse), which would remove the
  very beams the next pick needs.  This pursuit is SIC without the normalisation by
  ``||P_m a_m(k)||^2`` and without suppression.

Both implement the localiser contract (:meth:`daun_lib.localizers.Localizer.locate`); with one
user each is the grid DPD (``"ml"``/``"ap"``: DPD-ML).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import joint_ml
from .._alternating_projection import conditional_cost as _conditional_cost
from .._checks import dictionaries
from .._fingerprint import fingerprint
from .._memo import active, shared
from .._validation import as_array
from ..baselines import dpd
from ..joint_ml import orthonormal_basis, project_out
from ..localizers import Localizer
from ..peaks import SUPPRESSION_M, cell_distances, check_suppression, found_atoms, ml_per_user, pick
from ..scenario import Scenario

__all__ = ["SICLocalizer", "OMPLocalizer", "conditional_cost", "sic_cells"]

_SIC_READOUTS = ("grid", "ml", "ap")


def conditional_cost(A: np.ndarray, y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """:func:`daun_lib._alternating_projection.conditional_cost` (the cost, shapes and span rule) on checked inputs:
    ``A`` (M, N, K), ``y`` (n, M, N) and ``Q`` (n, M, N, u) finite, of matching shapes, else ``ValueError``
    naming the argument.  -> (n, K) float.
    """
    A = np.asarray(as_array(A, "A", 3))
    y = np.asarray(as_array(y, "y", 3))
    Q = np.asarray(as_array(Q, "Q", 4))
    M, N, _ = A.shape
    if y.shape[1:] != (M, N):
        raise ValueError(f"y: expected (n, {M}, {N}) to match A (M, N, K) = {A.shape}, got {y.shape}")
    if Q.shape[:3] != y.shape:
        raise ValueError(f"Q: expected (n, M, N, u) = {y.shape + ('u',)} to match y, got {Q.shape}")
    return _conditional_cost(A, y, Q)


def _scenario_key(scenario: Scenario) -> str:
    """Fingerprint of a scenario (it determines the dictionaries the picks are searched on)."""
    return fingerprint(scenario, name="scenario")


@dataclass(frozen=True)
class SICLocalizer(Localizer):
    """DPD with successive cancellation (:func:`conditional_cost`, suppression) -> (n, U, 2).

    Attributes
    ----------
    suppression_m : float >= 0
        Cells within this distance of a found user are not picked again (3 m, as the peaks).
    readout : "grid", "ml" or "ap"
        The picked cells' centres; the continuous ML per user after projecting off the
        other users' atoms (:func:`_ml_per_user`); or the joint ML of all users from the picks
        (:func:`daun_lib.joint_ml.joint_newton`).
    """

    suppression_m: float = SUPPRESSION_M
    readout: str = "grid"
    multi_user: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "suppression_m", check_suppression(self.suppression_m))
        if self.readout not in _SIC_READOUTS:
            raise ValueError(f"readout: expected one of {_SIC_READOUTS}, got {self.readout!r}")

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        if n_users > scenario.n_antennas:
            raise ValueError(
                f"n_users: the cancellation projects one steering vector per found user out of each BS's "
                f"{scenario.n_antennas} antennas; expected at most {scenario.n_antennas} users, got {n_users}"
            )

    def _process(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        # the picks do not depend on the readout: the three SIC entries of a sweep chunk compute them once
        def picks() -> np.ndarray:
            return sic_cells(scenario, y, n_users, self.suppression_m)[0]

        key = ("sic_cells", _scenario_key(scenario), n_users, self.suppression_m)
        k = shared(key, y, picks) if active() else picks()
        pos = scenario.grid[k]
        if self.readout == "ml":
            return ml_per_user(scenario, y, k, pos)
        if self.readout == "ap":
            return joint_ml.joint_ascent(scenario, y, pos)[0]
        return pos


def sic_cells(scenario: Scenario, y: np.ndarray, n_users: int, suppression_m: float) -> tuple[np.ndarray, np.ndarray]:
    """SIC picks (n, U) int and the peak value of the conditional cost at each pick (n, U)."""
    A = dictionaries(scenario)[0]
    cells = scenario.grid
    D = cell_distances(cells)
    n = y.shape[0]
    rows = np.arange(n)
    blocked = np.zeros((n, scenario.n_grid), dtype=bool)
    picked = np.zeros((n, scenario.n_grid), dtype=bool)
    k = np.empty((n, n_users), dtype=np.int64)
    peak = np.empty((n, n_users))
    for u in range(n_users):
        if u == 0:
            score = dpd.cost(A, y)
        else:
            score = _conditional_cost(A, y, orthonormal_basis(found_atoms(A, k[:, :u])))
        k[:, u] = pick(score, D, suppression_m, blocked, picked)
        peak[:, u] = score[rows, k[:, u]]
    return k, peak


@dataclass(frozen=True)
class OMPLocalizer(Localizer):
    """Simultaneous OMP on the LoS dictionary A (support shared across BSs) -> (n, U, 2).

    Each step picks ``argmax_k sum_m |A_m[:, k]^H r_m|^2`` (the DPD cost of the residual,
    :func:`daun_lib.baselines.dpd.cost`; picked cells excluded) and refits all picked cells'
    gains per sample and BS by least squares: ``r_m = (I - A_{m,S} A_{m,S}^+) y_m``.  ``B`` is
    not in the fit (module docstring).  With ``n_users = 1`` it is the grid DPD.
    """

    multi_user: ClassVar[bool] = True

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        if n_users > scenario.n_antennas:
            raise ValueError(
                f"n_users: the least-squares refit of {n_users} cells per BS needs at most N = "
                f"{scenario.n_antennas} of them; got {n_users}"
            )

    def _process(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        A = dictionaries(scenario)[0]
        n = y.shape[0]
        rows = np.arange(n)
        k = np.empty((n, n_users), dtype=np.int64)
        picked = np.zeros((n, scenario.n_grid), dtype=bool)
        r = y
        for u in range(n_users):
            score = np.where(picked, -np.inf, dpd.cost(A, r))
            k[:, u] = np.argmax(score, axis=1)
            picked[rows, k[:, u]] = True
            if u + 1 < n_users:
                r = project_out(y, orthonormal_basis(found_atoms(A, k[:, : u + 1])))
        return scenario.grid[k]
