r"""Readouts: a map over the position grid -> positions of one or several users, registered by name.

Every map estimator of the package (DPD, P-ADMM, DAUN, VB, MM) ends in the same step: turn
what it estimated over the K grid cells into positions.  What it estimated is either

* a **score map** ``score`` (n, K) >= 0, one value per grid cell (DPD's cost), or
* the LoS gains **X** (n, K, M) of (3), whose row powers ``||[X]_{k,:}||_2^2`` are the score
  (:func:`daun_lib.refine.row_power`).

One registry, :data:`READOUTS`, serves one and several users.  A readout is called as

    ``readout(score_or_X, scenario, y, n_users, cells=..., suppression_m=...) -> (n, U, 2)``

(metres; ``y`` (n, M, N) is the data the map came from, for the readouts that need it; ``cells``
(K, 2) the centres that a grid pick is placed on, the estimator's own for DAUN; ``suppression_m``
the radius around a pick that the next user's pick avoids), or without ``n_users`` as
``readout(score_or_X, scenario, y) -> (n, 2)`` for one user.  For several users the readouts pick
the ``U`` peaks greedily with suppression (:mod:`daun_lib.peaks`) and place each user.

========= ===== ===========================================================================
name      users readout
========= ===== ===========================================================================
argmax    any   the plain readout after (3): ``k = argmax_k ||[X]_{k,:}||_2`` (or of the score); for
                several users the U greedy peaks (alias ``grid``, the name of release 0.1's
                multi-user vocabulary)
alg1      1     Algorithm 1 of Sec. III-C (:func:`daun_lib.refine.refine`); needs X
subgrid   any   3-point Gaussian fit around each peak (:func:`daun_lib.refine.subgrid`; not in the paper)
ml        any   continuous ML from the peak cell: safeguarded Newton ascent of the DPD cost
                ``sum_m |a_m(p)^H y_m|^2`` (:func:`daun_lib.continuous.ml_localize`); the map only
                chooses the start; for several users each user's after projecting the other
                picks' atoms out of ``y`` (:func:`daun_lib.peaks.ml_per_user`)
ml-bs     1     the same with an unknown noise level per BS (cost ``-N sum_m log(||y_m||^2 - |a_m^H y_m|^2)``)
ap        any   the joint ML of the U LoS sources from the U peaks (:func:`daun_lib.joint_ml.joint_ascent`:
                one trust-region Newton ascent on all ``2 U`` coordinates; Ziskind & Wax 1988)
ap-multi  any   the same from every U-subset of the U + 1 best peaks, the best joint fit kept
                (:func:`daun_lib.peaks.multistart_from_peaks`)
ap-relax  any   ``ap-multi``, then every user searched again given the others (3 candidate cells
                each), and every pair (three users and more; :func:`daun_lib.peaks.relax`, issue 23)
ap-relax1 any   the same with one candidate cell per user (the fits of the user count)
mmse      1     posterior mean over the user area (:func:`daun_lib.posterior.posterior_mean`)
disk      1     the position with the most posterior mass within 1 m of it (:func:`daun_lib.posterior.disk_map`)
========= ===== ===========================================================================

With one user, ``argmax``, ``subgrid`` and ``ml`` are the single-user readouts of release 0.1
exactly (the same code path), and the several-user readouts of a map estimator at ``n_users = 1``
give the same positions as the single-user entry.

The Bayesian readouts (``mmse``, ``disk``) do not use the map (every map estimator gives the
same positions with them); the registry's ``DPD-MMSE`` and ``DPD-Disk`` entries are therefore
estimators of their own (:class:`daun_lib.methods.PosteriorMeanLocalizer`,
:class:`daun_lib.methods.DiskLocalizer`) that compute no map.  Like SRL, VB and MM they are
defined in units of the noise power (``scale_invariant=False``).

Adding a readout is one function and one :func:`register_readout` call::

    register_readout("strongest-bs", fn)                     # fn(score, scenario, y) -> (n, 2): one user
    register_readout("my-peaks", fn2, multi_user=True)       # fn2(score, scenario, y, n_users, *, cells,
                                                             #     suppression_m) -> (n, U, 2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import continuous, joint_ml, posterior
from ._checks import cell_centres, check_n_users, check_scenario
from ._validation import as_array
from .peaks import SUPPRESSION_M, greedy_peaks, ml_per_user, multistart_from_peaks, relax, score_of, subgrid_per_user
from .refine import argmax_rows, refine, row_power, subgrid
from .scenario import Scenario


def check_map(score: Any, scenario: Scenario) -> Any:
    """Check a score map (n, K) or an X (n, K, M) against the scenario's grid (K cells).

    Returns a score map as a float64 numpy array; X is returned unchanged (the
    row-power functions of :mod:`daun_lib.refine` check its values).
    """
    check_scenario(scenario)
    ndim = getattr(score, "ndim", None)
    if ndim == 3:
        if score.shape[1] != scenario.n_grid or score.shape[0] < 1:
            raise ValueError(f"score: expected X of shape (n, {scenario.n_grid}, M), got {tuple(score.shape)}")
        return score
    P = np.asarray(as_array(score, "score", 2, complex_ok=False), dtype=float)
    if P.shape[1] != scenario.n_grid or P.shape[0] < 1:
        raise ValueError(
            f"score: expected a map of shape (n, {scenario.n_grid}) or X (n, {scenario.n_grid}, M), got {P.shape}"
        )
    return P


@dataclass(frozen=True)
class GridReadout:
    """A readout that picks one grid cell per sample; the position is the cell centre.

    Attributes
    ----------
    index : callable
        ``index(score (n, K) or X (n, K, M)) -> (n,) int`` grid indices.
    """

    index: Callable[[Any], np.ndarray]

    def __call__(self, score: Any, scenario: Scenario, y: Any = None) -> np.ndarray:
        """Positions (n, 2): ``cell_centres(scenario)[index(score)]``."""
        k = self.index(check_map(score, scenario))
        return cell_centres(scenario)[k]


def argmax_index(score: Any) -> np.ndarray:
    """Plain readout after (3): ``argmax_k score_k``, or ``argmax_k ||[X]_{k,:}||_2`` for X (n, K, M) -> (n,)."""
    if getattr(score, "ndim", None) == 3:
        return argmax_rows(score)
    return np.argmax(score, axis=1)


def alg1_index(X: Any) -> np.ndarray:
    """Algorithm 1 (:func:`daun_lib.refine.refine`) on X (n, K, M) -> (n,) grid indices."""
    if getattr(X, "ndim", None) != 3:
        raise ValueError(
            "readout: 'alg1' (Algorithm 1) needs the per-BS gains X (n, K, M); this estimator gives a score map (n, K)"
        )
    return refine(X)


def subgrid_readout(score: Any, scenario: Scenario, y: Any = None) -> np.ndarray:
    """Sub-grid readout (:func:`daun_lib.refine.subgrid`) of a score map, or of X's row powers -> (n, 2)."""
    score = check_map(score, scenario)
    if score.ndim == 3:
        score = row_power(score, normalize=True)
    return subgrid(score, scenario)


