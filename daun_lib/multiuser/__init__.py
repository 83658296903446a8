r"""Several users in one snapshot (issue 14): multi-user localisers and their metrics.

Model.  ``U`` users transmit on the same resource; BS ``m`` receives the sum of their
channels and one noise draw (model (1) summed over the users),

.. math::

    y_m = \sum_{u=1}^{U} \sqrt{\omega_u}\, h_{u,m} + n_m,\qquad n_m \sim \mathcal{CN}(0, I_N),

so the LoS part of ``y_m`` is ``A_m X[:, m]`` with ``U`` active rows of ``X`` (the row
sparsity of (3)).  Every localiser here has the shape

    ``f(scenario, y (n, M, N), n_users: int) -> positions (n, U, 2)`` in metres,

the order of the ``U`` estimates of a sample being arbitrary (:func:`daun_lib.metrics.assigned_errors`
matches them to the truth by an optimal assignment).

Localisers (frozen dataclasses; their fields are the whole configuration):

* :class:`PeaksLocalizer`: a score map over the position grid (the DPD cost (Weiss 2004,
  :func:`daun_lib.baselines.dpd.cost`), or the row powers ``||X[k, :]||^2`` of any single-user
  map estimator with a ``_map``: P-ADMM, DAUN, VB, MM), ``U`` peaks picked greedily, each pick
  suppressing the cells within ``suppression_m`` of it (issue 14: "a second user's peak found
  after suppressing 3 m around the first").  Readout per peak: the cell centre, the sub-grid
  fit of :func:`daun_lib.refine.subgrid` around it, or the continuous ML of the user after
  projecting off the other picks' atoms (``readout="ml"``, also for :class:`SICLocalizer`).
* :class:`SICLocalizer`: DPD with successive cancellation.  Step ``u`` searches the
  conditional DPD cost of a new user given the ``u - 1`` found ones: per BS, ``y_m`` is projected
  onto the orthogonal complement of the found users' LoS steering vectors ``a_m(p_j)``
  (``P_m = I - V_m V_m^+``) and a cell scores
  ``sum_m |a_m(k)^H P_m y_m|^2 / ||P_m a_m(k)||^2`` (the concentrated likelihood of one more
  LoS source with unknown gain, i.e. the first step of Ziskind & Wax's alternating projection;
  a BS that sees the cell in the span of the found vectors, ``||P_m a_m(k)||^2 < 1e-6``,
  contributes nothing to it).  Step 1 is the plain DPD cost.  Found users' neighbourhoods
  (``suppression_m``) are excluded as in :class:`PeaksLocalizer`: a grid pick is up to half a
  cell off the user, so the projection leaves a residue of that user next to its cell.
* ``readout="ap-multi"`` (:class:`PeaksLocalizer`): the same joint ML from every U-subset of the
  U + 1 best peaks, the best joint fit kept (a weaker user that the U strongest peaks miss gets a
  start of its own).
* ``readout="ap"`` (both classes): the joint deterministic ML of the ``U`` LoS sources
  (Ziskind & Wax 1988) from the picks, every user's position refined with the others' at
  once (:func:`daun_lib.joint_ml.joint_newton`: a trust-region Newton ascent on all ``2 U``
  coordinates of the concentrated likelihood).  The name is that of the alternating projection
  the readout first used (:func:`daun_lib.joint_ml.alternating_projection`, still available).
  From the same starts the joint ascent usually ends at the better fit, though not always (from
  the SIC picks of 256 prototype snapshots at 10 dB: better in 28 % of two-user and 59 % of
  three-user samples, worse in 3 % and 8 %), and is 1.5-2 times faster (``docs/design.md``
  section 10).  ``DPD-AP`` (SIC picks, then this) is the strongest classical pipeline of
  notebook 08.
* :class:`OMPLocalizer`: simultaneous orthogonal matching pursuit on ``A`` (Tropp, Gilbert &
  Strauss 2006): the support is shared by the BSs (one grid cell = one atom per BS), each step
  picks ``argmax_k sum_m |A_m[:, k]^H r_m|^2`` and refits the gains of all picked cells per BS by
  least squares, ``r_m = (I - A_{m,S} A_{m,S}^+) y_m``.  The NLoS dictionary ``B`` is *not* in the
  fit: its atoms have a free support per BS, so a greedy fit with ``B`` explains any user's beam at
  one BS by a ``B`` atom (the freedom that makes loss (18) collapse, docs/design.md), which would
  remove the very beams the next pick needs.  Note: this pursuit is SIC without the
  normalisation by ``||P_m a_m(k)||^2`` and without suppression (the selection statistic is the
  DPD cost of the residual, whose picked atoms are exactly cancelled).

Registry :data:`MULTI_REGISTRY` (name -> localiser):

================ ================================================ ==============================================
name             entry                                            with ``n_users = 1`` equal to
================ ================================================ ==============================================
DPD-peaks        ``PeaksLocalizer("dpd")``                        ``REGISTRY["DPD"]``
DPD-SIC          ``SICLocalizer()``                               ``REGISTRY["DPD"]``
OMP              ``OMPLocalizer()``                               ``REGISTRY["DPD"]``
P-ADMM-peaks     ``PeaksLocalizer("p-admm")``                     ``REGISTRY["P-ADMM"]``
DAUN-peaks       ``PeaksLocalizer("daun")``                       ``REGISTRY["DAUN"]`` (shipped single-user net)
DPD-peaks-S      ``PeaksLocalizer("dpd", readout="subgrid")``     ``REGISTRY["DPD-S"]``
DPD-SIC-ML       ``SICLocalizer(readout="ml")``                   ``REGISTRY["DPD-ML"]``
DPD-AP           ``SICLocalizer(readout="ap")``                   ``REGISTRY["DPD-ML"]``
DPD-peaks-APM    ``PeaksLocalizer("dpd", readout="ap-multi")``    (two starts: a joint fit at least DPD-ML's)
P-ADMM-peaks-S   ``PeaksLocalizer("p-admm", readout="subgrid")``  P-ADMM with the sub-grid readout
P-ADMM-peaks-AP  ``PeaksLocalizer("p-admm", readout="ap")``       P-ADMM with the ``ml`` readout
P-ADMM-peaks-APM ``PeaksLocalizer("p-admm", readout="ap-multi")`` (two starts)
DAUN-peaks-S     ``PeaksLocalizer("daun", readout="subgrid")``    ``REGISTRY["DAUN-S"]``
DAUN-MU          peaks of the multi-user DAUN variant             (when ``weights/daun_multi2.pt`` is shipped)
DAUN-MU-S        the same with the sub-grid readout per user
DAUN-MU-AP       the same with the joint ML readout ``"ap"``
DAUN-MU-APM      the same with the multi-start ``"ap-multi"``
================ ================================================ ==============================================

The metrics of several users (optimal assignment, P(all users within r), per-user P and MSE)
are in :mod:`daun_lib.metrics` (:func:`~daun_lib.metrics.assigned_errors`,
:func:`~daun_lib.metrics.fraction_all_within`, ...); the unknown-``U`` rule is
:func:`estimate_n_users`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import gamma

from .. import joint_ml, methods
from .._checks import check_n_users, check_noise_floor, check_scenario, check_y, dictionaries
from .._validation import as_array, nonnegative
from ..baselines import dpd
from ..joint_ml import SPAN_TOL as _SPAN_TOL
from ..joint_ml import conditional_terms, joint_fit, orthonormal_basis, project_out
from ..localizers import MapLocalizer
from ..refine import row_power, subgrid
from ..scenario import Scenario

__all__ = [
    "MULTI_REGISTRY",
    "DAUN_MU_VARIANT",
    "MultiLocalizer",
    "PeaksLocalizer",
    "SICLocalizer",
    "OMPLocalizer",
    "DAUNVariantLocalizer",
    "noise_threshold",
    "joint_fit",
    "estimate_n_users",
]

#: Variant name of the DAUN trained on two-user snapshots (``daun.load_pretrained(DAUN_MU_VARIANT)``,
#: ``daun.checkpoints.VARIANTS_MULTIUSER``, weight file ``weights/daun_multi2.pt``);
#: :data:`MULTI_REGISTRY` gets a ``"DAUN-MU"`` entry only when that file is shipped (checked
#: without importing torch).
DAUN_MU_VARIANT = "multi2"
_DAUN_MU_FILE = Path(__file__).resolve().parent.parent / "weights" / "daun_multi2.pt"


def _check_suppression(value: Any) -> float:
    try:
        return nonnegative(value, "suppression_m")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"suppression_m: expected a finite number >= 0 (metres), got {value!r}") from exc


@lru_cache(maxsize=8)
def _cell_distances(cells_bytes: bytes, K: int) -> np.ndarray:
    cells = np.frombuffer(cells_bytes, dtype=np.float64).reshape(K, 2)
    d = np.sqrt(((cells[:, None, :] - cells[None, :, :]) ** 2).sum(axis=-1))
    d.setflags(write=False)
    return d


def cell_distances(cells: np.ndarray) -> np.ndarray:
    """(K, K) read-only distances between the cell centres ``cells`` (K, 2), cached."""
    cells = np.ascontiguousarray(cells, dtype=np.float64)
    return _cell_distances(cells.tobytes(), cells.shape[0])


def greedy_peaks(score: np.ndarray, cells: np.ndarray, n_users: int, suppression_m: float) -> np.ndarray:
    """``n_users`` peaks of each map, greedily, each suppressing the cells within ``suppression_m``.

    Parameters
    ----------
    score : (n, K) float
        A score per grid cell (higher = more likely a user).
    cells : (K, 2) float
        Cell centres, metres.
    n_users : int >= 1
    suppression_m : float >= 0
        Cells at distance ``<= suppression_m`` from a pick are not picked again; when every
        cell of a sample is suppressed, the best cell not yet picked is taken.

    Returns
    -------
    (n, U) int
        Grid indices, strongest first; the first column is ``argmax(score, axis=1)``.
    """
    score = np.asarray(as_array(score, "score", 2, complex_ok=False), dtype=float)
    n_users = check_n_users(n_users)
    suppression_m = _check_suppression(suppression_m)
    n, K = score.shape
    if n_users > K:
        raise ValueError(f"n_users: expected at most K = {K} (one cell per user), got {n_users}")
    D = cell_distances(cells)
    blocked = np.zeros((n, K), dtype=bool)
    picked = np.zeros((n, K), dtype=bool)
    out = np.empty((n, n_users), dtype=np.int64)
    for u in range(n_users):
        out[:, u] = _pick(score, D, suppression_m, blocked, picked)
    return out


def _pick(
    score: np.ndarray, D: np.ndarray, suppression_m: float, blocked: np.ndarray, picked: np.ndarray
) -> np.ndarray:
    """One greedy step: per sample the best cell of ``score`` (n, K) not ``blocked`` (the best not yet
    ``picked`` when every cell is blocked) -> (n,) int; marks it picked and blocks the cells within
    ``suppression_m`` of it (``D`` (K, K) cell distances) in place."""
    rows = np.arange(score.shape[0])
    k = np.argmax(np.where(blocked, -np.inf, score), axis=1)
    full = blocked.all(axis=1)
    if full.any():  # every cell suppressed: the best cell not yet picked
        k[full] = np.argmax(np.where(picked[full], -np.inf, score[full]), axis=1)
    picked[rows, k] = True
    blocked |= D[k] <= suppression_m
    blocked |= picked
    return k


def _score_of(m: Any) -> np.ndarray:
    """A map estimator's output as a score map (n, K): a map as is, X (n, K, M) as its row powers."""
    if getattr(m, "ndim", None) == 3:
        return row_power(m, normalize=True)  # the quantity argmax_rows maximises
    return np.asarray(m, dtype=float)


