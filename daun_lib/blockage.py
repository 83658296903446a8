r"""Blockage-robust localisers: the joint MAP of the position and the LoS states, and the mixture posterior mean.

With ``Scenario(los_model="3gpp")`` about half of the links have no LoS path
(TR 38.901 Table 7.4.2-1); a localiser that fits the LoS model to every link
is pulled off by the blocked ones.  Both localisers here use the LoS/NLoS
mixture model of :mod:`daun_lib.posterior` (per link: a Ricean LoS likelihood
with the standard's K-factor, or a diffuse NLoS one; prior LoS probability
``pi_m(p)`` of the 38.901 UMa model).

``SubsetMAPLocalizer`` (registry ``"Subset-MAP"``)
    The joint MAP of (position ``p``, LoS states ``s``) by enumeration: for
    every subset ``S`` of at least ``min_bs`` BSs (11 subsets for M = 4), the
    continuous ML position given that exactly the links in ``S`` are LoS,
    ``p_S`` (:func:`daun_lib.continuous.ml_localize` with weights ``1_S``: the
    NLoS links carry no information on ``p`` in the model), then the subset
    with the largest joint log posterior
    ``log p(p_S, s = 1_S | y)`` (:func:`daun_lib.posterior.state_log_posterior`).
    This is an approximate joint MAP: the states are enumerated exactly, but
    the position for each subset is the DPD-cost ML on its links, which
    neglects the slowly varying prior ``pi_m(p)`` and the Ricean form of the
    LoS likelihood (their maximisers differ little from the DPD cost's).
    Nothing is tuned: the K-factor and the LoS probability are the
    standard's.  With ``los_prior="always"`` every subset
    but the full one has prior probability 0 and the localiser is the
    continuous ML on all links.
``MixtureMeanLocalizer`` (registry ``"Mixture-MMSE"``)
    The posterior mean of ``p`` under the same mixture model
    (:func:`daun_lib.posterior.posterior_mean` with the LoS prior
    ``los_prior``): the MMSE estimate, which averages over the modes that the
    blocked links leave instead of picking one.

Both take the LoS prior from their own field ``los_prior`` (default
``"3gpp"``), not from the scenario they are called with: a localiser assumes
a propagation model, and the experiment code calls every method with the
all-LoS twin of the scenario (:func:`daun_lib.studies.accuracy.on_dictionaries`).
Like the Bayesian readouts they are in units of the noise power (the SNR is
estimated from ``||y||^2`` with the model's unit noise; samples far below it
raise ``ValueError``).  In ``geometry="3d"`` the users are taken at
``scenario.ut_height_m``, like every dictionary-based localiser of the
package (with ``ut_height_range_m`` set that is a model mismatch, the one
studied in notebook 06).
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import continuous, posterior
from .localizers import Localizer
from .scenario import Scenario

__all__ = ["MixtureMeanLocalizer", "SubsetMAPLocalizer", "subsets"]


def subsets(n_bs: int, min_bs: int = 2) -> list[tuple[int, ...]]:
    """All subsets of ``range(n_bs)`` with at least ``min_bs`` members, smallest first (11 for 4 BSs, min 2)."""
    for name, v, low in (("n_bs", n_bs, 1), ("min_bs", min_bs, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
    if min_bs > n_bs:
        raise ValueError(f"min_bs: expected at most n_bs = {n_bs}, got {min_bs}")
    return [S for r in range(min_bs, n_bs + 1) for S in itertools.combinations(range(n_bs), r)]


def _check_prior(v: Any) -> Any:
    if isinstance(v, str) and v in ("always", "3gpp"):
        return v
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0:
        return float(v)
    raise ValueError(f"los_prior: expected 'always', '3gpp' or a probability in [0, 1], got {v!r}")


def _prior_scenario(scenario: Scenario, los_prior: Any) -> Scenario:
    """``scenario`` with the LoS model ``los_prior`` (clusters on: the prior scenario only sets pi_m and geometry)."""
    return dataclasses.replace(scenario, los_model=los_prior, multipath=True)


@dataclass(frozen=True)
class SubsetMAPLocalizer(Localizer):
    """Joint MAP of position and LoS states over all subsets of >= ``min_bs`` LoS links (module docstring) -> (n, 2).

    Attributes
    ----------
    los_prior : "3gpp", "always" or float
        Prior LoS probability of each link (TR 38.901 UMa, Table 7.4.2-1, by default).
    min_bs : int
        Smallest LoS subset tried (2: one bearing fixes a line, not a point).
    cost : str
        Cost of the continuous ML per subset (:data:`daun_lib.continuous.COSTS`).
    params : PosteriorParams
        Likelihood settings (K-factor, SNR) of the subset score.
    """

    los_prior: Any = "3gpp"
    min_bs: int = 2
    cost: str = "dpd"
    params: posterior.PosteriorParams = None  # type: ignore[assignment]

    params_type: ClassVar[type] = posterior.PosteriorParams
    scale_invariant: ClassVar[bool] = False  # in units of the noise power

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "los_prior", _check_prior(self.los_prior))
        if self.los_prior == 0.0:
            raise ValueError(
                "los_prior: expected a LoS probability > 0 (with 0 no subset of LoS links is possible and every "
                "score is -inf)"
            )
        if isinstance(self.min_bs, bool) or not isinstance(self.min_bs, numbers.Integral) or self.min_bs < 2:
            raise ValueError(f"min_bs: expected an integer >= 2, got {self.min_bs!r}")
        if self.cost not in continuous.COSTS:
            raise ValueError(f"cost: expected one of {continuous.COSTS}, got {self.cost!r}")

    def _check_scenario(self, scenario: Scenario) -> None:
        if self.min_bs > scenario.n_bs:
            raise ValueError(f"scenario: has {scenario.n_bs} BSs, fewer than min_bs = {self.min_bs}")

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        prior = _prior_scenario(scenario, self.los_prior)
        posterior.estimate_omega(prior, y)  # refuses samples far below the model's unit noise power, before any work
        n, M = y.shape[0], scenario.n_bs
        best = np.full(n, -np.inf)
        out = None
        for S in subsets(M, self.min_bs):
            states = np.zeros((n, M), dtype=bool)
            states[:, list(S)] = True
            p = continuous.ml_localize(scenario, y, weights=states.astype(float), cost=self.cost)
            score = posterior.state_log_posterior(prior, y, p, states, self.params)
            if out is None:
                out = p.copy()  # the first subset stands in where every score is -inf (impossible under the prior)
            better = score > best
            out[better] = p[better]
            best[better] = score[better]
        return out


@dataclass(frozen=True)
class MixtureMeanLocalizer(Localizer):
    """Posterior mean of the position under the LoS/NLoS mixture with the LoS prior ``los_prior`` -> (n, 2).

    Attributes
    ----------
    los_prior : "3gpp", "always" or float
    params : PosteriorParams
        Candidate resolution, K-factor, SNR (:class:`daun_lib.posterior.PosteriorParams`).
    """

    los_prior: Any = "3gpp"
    params: posterior.PosteriorParams = None  # type: ignore[assignment]

    params_type: ClassVar[type] = posterior.PosteriorParams
    scale_invariant: ClassVar[bool] = False  # in units of the noise power

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "los_prior", _check_prior(self.los_prior))

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return posterior.posterior_mean(_prior_scenario(scenario, self.los_prior), y, self.params)