@dataclass(frozen=True)
class Readout:
    """A registered readout: ``fn`` with what it declares (:func:`register_readout`).

    Attributes
    ----------
    name : str
    fn : callable
        ``multi_user=True``: ``fn(score_or_X, scenario, y, n_users, *, cells, suppression_m) -> (n, U, 2)``;
        else ``fn(score_or_X, scenario, y) -> (n, 2)`` (a :class:`GridReadout` is placed on ``cells``).
    multi_user : bool
        Whether ``fn`` serves several users.
    scale_invariant : bool
        Whether ``c * y`` gives the positions of ``y`` (False for readouts in units of the noise power).
    """

    name: str
    fn: Callable[..., Any]
    multi_user: bool = False
    scale_invariant: bool = True

    def check_users(self, n_users: int) -> None:
        """Raise ``ValueError`` naming ``n_users`` when this readout cannot place that many users."""
        if n_users > 1 and not self.multi_user:
            raise ValueError(
                f"n_users: readout {self.name!r} places one user; for {n_users} users use a multi-user readout "
                f"({', '.join(sorted(n for n, r in READOUTS.items() if r.multi_user))})"
            )

    def __call__(
        self,
        score: Any,
        scenario: Scenario,
        y: Any = None,
        n_users: int | None = None,
        *,
        cells: Any = None,
        suppression_m: float = SUPPRESSION_M,
        owner: str | None = None,
    ) -> np.ndarray:
        """Positions (n, U, 2), or (n, 2) when ``n_users`` is None (one user), metres.

        ``score`` (n, K) or X (n, K, M); ``y`` (n, M, N) the data the map came from; ``cells``
        (K, 2) the centres a grid pick is placed on (default the scenario's grid); ``owner`` the
        localiser calling, named with the readout when its output breaks :func:`check_positions_out`.
        """
        users = 1 if n_users is None else check_n_users(n_users)
        self.check_users(users)
        score = check_map(score, scenario)
        cells = cell_centres(scenario) if cells is None else np.asarray(cells, dtype=float)
        if self.multi_user:
            out = self.fn(score, scenario, y, users, cells=cells, suppression_m=suppression_m)
        elif isinstance(self.fn, GridReadout):
            out = cells[self.fn.index(score)][:, None]
        else:
            out = np.asarray(self.fn(score, scenario, y))[:, None]
        what = f"readout {self.name!r}" if owner is None else f"{owner}: readout {self.name!r}"
        out = check_positions_out(out, score.shape[0], users, what, scenario)
        return out[:, 0] if n_users is None else out