def _subgrid_per_user(score: np.ndarray, scenario: Scenario, k: np.ndarray) -> np.ndarray:
    """:func:`daun_lib.refine.subgrid` around each of the peaks ``k`` (n, U) of ``score`` (n, K) -> (n, U, 2)."""
    n, U = k.shape
    P = np.maximum(score, 0.0)
    rep = np.repeat(P, U, axis=0)  # (n U, K): sample i's map once per user
    return subgrid(rep, scenario, k.reshape(-1)).reshape(n, U, 2)


def _ml_per_user(scenario: Scenario, y: np.ndarray, k: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Continuous ML per user after cancelling the others (:func:`daun_lib.continuous.ml_localize`).

    For user u, ``y_m`` is projected off the other picks' atoms ``A_m[:, k_j]`` (j != u) per BS and
    the DPD cost of the projected data is maximised by the safeguarded Newton ascent from
    ``start[:, u]`` (a sample whose projected data are round-off only keeps ``start``).  k (n, U) grid
    indices, start (n, U, 2) -> (n, U, 2).  With U = 1 this is the ``ml`` readout of the
    single-user pipeline.
    """
    from .. import continuous  # lazy, as the readouts do

    A = dictionaries(scenario)[0]
    n, U = k.shape
    out = np.empty((n, U, 2))
    for u in range(U):
        others = [j for j in range(U) if j != u]
        yu = y if not others else project_out(y, orthonormal_basis(_found_atoms(A, k[:, others])))
        out[:, u] = start[:, u]
        # nothing left after the cancellation but round-off (energy below 1e-24 of y's): keep the pick
        live = np.sum(np.abs(yu) ** 2, axis=(1, 2)) > 1e-24 * np.sum(np.abs(y) ** 2, axis=(1, 2))
        if live.any():
            out[live, u] = continuous.ml_localize(scenario, yu[live], start=start[live, u], cost="dpd")
    return out


#: Extra peaks of the ``"ap-multi"`` readout: ``U + AP_EXTRA_PEAKS`` peaks are picked and every
#: U-subset of them starts a joint Newton ascent (:func:`_ap_multistart`).
AP_EXTRA_PEAKS = 1


def _ap_multistart(
    scenario: Scenario, y: np.ndarray, score: np.ndarray, cells: np.ndarray, n_users: int, suppression_m: float
) -> np.ndarray:
    """Multi-start joint ML: the joint Newton ascent from every U-subset of the ``U + 1`` best peaks.

    The ``U + AP_EXTRA_PEAKS`` greedy peaks of ``score`` (n, K) (cell centres ``cells`` (K, 2),
    suppression as :func:`greedy_peaks`) give ``C(U + 1, U) = U + 1`` start sets;
    :func:`daun_lib.joint_ml.multistart` refines each and keeps the largest joint fit per sample
    (ties: the subset of the U strongest peaks, which is the ``"ap"`` readout).  A weaker user
    whose cell the single-start picks miss (a sidelobe or a cluster of the stronger one ranks
    above it) gets a start of its own.  Costs about ``U + 1`` times the ``"ap"`` readout.  -> (n, U, 2)
    """
    L = min(n_users + AP_EXTRA_PEAKS, score.shape[1])
    k = greedy_peaks(score, cells, L, suppression_m)
    return joint_ml.multistart_fit(scenario, y, cells[k], n_users)


_READOUTS = ("grid", "subgrid", "ml", "ap", "ap-multi")


def _check_readout(readout: Any, allowed: tuple[str, ...] = _READOUTS) -> str:
    if readout not in allowed:
        raise ValueError(f"readout: expected one of {allowed}, got {readout!r}")
    return readout


class MultiLocalizer:
    """Base of the multi-user localisers: ``__call__(scenario, y, n_users) -> (n, U, 2)``.

    Validates the scenario (:func:`daun_lib.localizers.check_scenario`), ``y``
    (:func:`daun_lib.localizers.check_y`, (n, M, N) or (M, N)) and ``n_users`` (int >= 1),
    then calls ``_locate_multi(scenario, y (n, M, N) complex128, n_users)``.
    """

    def __call__(self, scenario: Scenario, y: Any, n_users: int = 1) -> np.ndarray:
        """Position estimates (n, U, 2), metres, in arbitrary user order per sample."""
        scenario = check_scenario(scenario)
        self._check_scenario(scenario)
        n_users = check_n_users(n_users)
        if n_users > scenario.n_grid:
            raise ValueError(f"n_users: expected at most the K = {scenario.n_grid} grid cells, got {n_users}")
        self._check_users(scenario, n_users)
        return self._locate_multi(scenario, check_y(scenario, y), n_users)

    def _check_scenario(self, scenario: Scenario) -> None:
        """Raise ``ValueError`` naming ``scenario`` when this localiser cannot serve it."""

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        """Raise ``ValueError`` naming ``n_users`` when this localiser cannot separate that many users."""

    def _locate_multi(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        raise NotImplementedError


_SOURCES = ("dpd", "p-admm", "daun")


def _source_estimator(source: Any) -> MapLocalizer:
    if isinstance(source, MapLocalizer):
        return source
    if source == "dpd":
        return dpd.DPDLocalizer()
    if source == "p-admm":
        return methods.PADMMLocalizer()
    if source == "daun":
        return methods.DAUNLocalizer()
    raise ValueError(
        f"source: expected one of {_SOURCES} or a map estimator (a daun_lib.localizers.MapLocalizer), got {source!r}"
    )


@dataclass(frozen=True)
class PeaksLocalizer(MultiLocalizer):
    """``U`` greedy peaks of a single-user map with suppression (:func:`greedy_peaks`) -> (n, U, 2).

    Attributes
    ----------
    source : "dpd", "p-admm", "daun" or a MapLocalizer
        The map: ``"dpd"`` the DPD cost (:class:`~daun_lib.baselines.dpd.DPDLocalizer`),
        ``"p-admm"`` the row powers of P-ADMM's X (:class:`~daun_lib.methods.PADMMLocalizer`,
        300 iterations), ``"daun"`` those of the shipped single-user DAUN
        (:class:`~daun_lib.methods.DAUNLocalizer`); any estimator with a ``_map`` (its readout is
        not used; its ``cells`` give the pick positions, its ``block`` the chunking).
    suppression_m : float >= 0
        Radius around each pick excluded from later picks (3 m, issue 14).
    readout : "grid", "subgrid", "ml", "ap" or "ap-multi"
        The cell centre of each peak; :func:`daun_lib.refine.subgrid` around it on the
        (unsuppressed) map; the continuous ML per user after projecting off the other
        users' atoms (:func:`_ml_per_user`); the joint ML of all users from the peaks
        (:func:`daun_lib.joint_ml.joint_newton`); or that from every U-subset of the U + 1 best peaks, the best joint fit kept
        (:func:`_ap_multistart`; with U = 1 two starts, so it need not equal the single-user
        ``ml`` readout).

    With ``n_users = 1`` the positions are those of the single-user pipeline: ``"grid"`` the
    estimator's argmax readout (``PeaksLocalizer("dpd")(s, y, 1)[:, 0]`` equals
    ``REGISTRY["DPD"](s, y)``), ``"subgrid"`` DPD-S, ``"ml"`` and ``"ap"`` DPD-ML (for the DPD source).
    """

    source: Any = "dpd"
    suppression_m: float = 3.0
    readout: str = "grid"
    estimator: MapLocalizer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimator", _source_estimator(self.source))
        object.__setattr__(self, "suppression_m", _check_suppression(self.suppression_m))
        _check_readout(self.readout)

    def _check_scenario(self, scenario: Scenario) -> None:
        self.estimator._check_scenario(scenario)

    def scores(self, scenario: Scenario, y: Any) -> np.ndarray:
        """The score map (n, K) of the source for ``y`` (n, M, N) (validated)."""
        scenario = check_scenario(scenario)
        self._check_scenario(scenario)
        y = check_y(scenario, y)
        return self._scores(scenario, y)

    def _scores(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        block = self.estimator.block
        if block is None:
            return _score_of(self.estimator._map(scenario, y))
        return np.concatenate(
            [_score_of(self.estimator._map(scenario, y[lo : lo + block])) for lo in range(0, y.shape[0], block)]
        )

    def _locate_multi(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        score = self._scores(scenario, y)
        cells = self.estimator.cells(scenario)
        if self.readout == "ap-multi":
            return _ap_multistart(scenario, y, score, np.asarray(cells, dtype=float), n_users, self.suppression_m)
        k = greedy_peaks(score, np.asarray(cells, dtype=float), n_users, self.suppression_m)
        pos = np.asarray(cells, dtype=float)[k]
        if self.readout == "subgrid":
            return _subgrid_per_user(score, scenario, k)
        if self.readout == "ml":
            return _ml_per_user(scenario, y, k, pos)
        if self.readout == "ap":
            return joint_ml.joint_ascent(scenario, y, pos)[0]
        return pos


def _found_atoms(A: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The atoms ``A_m[:, k_j]`` of the picked cells k (n, u) -> (n, M, N, u)."""
    return np.transpose(A[:, :, k], (2, 0, 1, 3))  # A[:, :, k]: (M, N, n, u)


