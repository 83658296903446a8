r"""Readouts: a map over the position grid -> positions (n, 2), registered by name.

Every map estimator of the package (DPD, P-ADMM, DAUN, VB, MM) ends in the same
step: turn what it estimated over the K grid cells into positions.  What it
estimated is either

* a **score map** ``score`` (n, K) >= 0, one value per grid cell (DPD's cost), or
* the LoS gains **X** (n, K, M) of (3), whose row powers ``||[X]_{k,:}||_2^2``
  are the score (:func:`daun_lib.refine.row_power`).

A readout is a function ``readout(score_or_X, scenario, y) -> (n, 2)`` (metres);
``y`` (n, M, N) is the data the map came from, for readouts that need it (the
continuous and Bayesian ones).  :data:`READOUTS` maps a name to a readout; a map
estimator takes ``readout=<name>`` (:class:`daun_lib.localizers.MapLocalizer`).
Adding a readout is one function and one :func:`register_readout` call.

========= ===================================================================
name      readout
========= ===================================================================
argmax    the plain readout after (3): ``k = argmax_k ||[X]_{k,:}||_2`` (or of the score)
alg1      Algorithm 1 of Sec. III-C (:func:`daun_lib.refine.refine`); needs X
subgrid   3-point Gaussian fit around the peak (:func:`daun_lib.refine.subgrid`; not in the paper)
ml        continuous ML: from the map's peak cell, safeguarded Newton ascent of the DPD cost
          ``sum_m |a_m(p)^H y_m|^2`` (:func:`daun_lib.continuous.ml_localize`); the map only
          chooses the start (the basin), the data choose the position; the ML of the LoS-only model (the DPD cost)
ml-bs     the same with an unknown noise level per BS (cost ``-N sum_m log(||y_m||^2 - |a_m^H y_m|^2)``,
          :mod:`daun_lib.continuous`): a BS whose data the LoS ray explains badly (strong NLoS
          clusters) weighs less
mmse      posterior mean over the user area (:func:`daun_lib.posterior.posterior_mean`)
disk      the position with the most posterior mass within ``disk_radius_m``
          (1 m) of it (:func:`daun_lib.posterior.disk_map`): aims at P(error < 1 m)
========= ===================================================================

The Bayesian readouts (``mmse``, ``disk``) compute the posterior of the
position from ``y`` over a fine grid of the area, with every link LoS whatever
the scenario's ``los_model`` (the blockage-aware posterior is
:class:`daun_lib.blockage.MixtureMeanLocalizer`) (:mod:`daun_lib.posterior`,
known-modulus Ricean likelihood, uniform prior, the model's own temperature,
the defaults of :class:`daun_lib.posterior.PosteriorParams`; other settings are
one ``register_readout`` call away);
they do not use the map, so every map estimator gives the same positions with
them (the registry pairs them with DPD, the cheapest map).  Like SRL, VB and MM
they are defined in units of the noise power (the SNR is estimated from
``||y||^2`` with the model's unit noise), unlike the other readouts.

Readouts that pick one grid cell per sample are :class:`GridReadout` objects:
their ``index`` function gives the cell, and the position is the cell centre.
A localiser whose network carries its own cell centres (DAUN) places the pick
there (:meth:`daun_lib.localizers.MapLocalizer.cells`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import cell_centres, check_scenario
from ._validation import as_array
from .refine import argmax_rows, refine, row_power, subgrid
from .scenario import Scenario

Readout = Callable[[Any, Scenario, Any], np.ndarray]
"""``readout(score (n, K) or X (n, K, M), scenario, y (n, M, N)) -> positions (n, 2)``."""


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


READOUTS: dict[str, Readout] = {}
"""Readout name -> ``readout(score_or_X, scenario, y) -> (n, 2)``."""


def register_readout(name: str, fn: Readout, *, replace: bool = False) -> Readout:
    """Add ``fn`` to :data:`READOUTS` under ``name`` (returns ``fn``).

    Parameters
    ----------
    name : str
        A new name (or an existing one with ``replace=True``).
    fn : callable
        ``fn(score (n, K) or X (n, K, M), scenario, y (n, M, N)) -> (n, 2)`` positions, metres.
    replace : bool
        Allow replacing a registered readout (localisers built before keep the old one).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn: expected a callable readout(score_or_X, scenario, y), got {type(fn).__name__}")
    if not isinstance(replace, bool):
        raise ValueError(f"replace: expected True or False, got {replace!r}")
    if name in READOUTS and not replace:
        raise ValueError(f"name: readout {name!r} is already registered (pass replace=True to replace it)")
    READOUTS[name] = fn
    return fn


def get_readout(name: Any) -> Readout:
    """``READOUTS[name]``, or ``ValueError`` naming ``readout`` for an unknown name."""
    if not isinstance(name, str) or name not in READOUTS:
        raise ValueError(f"readout: expected one of {sorted(READOUTS)}, got {name!r}")
    return READOUTS[name]


def _ml(score: Any, scenario: Scenario, y: Any, cost: str) -> np.ndarray:
    from . import continuous  # lazy: continuous imports the localiser module, which imports this one

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
    from . import posterior

    return posterior.posterior_mean(*_posterior_inputs(score, scenario, y))


def disk_readout(score: Any, scenario: Scenario, y: Any) -> np.ndarray:
    """Disk MAP (:func:`daun_lib.posterior.disk_map`, default settings, every link LoS); the map is not used
    -> (n, 2)."""
    from . import posterior

    return posterior.disk_map(*_posterior_inputs(score, scenario, y))


register_readout("argmax", GridReadout(argmax_index))
register_readout("alg1", GridReadout(alg1_index))
register_readout("subgrid", subgrid_readout)
register_readout("ml", ml_readout)
register_readout("ml-bs", ml_bs_readout)
register_readout("mmse", mmse_readout)
register_readout("disk", disk_readout)