POSITION_MARGIN_AREAS = 1.0
"""Positions leaving a readout or localiser lie at most this many ``area_size`` outside the user area.

With the default 40 m area: 40 m beyond its edge.  Measured on the committed sweeps (issue 24,
about 640 000 estimates of 44 methods, single- and multi-user): every estimate lay inside the area
(largest distance outside 0 m), so the rule only catches broken outputs (a readout returning 1e4 m)."""


def check_positions_out(out: Any, n: int, n_users: int, what: str, scenario: Any = None) -> np.ndarray:
    """The rule for positions leaving a readout or a localiser: a finite float (n, U, 2) array.

    Anything else raises ``ValueError`` naming ``what`` (the method or readout): a wrong shape or a
    NaN is never passed on as a position.  With ``scenario``, positions farther than
    :data:`POSITION_MARGIN_AREAS` times ``area_size`` outside its user area raise too.
    """
    arr = np.asarray(out)
    if arr.shape != (n, n_users, 2) or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(
            f"{what}: returned {arr.dtype} positions of shape {arr.shape}; expected real ({n}, {n_users}, 2) metres"
        )
    arr = arr.astype(float, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: returned NaN or inf positions")
    if scenario is not None and arr.size:
        half, margin = scenario.area_size / 2.0, POSITION_MARGIN_AREAS * scenario.area_size
        outside = float(np.hypot(*np.clip(np.abs(arr) - half, 0.0, None).reshape(-1, 2).T).max())
        if outside > margin:
            raise ValueError(
                f"{what}: returned a position {outside:.3g} m outside the user area (allowed: {margin:g} m, "
                "POSITION_MARGIN_AREAS times area_size)"
            )
    return arr


READOUTS: dict[str, Readout] = {}
"""Readout name -> :class:`Readout`; add entries with :func:`register_readout`."""


def register_readout(
    name: str, fn: Callable[..., Any], *, multi_user: bool = False, scale_invariant: bool = True, replace: bool = False
) -> Callable[..., Any]:
    """Add ``fn`` to :data:`READOUTS` under ``name`` (returns ``fn``).

    Parameters
    ----------
    name : str
        A new name (or an existing one with ``replace=True``).
    fn : callable
        ``multi_user=False``: ``fn(score (n, K) or X (n, K, M), scenario, y (n, M, N)) -> (n, 2)`` positions,
        metres (one user; asked for several, the readout raises ``ValueError`` naming ``n_users``).
        ``multi_user=True``: ``fn(score, scenario, y, n_users, *, cells, suppression_m) -> (n, U, 2)``.
    multi_user : bool
    scale_invariant : bool
        Declare False when the readout is in units of the noise power (the contract tests check it).
    replace : bool
        Allow replacing a registered readout (localisers built before keep the old one).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn: expected a callable readout(score_or_X, scenario, y, ...), got {type(fn).__name__}")
    for flag, value in (("multi_user", multi_user), ("scale_invariant", scale_invariant), ("replace", replace)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag}: expected True or False, got {value!r}")
    if name in READOUTS and not replace:
        raise ValueError(f"name: readout {name!r} is already registered (pass replace=True to replace it)")
    READOUTS[name] = Readout(name, fn, multi_user, scale_invariant)
    return fn


def get_readout(name: Any) -> Readout:
    """``READOUTS[name]``, or ``ValueError`` naming ``readout`` for an unknown name."""
    if not isinstance(name, str) or name not in READOUTS:
        raise ValueError(f"readout: expected one of {sorted(READOUTS)}, got {name!r}")
    return READOUTS[name]


# ------------------------------------------------------------------------------------------------
# The package's readouts.  With one user each takes release 0.1's single-user path.


def argmax_readout(score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float):
    """The grid pick(s): ``argmax`` for one user, the ``U`` greedy peaks otherwise -> (n, U, 2)."""
    if n_users == 1:
        return cells[argmax_index(score)][:, None]
    return cells[greedy_peaks(score_of(score), cells, n_users, suppression_m)]


def subgrid_multi(score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float):
    """Sub-grid fit around each of the ``U`` peaks -> (n, U, 2)."""
    if n_users == 1:
        return subgrid_readout(score, scenario)[:, None]
    P = score_of(score)
    return subgrid_per_user(P, scenario, greedy_peaks(P, cells, n_users, suppression_m))


def ml_multi(score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float):
    """Continuous ML per user (after cancelling the other picks' atoms) -> (n, U, 2)."""
    if n_users == 1:
        return ml_readout(score, scenario, y)[:, None]
    k = greedy_peaks(score_of(score), cells, n_users, suppression_m)
    return ml_per_user(scenario, _checked_y(y, score), k, cells[k])


def ap_readout(score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float):
    """Joint ML of the ``U`` users from the ``U`` peaks (one joint Newton ascent) -> (n, U, 2)."""
    k = greedy_peaks(score_of(score), cells, n_users, suppression_m)
    return joint_ml.joint_ascent(scenario, _checked_y(y, score), cells[k])[0]


def ap_multi_readout(score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float):
    """Joint ML from every U-subset of the ``U + 1`` best peaks, the best fit kept -> (n, U, 2)."""
    return multistart_from_peaks(scenario, _checked_y(y, score), score_of(score), cells, n_users, suppression_m)


def ap_relax_readout(
    score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float, peaks: int = 3
):
    """``ap-multi``, then the re-search of :func:`daun_lib.peaks.relax` (one and two users at a time, ``peaks``
    candidate cells per user) -> (n, U, 2)."""
    y = _checked_y(y, score)
    p = multistart_from_peaks(scenario, y, score_of(score), cells, n_users, suppression_m)
    return relax(scenario, y, p, suppression_m, peaks)


def ap_relax1_readout(score: Any, scenario: Scenario, y: Any, n_users: int, *, cells: Any, suppression_m: float):
    """``ap-relax`` with one candidate cell per user: the fits of the user count (about 40 % less time)."""
    return ap_relax_readout(score, scenario, y, n_users, cells=cells, suppression_m=suppression_m, peaks=1)


def _checked_y(y: Any, score: Any) -> np.ndarray:
    """``y`` as (n, M, N) complex128 with one sample per row of the map."""
    n = getattr(y, "shape", (None,))[0] if getattr(y, "ndim", 0) == 3 else None
    if n != score.shape[0]:
        raise ValueError(f"y: expected {score.shape[0]} samples (one per row of the map), got {n}")
    return np.ascontiguousarray(y, dtype=np.complex128)


def _ml(score: Any, scenario: Scenario, y: Any, cost: str) -> np.ndarray:
    score = check_map(score, scenario)
    start = cell_centres(scenario)[argmax_index(score)]
    return continuous.ml_localize(scenario, y, start=start, cost=cost)


def ml_readout(score: Any, scenario: Scenario, y: Any) -> np.ndarray:
    """Continuous ML from the map's argmax cell: :func:`daun_lib.continuous.ml_localize`, cost ``"dpd"`` -> (n, 2)."""
    return _ml(score, scenario, y, "dpd")


def ml_bs_readout(score: Any, scenario: Scenario, y: Any) -> np.ndarray:
    """The same with an unknown noise level per BS: cost ``"per_bs_noise"`` (after a ``"dpd"`` ascent) -> (n, 2)."""
    return _ml(score, scenario, y, "per_bs_noise")


def _posterior_inputs(score: Any, scenario: Scenario, y: Any) -> tuple[Scenario, Any]:
    """The all-LoS twin of ``scenario`` (the readouts' model has no blockage prior) and ``y`` checked
    against the map's sample count."""
    score = check_map(score, scenario)
    n = getattr(y, "shape", (None,))[0] if getattr(y, "ndim", 0) == 3 else 1
    if n != score.shape[0]:
        raise ValueError(f"y: expected {score.shape[0]} samples (one per row of the map), got {n}")
    return dataclasses.replace(scenario, los_model="always", multipath=True), y


def mmse_readout(score: Any, scenario: Scenario, y: Any) -> np.ndarray:
    """Posterior mean (:func:`daun_lib.posterior.posterior_mean`, default settings, every link LoS); the map is
    not used -> (n, 2)."""
    return posterior.posterior_mean(*_posterior_inputs(score, scenario, y))


def disk_readout(score: Any, scenario: Scenario, y: Any) -> np.ndarray:
    """Disk MAP (:func:`daun_lib.posterior.disk_map`, default settings, every link LoS); the map is not used
    -> (n, 2)."""
    return posterior.disk_map(*_posterior_inputs(score, scenario, y))


register_readout("argmax", argmax_readout, multi_user=True)
register_readout("grid", argmax_readout, multi_user=True)
register_readout("alg1", GridReadout(alg1_index))
register_readout("subgrid", subgrid_multi, multi_user=True)
register_readout("ml", ml_multi, multi_user=True)
register_readout("ml-bs", ml_bs_readout)
register_readout("ap", ap_readout, multi_user=True)
register_readout("ap-multi", ap_multi_readout, multi_user=True)
register_readout("ap-relax", ap_relax_readout, multi_user=True)
register_readout("ap-relax1", ap_relax1_readout, multi_user=True)
register_readout("mmse", mmse_readout, scale_invariant=False)
register_readout("disk", disk_readout, scale_invariant=False)