def conditional_cost(A: np.ndarray, y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Conditional DPD cost of one more LoS source given the found ones.

    Parameters
    ----------
    A : (M, N, K) complex, unit-norm columns
    y : (n, M, N) complex
    Q : (n, M, N, u) complex
        Orthonormal basis (zero columns allowed) of the found users' steering vectors per BS.

    Returns
    -------
    (n, K) float
        ``sum_m |a_m(k)^H P_m y_m|^2 / ||P_m a_m(k)||^2`` with ``P_m = I - Q_m Q_m^H``; a term with
        ``||P_m a_m(k)||^2 < 1e-6`` is 0.  For unit white noise each term is Exp(1), the sum
        Gamma(M, 1) (the projection keeps the noise white in the complement).
    """
    r = project_out(y, Q)
    out = np.zeros((y.shape[0], A.shape[2]))
    for m in range(A.shape[0]):
        num = np.abs(r[:, m, :] @ A[m].conj()) ** 2  # (n, K): |a^H P y|^2 (P Hermitian, P y = r)
        inner = np.einsum("bnu,nk->buk", Q[:, m].conj(), A[m])  # Q^H a (n, u, K)
        den = 1.0 - np.sum(np.abs(inner) ** 2, axis=1)  # ||P a||^2 = 1 - ||Q^H a||^2
        ok = den > _SPAN_TOL
        out += np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    return out


@dataclass(frozen=True)
class SICLocalizer(MultiLocalizer):
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

    suppression_m: float = 3.0
    readout: str = "grid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "suppression_m", _check_suppression(self.suppression_m))
        _check_readout(self.readout, ("grid", "ml", "ap"))

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        if n_users > scenario.n_antennas:
            raise ValueError(
                f"n_users: the cancellation projects one steering vector per found user out of each BS's "
                f"{scenario.n_antennas} antennas; expected at most {scenario.n_antennas} users, got {n_users}"
            )

    def _locate_multi(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        k = _sic_cells(scenario, y, n_users, self.suppression_m)[0]
        pos = scenario.grid[k]
        if self.readout == "ml":
            return _ml_per_user(scenario, y, k, pos)
        if self.readout == "ap":
            return joint_ml.joint_ascent(scenario, y, pos)[0]
        return pos


def _sic_cells(scenario: Scenario, y: np.ndarray, n_users: int, suppression_m: float) -> tuple[np.ndarray, np.ndarray]:
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
            score = conditional_cost(A, y, orthonormal_basis(_found_atoms(A, k[:, :u])))
        k[:, u] = _pick(score, D, suppression_m, blocked, picked)
        peak[:, u] = score[rows, k[:, u]]
    return k, peak


@dataclass(frozen=True)
class OMPLocalizer(MultiLocalizer):
    """Simultaneous OMP on the LoS dictionary A (support shared across BSs) -> (n, U, 2).

    Each step picks ``argmax_k sum_m |A_m[:, k]^H r_m|^2`` (the DPD cost of the residual,
    :func:`daun_lib.baselines.dpd.cost`; picked cells excluded) and refits all picked cells'
    gains per sample and BS by least squares: ``r_m = (I - A_{m,S} A_{m,S}^+) y_m``.  ``B`` is
    not in the fit (module docstring).  With ``n_users = 1`` it is the grid DPD.
    """

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        if n_users > scenario.n_antennas:
            raise ValueError(
                f"n_users: the least-squares refit of {n_users} cells per BS needs at most N = "
                f"{scenario.n_antennas} of them; got {n_users}"
            )

    def _locate_multi(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
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
                r = project_out(y, orthonormal_basis(_found_atoms(A, k[:, : u + 1])))
        return scenario.grid[k]


@dataclass(frozen=True)
class DAUNVariantLocalizer(methods.DAUNLocalizer):
    """A shipped DAUN variant (``daun.load_pretrained(variant)``) as a map estimator: X (n, K, M)."""

    variant: str = "default"

    def _map(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return _variant(self.variant, scenario.geometry).estimate_x(y)

    def cells(self, scenario: Scenario) -> np.ndarray:
        return _variant(self.variant, scenario.geometry).grid.detach().cpu().double().numpy()


@lru_cache(maxsize=4)
def _variant(variant: str, geometry: str) -> Any:
    from .. import daun  # lazy: torch network

    return daun.load_pretrained(variant, geometry=geometry)


MULTI_REGISTRY: dict[str, MultiLocalizer] = {
    "DPD-peaks": PeaksLocalizer("dpd"),
    "DPD-SIC": SICLocalizer(),
    "OMP": OMPLocalizer(),
    "P-ADMM-peaks": PeaksLocalizer("p-admm"),
    "DAUN-peaks": PeaksLocalizer("daun"),
    "DPD-peaks-S": PeaksLocalizer("dpd", readout="subgrid"),
    "DPD-SIC-ML": SICLocalizer(readout="ml"),
    "DPD-AP": SICLocalizer(readout="ap"),
    "P-ADMM-peaks-AP": PeaksLocalizer("p-admm", readout="ap"),
    "DPD-peaks-APM": PeaksLocalizer("dpd", readout="ap-multi"),
    "P-ADMM-peaks-APM": PeaksLocalizer("p-admm", readout="ap-multi"),
    "P-ADMM-peaks-S": PeaksLocalizer("p-admm", readout="subgrid"),
    "DAUN-peaks-S": PeaksLocalizer("daun", readout="subgrid"),
}
"""Name -> ``localizer(scenario, y, n_users) -> (n, U, 2)``.  ``"DAUN-MU"`` (the peaks of a DAUN
trained for several users, variant :data:`DAUN_MU_VARIANT`) is added when its weights are shipped."""
if _DAUN_MU_FILE.is_file():  # the weights are shipped (a tree without them has no DAUN-MU entries)
    MULTI_REGISTRY["DAUN-MU"] = PeaksLocalizer(DAUNVariantLocalizer(variant=DAUN_MU_VARIANT))
    MULTI_REGISTRY["DAUN-MU-S"] = PeaksLocalizer(DAUNVariantLocalizer(variant=DAUN_MU_VARIANT), readout="subgrid")
    MULTI_REGISTRY["DAUN-MU-AP"] = PeaksLocalizer(DAUNVariantLocalizer(variant=DAUN_MU_VARIANT), readout="ap")
    MULTI_REGISTRY["DAUN-MU-APM"] = PeaksLocalizer(DAUNVariantLocalizer(variant=DAUN_MU_VARIANT), readout="ap-multi")


# ----------------------------------------------------------------------------------------------
# Unknown number of users


def noise_threshold(scenario: Scenario, pfa: float = 0.01, rule: str = "min-bs") -> float:
    """Detection threshold of :func:`estimate_n_users` for a map without a further user.

    Without a user at a cell, each BS term ``|a^H P n_m|^2 / ||P a||^2`` (unit-norm ``a``, white
    noise ``n_m`` of unit power, ``P`` a projection) is Exp(1), independent across the M BSs.

    * ``rule="sum"``: the conditional DPD cost, their sum, is Gamma(M, 1); the threshold is its
      upper quantile at ``pfa / K``.
    * ``rule="min-bs"``: the smallest of the M terms is Exp(M); ``P(min > t) = exp(-M t)``, so
      ``t = ln(K / pfa) / M``.

    Both are Bonferroni over the K cells: the probability that any cell of a noise-only map
    exceeds the threshold is at most ``pfa``.

    Parameters
    ----------
    scenario : Scenario
    pfa : float in (0, 1)
        False-alarm probability per map.
    rule : "min-bs" or "sum"

    Returns
    -------
    float
    """
    scenario = check_scenario(scenario)
    if isinstance(pfa, (bool, np.bool_)) or not isinstance(pfa, (int, float, np.floating)) or not 0 < pfa < 1:
        raise ValueError(f"pfa: expected a probability in (0, 1), got {pfa!r}")
    if rule == "sum":
        return float(gamma.isf(pfa / scenario.n_grid, scenario.n_bs))
    if rule == "min-bs":
        return float(np.log(scenario.n_grid / pfa) / scenario.n_bs)
    raise ValueError(f"rule: expected 'min-bs' or 'sum', got {rule!r}")


def _per_bs_statistics(scenario: Scenario, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-BS normalised conditional beam powers at the SIC picks k (n, U) -> (n, U, M).

    NaN where the pick's atom lies in the span of the found ones at that BS (the BS sees the
    new cell on the bearing of a found user and cannot tell them apart).

    Step u: ``|a_m(k_u)^H P_m y_m|^2 / (||P_m a_m(k_u)||^2 sigma_m^2)`` with ``P_m`` the projection
    off the first u - 1 picks' atoms and ``sigma_m^2 = ||P_m y_m||^2 / (N - rank)`` the per-BS
    residual level (the residual taken as white: noise plus whatever the found atoms do not explain).
    """
    A = dictionaries(scenario)[0]
    n, U = k.shape
    N = scenario.n_antennas
    out = np.empty((n, U, scenario.n_bs))
    for u in range(U):
        if u == 0:
            Q = np.zeros(y.shape + (1,), dtype=complex)
        else:
            Q = orthonormal_basis(_found_atoms(A, k[:, :u]))
        r = project_out(y, Q)
        rank = np.count_nonzero(np.abs(Q).sum(axis=2) > 0, axis=-1)  # (n, M)
        sig2 = np.maximum((np.abs(r) ** 2).sum(axis=-1) / (N - rank), np.finfo(float).tiny)
        num, den = conditional_terms(np.transpose(A[:, :, k[:, u]], (2, 0, 1)), r, Q)  # a: (n, M, N)
        out[:, u] = np.where(den > _SPAN_TOL, num / np.maximum(den, _SPAN_TOL) / sig2, np.nan)
    return out


def estimate_n_users(
    scenario: Scenario,
    y: Any,
    max_users: int,
    *,
    pfa: float = 0.01,
    suppression_m: float = 3.0,
    rule: str = "min-bs",
) -> np.ndarray:
    """Number of users per sample: successive-cancellation detections above a noise threshold.

    Run :class:`SICLocalizer`'s search for ``max_users`` steps; ``U_hat`` is the number of leading
    steps whose pick passes the test of ``rule`` at false-alarm probability ``pfa`` per map
    (:func:`noise_threshold`), so ``0 <= U_hat <= max_users``.

    * ``"min-bs"`` (default): every BS must see the new user.  Per BS the conditional beam power
      at the pick is normalised by that BS's residual level after projecting off the found users
      (an unknown noise level per BS, as the ``ml-bs`` readout), and the smallest of the M values
      is compared with ``ln(K / pfa) / M`` (a BS that sees the pick exactly on the bearing of a
      found user, ``||P_m a_m||^2 < 1e-6``, is left out of the minimum).  Scale-free (no noise level needed).  A residue of a
      found user that is off its grid cell, or of its NLoS clusters, is strong at one or two BSs
      but rarely along a common point at all of them.
    * ``"sum"``: the conditional DPD cost at the pick against the Gamma(M, 1) quantile, in units
      of the model's unit noise power.  It ignores those residues and over-counts from about
      10 dB up (measured in the issue-14 report).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    max_users : int >= 1
    pfa : float in (0, 1)
    suppression_m : float >= 0
    rule : "min-bs" or "sum"

    Returns
    -------
    (n,) int in [0, max_users]
    """
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    max_users = check_n_users(max_users, "max_users")
    if max_users > scenario.n_grid:
        raise ValueError(f"max_users: expected at most the K = {scenario.n_grid} grid cells, got {max_users}")
    t = noise_threshold(scenario, pfa, rule)
    if rule == "sum":  # the only rule in units of the noise power: refuse data that cannot be in those units
        check_noise_floor(y, 1.0, "the unit noise power of rule='sum'")
    k, peak = _sic_cells(scenario, y, max_users, _check_suppression(suppression_m))
    if rule == "min-bs":
        stats = _per_bs_statistics(scenario, y, k)
        seen = ~np.isnan(stats)  # BSs that can separate the pick from the found users
        peak = np.where(seen.any(axis=-1), np.where(seen, stats, np.inf).min(axis=-1), 0.0)
    return np.cumprod(peak > t, axis=1).sum(axis=1)
