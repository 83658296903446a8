"""One table of localisation methods: ``REGISTRY[name](scenario, y) -> (n, 2)``.

The Monte Carlo code and the notebooks loop over this dict instead of
if-chains.  Every entry is a :class:`daun_lib.localizers.Localizer`: it takes
a :class:`daun_lib.Scenario` and received signals ``y`` (n, M, N) (or (M, N))
and returns position estimates (n, 2) in metres, with the documented default
settings of its method.  A map estimator's entry names its readout
(:mod:`daun_lib.readouts`); this module also holds the localisers of the
package's own solvers, :class:`PADMMLocalizer` and :class:`DAUNLocalizer`.

========== ====================================== ===========================================================
name       entry                                  method
========== ====================================== ===========================================================
DAUN       ``DAUNLocalizer(readout="argmax")``    the pretrained unfolded network (:mod:`daun_lib.daun`)
DAUN-R     ``DAUNLocalizer(readout="alg1")``      the same, position refinement of Algorithm 1
DAUN-S     ``DAUNLocalizer(readout="subgrid")``   the same, sub-grid readout (not in the paper)
P-ADMM     ``PADMMLocalizer(readout="argmax")``   :func:`daun_lib.admm.solve`, :func:`daun_lib.admm.default_params`,
                                                  ``PADMM_ITERATIONS`` iterations
DPD        ``DPDLocalizer(readout="argmax")``     grid DPD (Weiss 2004), :mod:`daun_lib.baselines.dpd`
DPD-S      ``DPDLocalizer(readout="subgrid")``    grid DPD with DAUN-S's sub-grid readout (the fair comparison)
DAUN-ML    ``DAUNLocalizer(readout="ml")``        DAUN, then the continuous ML (Newton on the DPD cost from DAUN's peak)
DAUN-MLB   ``DAUNLocalizer(readout="ml-bs")``     the same with an unknown noise level per BS
DPD-ML     ``DPDLocalizer(readout="ml")``         the continuous ML of the LoS-only model (:mod:`daun_lib.continuous`)
DPD-MLB    ``DPDLocalizer(readout="ml-bs")``      the same with an unknown noise level per BS
DPD-MMSE   ``PosteriorMeanLocalizer()``           posterior mean (:mod:`daun_lib.posterior`; no map: release 0.1's
                                                  ``DPDLocalizer(readout="mmse")`` computed a DPD map and ignored it)
DPD-Disk   ``DiskLocalizer()``                    most posterior mass within 1 m (the same posterior)
Subset-MAP ``SubsetMAPLocalizer()``               blockage-robust: joint MAP of position and LoS states
                                                  (:mod:`daun_lib.blockage`, TR 38.901 LoS prior)
Mixture-   ``MixtureMeanLocalizer()``             blockage-robust: posterior mean under the LoS/NLoS mixture
MMSE
Stansfield ``StansfieldLocalizer()``              beamscan AoA + Stansfield intersection
SRL        ``SRLLocalizer()``                     l1 angle spectra + Stansfield intersection
VB         ``VBLocalizer(readout="argmax")``      variational-Bayes sparse Bayesian learning
MM         ``MMLocalizer(readout="argmax")``      majorization-minimization of the penalised (3)
========== ====================================== ===========================================================

Entries of your own.  Any callable ``f(scenario, y) -> (n, 2)`` can stand in
a dict next to these; the experiment code takes such a dict
(``experiments.accuracy_sweep(..., methods=mine)``).  A map estimator takes
any registered readout, and a new readout is one function and one
registration, without editing the package::

    from daun_lib import methods, readouts
    from daun_lib.baselines.vb import VBLocalizer

    def peak_of_strongest_bs(score, scenario, y):
        # score: (n, K) map or X (n, K, M); return positions (n, 2)
        X = abs(score) if score.ndim == 3 else score[..., None]
        return readouts.cell_centres(scenario)[X.max(axis=2).argmax(axis=1)]

    readouts.register_readout("strongest-bs", peak_of_strongest_bs)
    mine = {
        **methods.REGISTRY,
        "VB-S": VBLocalizer(readout="subgrid"),
        "DAUN-B": methods.DAUNLocalizer(readout="strongest-bs"),
    }
    positions = mine["VB-S"](scenario, y)

The DAUN entries import :mod:`daun_lib.daun` only when called and raise
``ValueError`` for a scenario whose dictionaries differ from those of the
default ``Scenario()`` that the shipped weights were trained for
(:meth:`Scenario.dictionary_fields`; in the default ``geometry="2d"`` the channel
options ``los_model``, ``carrier_hz`` and the heights change the data, not the
network, and are accepted; a ``geometry="3d"`` scenario is refused: the shipped
weights are 2-D).

Scale.  DAUN, DAUN-R, DAUN-S, DAUN-ML, DAUN-MLB, P-ADMM, DPD, DPD-S, DPD-ML,
DPD-MLB and Stansfield need no noise level: ``c * y`` gives the same positions
as ``y`` for any ``c`` from 1e-30 to 1e30 (exactly for the grid readouts, to
float round-off for the continuous ones).  SRL, VB, MM and the Bayesian entries
(DPD-MMSE, DPD-Disk, Subset-MAP, Mixture-MMSE) are set in units of the noise (the paper's unit noise
power): they answer for ``c * y`` as for a different SNR, and reject samples far
below the noise power with a ``ValueError`` instead of answering.  An all-zero
sample is rejected by every method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from . import admm, posterior
from ._checks import dictionaries
from .baselines import dpd, mm, srl, stansfield, vb
from .blockage import MixtureMeanLocalizer, SubsetMAPLocalizer
from .localizers import Localizer, MapLocalizer, RegistryView, register_localizer
from .operators import AUTO_SMALL_BATCH, choose
from .scenario import DICTIONARY_FIELDS as _SCENARIO_DICTIONARY_FIELDS
from .scenario import Scenario

__all__ = [
    "REGISTRY",
    "FIG2_METHODS",
    "TABLE1_METHODS",
    "PADMM_ITERATIONS",
    "DICTIONARY_FIELDS",
    "DAUN_S_CHUNK",
    "Localizer",
    "PADMMLocalizer",
    "PosteriorMeanLocalizer",
    "DiskLocalizer",
    "DAUNLocalizer",
    "localize",
    "daun_available",
    "daun_unavailable",
]

#: P-ADMM iterations.  300 is the compromise between "run to convergence" (the objective
#: of (3) and the argmax readout still move a little between 300 and 800 iterations)
#: and Table I's run time; re-check when ``admm.DEFAULT_RHO`` changes.
PADMM_ITERATIONS = 300

#: Scenario fields that determine the dictionaries A, B (and so the network's operators) in
#: ``geometry="2d"``; an alias of :data:`daun_lib.scenario.DICTIONARY_FIELDS`.  The complete
#: rule (geometry, heights in 3-D) is :meth:`daun_lib.Scenario.dictionary_fields`.
DICTIONARY_FIELDS: tuple[str, ...] = _SCENARIO_DICTIONARY_FIELDS

#: Samples per block of the DAUN entries (bounds their peak memory: X of a block
#: is (DAUN_S_CHUNK, K, M) complex).
DAUN_S_CHUNK = 256

#: The methods of Fig. 2 and of Table I, in the paper's order.
FIG2_METHODS: tuple[str, ...] = ("DAUN", "DAUN-R", "DPD", "Stansfield", "SRL", "VB")
TABLE1_METHODS: tuple[str, ...] = ("DAUN", "P-ADMM", "MM", "VB", "DPD")


@lru_cache(maxsize=4)
def _padmm_params(scenario: Scenario) -> admm.ADMMParams:
    A, B = dictionaries(scenario)
    return admm.default_params(A, B)


@lru_cache(maxsize=8)
def _padmm_problem(scenario: Scenario, small_batch: bool) -> tuple[Any, Any, admm.ADMMParams]:
    """``(A, B, params)`` for P-ADMM on ``scenario``: the dense arrays where ``operators.choose`` keeps both
    dictionaries dense (the paper's scale, at every batch), else ``scenario.operators("auto")`` (FFT-based
    products where they are faster, :mod:`daun_lib.operators`) with step sizes from those operators."""
    batch = 1 if small_batch else AUTO_SMALL_BATCH
    N = scenario.n_antennas
    if all(choose(N, P, batch) == "dense" for P in (scenario.n_grid, scenario.n_angles)):
        return (*dictionaries(scenario), _padmm_params(scenario))
    A, B = scenario.operators("auto", batch=batch)
    return A, B, admm.default_params(A, B)


@dataclass(frozen=True)
class PADMMLocalizer(MapLocalizer):
    """P-ADMM (5)-(17) run to convergence: X (n, K, M) of :func:`daun_lib.admm.solve` with
    :func:`daun_lib.admm.default_params` and ``PADMM_ITERATIONS`` iterations, then the readout -> (n, 2).

    The dictionary products are dense at the paper's scale and FFT-based where :func:`daun_lib.operators.choose`
    finds them faster for this batch (:func:`_padmm_problem`)."""

    def _map(self, scenario: Scenario, y: np.ndarray) -> Any:
        A, B, params = _padmm_problem(scenario, y.shape[0] < AUTO_SMALL_BATCH)
        return admm.solve(A, B, y, iterations=PADMM_ITERATIONS, **params.as_kwargs()).X


@lru_cache(maxsize=2)
def _pretrained(geometry: str = "2d") -> Any:
    from . import daun  # lazy: the network module is optional for the baselines

    return daun.load_pretrained(geometry=geometry)


@dataclass(frozen=True)
class DAUNLocalizer(MapLocalizer):
    """The pretrained DAUN (:func:`daun_lib.daun.load_pretrained`): the last layer's X (n, K, M)
    (``DAUN.estimate_x``), then the readout, per block of ``DAUN_S_CHUNK`` samples -> (n, 2).

    Grid readouts place their pick on the network's own cell centres (float32,
    as ``DAUN.localize`` returns them).  The shipped weights were trained for
    ``Scenario()`` and, with heights, ``Scenario(geometry="3d")``
    (``load_pretrained(geometry=...)``); a scenario whose dictionaries differ
    from those of the default scenario of its geometry
    (:meth:`Scenario.dictionary_fields`) raises ``ValueError``.
    """

    @property
    def block(self) -> int:  # type: ignore[override]
        """Samples per block: the module's ``DAUN_S_CHUNK``, read at call time."""
        return DAUN_S_CHUNK

    def _check_scenario(self, scenario: Scenario) -> None:
        mine = scenario.dictionary_fields()
        default = Scenario(geometry=mine["geometry"]).dictionary_fields()
        changed = [f for f in mine if mine[f] != default.get(f)]
        if changed:
            raise ValueError(
                f"scenario: the pretrained DAUN weights were trained for the dictionaries of "
                f"Scenario(geometry={mine['geometry']!r}); this scenario changes {changed} (train a network "
                f"for it with daun_lib.daun)"
            )

    def _map(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return _pretrained(scenario.geometry).estimate_x(y)

    def cells(self, scenario: Scenario) -> np.ndarray:
        return _pretrained(scenario.geometry).grid.detach().cpu().double().numpy()


@dataclass(frozen=True)
class PosteriorMeanLocalizer(Localizer):
    """Posterior mean of the position (:func:`daun_lib.posterior.posterior_mean`, default settings, every
    link LoS whatever the scenario's ``los_model``) -> (n, 2).  Computes no map (the ``DPD-MMSE`` entry)."""

    scale_invariant: ClassVar[bool] = False  # in units of the noise power

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return posterior.posterior_mean(_all_los(scenario), y)


@dataclass(frozen=True)
class DiskLocalizer(Localizer):
    """The position with the most posterior mass within 1 m of it (:func:`daun_lib.posterior.disk_map`, default
    settings, every link LoS) -> (n, 2).  Computes no map (the ``DPD-Disk`` entry)."""

    scale_invariant: ClassVar[bool] = False  # in units of the noise power

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return posterior.disk_map(_all_los(scenario), y)


def _all_los(scenario: Scenario) -> Scenario:
    """The all-LoS twin of ``scenario``: the posterior estimators' model has no blockage prior."""
    return dataclasses.replace(scenario, los_model="always", multipath=True)


REGISTRY: Mapping[str, Localizer] = RegistryView(multi_user=False)
"""Method name -> ``localizer(scenario, y) -> (n, 2)`` (a :class:`~daun_lib.localizers.Localizer`): the
single-user entries of :data:`daun_lib.localizers.LOCALIZERS`, a read-only live view."""


def _register_defaults() -> None:
    """The package's single-user entries (table in the module docstring)."""
    entries = {
        "DAUN": DAUNLocalizer(readout="argmax"),
        "DAUN-R": DAUNLocalizer(readout="alg1"),
        "DAUN-S": DAUNLocalizer(readout="subgrid"),
        "P-ADMM": PADMMLocalizer(readout="argmax"),
        "DPD": dpd.DPDLocalizer(readout="argmax"),
        "DPD-S": dpd.DPDLocalizer(readout="subgrid"),
        "Stansfield": stansfield.StansfieldLocalizer(),
        "SRL": srl.SRLLocalizer(),
        "VB": vb.VBLocalizer(readout="argmax"),
        "MM": mm.MMLocalizer(readout="argmax"),
        "DAUN-ML": DAUNLocalizer(readout="ml"),
        "DAUN-MLB": DAUNLocalizer(readout="ml-bs"),
        "DPD-ML": dpd.DPDLocalizer(readout="ml"),
        "DPD-MLB": dpd.DPDLocalizer(readout="ml-bs"),
        "DPD-MMSE": PosteriorMeanLocalizer(),
        "DPD-Disk": DiskLocalizer(),
        "Subset-MAP": SubsetMAPLocalizer(),
        "Mixture-MMSE": MixtureMeanLocalizer(),
    }
    for name, localizer in entries.items():
        register_localizer(name, localizer)


_register_defaults()

#: The P-ADMM and DPD-S entries under their former function names.
padmm = REGISTRY["P-ADMM"]
dpd_subgrid = REGISTRY["DPD-S"]


def localize(method: str, scenario: Scenario, y: Any) -> np.ndarray:
    """``REGISTRY[method](scenario, y)`` with a clear error for an unknown name.

    Parameters
    ----------
    method : str
        A key of :data:`REGISTRY`.
    scenario : Scenario
    y : (n, M, N) or (M, N) complex

    Returns
    -------
    (n, 2) float
    """
    if not isinstance(method, str) or method not in REGISTRY:
        raise ValueError(f"method: expected one of {sorted(REGISTRY)}, got {method!r}")
    return REGISTRY[method](scenario, y)


def daun_unavailable() -> str | None:
    """Why the DAUN entries cannot run here (None when they can).

    They need :mod:`daun_lib.daun` and its shipped weights
    (``daun.load_pretrained()``); the reason is the import or loading error.
    """
    try:
        _pretrained("2d")
    except (ImportError, ValueError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def daun_available() -> bool:
    """True when the pretrained DAUN can be loaded (see :func:`daun_unavailable`)."""
    return daun_unavailable() is None
