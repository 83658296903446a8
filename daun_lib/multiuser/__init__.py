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

Since release 0.2 every localiser of the package serves this contract
(:meth:`daun_lib.localizers.Localizer.locate`): a map estimator with a multi-user readout is a
multi-user localiser (``DPDLocalizer(readout="ap-multi").locate(scenario, y, 2)``), the readouts
are in :mod:`daun_lib.readouts` and the peak picking in :mod:`daun_lib.peaks`.  This package holds
the searches that are not a readout of one map (:mod:`daun_lib.multiuser.search`), the user count
(:mod:`daun_lib.multiuser.count`), the multi-user DAUN variant and the registry's multi-user entries.

Localisers (frozen dataclasses; their fields are the whole configuration):

* map estimators with a multi-user readout (release 0.1's :func:`PeaksLocalizer`): a score map over the position grid (the DPD cost (Weiss 2004,
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
  (``suppression_m``) are excluded as in the peak picking of :mod:`daun_lib.peaks`: a grid pick is up to half a
  cell off the user, so the projection leaves a residue of that user next to its cell.
* ``readout="ap-multi"`` (map estimators): the same joint ML from every U-subset of the
  U + 1 best peaks, the best joint fit kept (a weaker user that the U strongest peaks miss gets a
  start of its own).
* ``readout="ap"`` (map estimators and :class:`SICLocalizer`): the joint deterministic ML of the ``U`` LoS sources
  (Ziskind & Wax 1988) from the picks, every user's position refined with the others' at
  once (:func:`daun_lib.joint_ml.joint_newton`: a trust-region Newton ascent on all ``2 U``
  coordinates of the concentrated likelihood).  The name is that of the alternating projection
  the readout first used (:func:`daun_lib.joint_ml.alternating_projection`, still available).
  From the same starts the joint ascent usually ends at the better fit, though not always (from
  the SIC picks of 256 prototype snapshots at 10 dB: better in 28 % of two-user and 59 % of
  three-user samples, worse in 3 % and 8 %), and is 1.5-2 times faster (the design notes).  ``DPD-AP`` (SIC picks, then this) is the strongest classical pipeline of
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
DPD-peaks        ``DPDLocalizer("argmax")``                       ``REGISTRY["DPD"]``
DPD-SIC          ``SICLocalizer()``                               ``REGISTRY["DPD"]``
OMP              ``OMPLocalizer()``                               ``REGISTRY["DPD"]``
P-ADMM-peaks     ``PADMMLocalizer("argmax")``                     ``REGISTRY["P-ADMM"]``
DAUN-peaks       ``DAUNLocalizer("argmax")``                      ``REGISTRY["DAUN"]`` (shipped single-user net)
DPD-peaks-S      ``DPDLocalizer("subgrid")``                      ``REGISTRY["DPD-S"]``
DPD-SIC-ML       ``SICLocalizer(readout="ml")``                   ``REGISTRY["DPD-ML"]``
DPD-AP           ``SICLocalizer(readout="ap")``                   ``REGISTRY["DPD-ML"]``
DPD-peaks-APM    ``DPDLocalizer("ap-multi")``                     (two starts: a joint fit at least DPD-ML's)
P-ADMM-peaks-S   ``PADMMLocalizer("subgrid")``                    P-ADMM with the sub-grid readout
P-ADMM-peaks-AP  ``PADMMLocalizer("ap")``                         P-ADMM with the ``ml`` readout
P-ADMM-peaks-APM ``PADMMLocalizer("ap-multi")``                   (two starts)
DAUN-peaks-S     ``DAUNLocalizer("subgrid")``                     ``REGISTRY["DAUN-S"]``
DAUN-MU          ``DAUNVariantLocalizer("multi2")``, argmax       (when ``weights/daun_multi2.pt`` is shipped)
DAUN-MU-S        the same with the sub-grid readout per user
DAUN-MU-AP       the same with the joint ML readout ``"ap"``
DAUN-MU-APM      the same with the multi-start ``"ap-multi"``
DAUN-MU-APR      the same with ``"ap-relax"`` (multi-start, then each user and pair searched again)
DPD-peaks-APR    ``DPDLocalizer("ap-relax")``                     (the same search from the DPD map)
================ ================================================ ==============================================

The metrics of several users (optimal assignment, P(all users within r), per-user P and MSE)
are in :mod:`daun_lib.metrics` (:func:`~daun_lib.metrics.assigned_errors`,
:func:`~daun_lib.metrics.fraction_all_within`, ...); the unknown-``U`` rule is
:func:`estimate_n_users`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import methods
from .._checks import check_n_users
from ..baselines import dpd
from ..joint_ml import joint_fit
from ..localizers import Localizer, MapLocalizer, RegistryView, register_localizer
from ..peaks import SUPPRESSION_M, cell_distances, greedy_peaks
from ..scenario import Scenario
from .count import UnknownUsers, estimate_n_users, locate_unknown, noise_threshold, residual_energy
from .search import OMPLocalizer, SICLocalizer, conditional_cost

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
    "locate_unknown",
    "residual_energy",
    "UnknownUsers",
    "check_n_users",
    "cell_distances",
    "greedy_peaks",
    "conditional_cost",
]

#: Variant name of the DAUN trained on two-user snapshots (``daun.load_pretrained(DAUN_MU_VARIANT)``,
#: ``daun.checkpoints.VARIANTS_MULTIUSER``, weight file ``weights/daun_multi2.pt``);
#: :data:`MULTI_REGISTRY` gets the ``"DAUN-MU"`` entries only when that file is shipped (checked
#: without importing torch).
DAUN_MU_VARIANT = "multi2"
DAUN_MU_FILE = Path(__file__).resolve().parent.parent / "weights" / "daun_multi2.pt"

#: Release 0.1's base class of the multi-user localisers: every :class:`~daun_lib.localizers.Localizer`
#: now takes ``n_users``.
MultiLocalizer = Localizer

_SOURCES = ("dpd", "p-admm", "daun")
_PEAK_READOUTS = ("grid", "subgrid", "ml", "ap", "ap-multi")


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


def PeaksLocalizer(source: Any = "dpd", suppression_m: float = SUPPRESSION_M, readout: str = "grid") -> MapLocalizer:
    """Release 0.1's peaks localiser: the map estimator ``source`` with a multi-user ``readout``.

    ``source`` is ``"dpd"``, ``"p-admm"`` (300 iterations), ``"daun"`` (the shipped single-user
    network) or a :class:`~daun_lib.localizers.MapLocalizer`; ``readout`` one of ``"grid"`` (the
    U greedy peaks' cell centres, the readout ``argmax``), ``"subgrid"``, ``"ml"``, ``"ap"`` or
    ``"ap-multi"`` (:mod:`daun_lib.readouts`).  Returns ``dataclasses.replace(estimator,
    readout=..., suppression_m=...)``: an ordinary map estimator, so
    ``PeaksLocalizer("dpd", readout="ap")`` equals ``DPDLocalizer(readout="ap")``.
    """
    if readout not in _PEAK_READOUTS:
        raise ValueError(f"readout: expected one of {_PEAK_READOUTS}, got {readout!r}")
    estimator = _source_estimator(source)
    return dataclasses.replace(
        estimator, readout="argmax" if readout == "grid" else readout, suppression_m=suppression_m
    )


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


MULTI_REGISTRY: Mapping[str, Localizer] = RegistryView(multi_user=True)
"""Name -> ``localizer(scenario, y, n_users) -> (n, U, 2)``: the multi-user entries of
:data:`daun_lib.localizers.LOCALIZERS`, a read-only live view (add entries with
``register_localizer(name, localizer, multi_user=True)``)."""


def _register_defaults() -> None:
    """The package's multi-user entries (table in the module docstring); the ``DAUN-MU`` ones only
    when the two-user network's weights are shipped."""
    entries = {
        "DPD-peaks": dpd.DPDLocalizer(readout="argmax"),
        "DPD-SIC": SICLocalizer(),
        "OMP": OMPLocalizer(),
        "P-ADMM-peaks": methods.PADMMLocalizer(readout="argmax"),
        "DAUN-peaks": methods.DAUNLocalizer(readout="argmax"),
        "DPD-peaks-S": dpd.DPDLocalizer(readout="subgrid"),
        "DPD-SIC-ML": SICLocalizer(readout="ml"),
        "DPD-AP": SICLocalizer(readout="ap"),
        "P-ADMM-peaks-AP": methods.PADMMLocalizer(readout="ap"),
        "DPD-peaks-APM": dpd.DPDLocalizer(readout="ap-multi"),
        "P-ADMM-peaks-APM": methods.PADMMLocalizer(readout="ap-multi"),
        "P-ADMM-peaks-S": methods.PADMMLocalizer(readout="subgrid"),
        "DAUN-peaks-S": methods.DAUNLocalizer(readout="subgrid"),
        "DPD-peaks-APR": dpd.DPDLocalizer(readout="ap-relax"),
    }
    if DAUN_MU_FILE.is_file():
        for suffix, readout in (
            ("", "argmax"),
            ("-S", "subgrid"),
            ("-AP", "ap"),
            ("-APM", "ap-multi"),
            ("-APR", "ap-relax"),
        ):
            entries["DAUN-MU" + suffix] = DAUNVariantLocalizer(variant=DAUN_MU_VARIANT, readout=readout)
    for name, localizer in entries.items():
        register_localizer(name, localizer, multi_user=True)


_register_defaults()
