r"""One shape for every localiser: ``localizer(scenario, y) -> positions (n, 2)``.

:class:`Localizer` is the base (in the spirit of pyroomacoustics' ``doa.DOA``):
its public ``__call__`` validates the scenario and the received signals ``y``
once (:func:`check_scenario`, :func:`check_y`) and then calls the subclass'
``_locate(scenario, y)`` with ``y`` as a (n, M, N) complex128 array.

Two families share the rest:

* **Map estimators** (:class:`MapLocalizer`: DPD, P-ADMM, DAUN, VB, MM) estimate
  a score per grid cell, or the LoS gains X (n, K, M) of (3) whose row powers
  are that score, in ``_map``; the readout named by ``readout=`` turns it into
  positions (:mod:`daun_lib.readouts`: ``"argmax"``, ``"alg1"`` (Algorithm 1),
  ``"subgrid"``, and any readout a user registers).
* **Bearing estimators** (:class:`daun_lib.baselines.bearings.BearingLocalizer`:
  Stansfield, SRL) estimate one angle per BS (and, optionally, its variance)
  and share one Stansfield intersection.

Subclasses are frozen dataclasses: their fields (readout name, hyper-parameter
dataclass) are the whole configuration, so two equal localisers give the same
positions and the experiment cache keys them by those fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._checks import cell_centres, check_params, check_scenario, check_y
from .readouts import GridReadout, Readout, get_readout
from .scenario import Scenario


class Localizer:
    """Base of every localiser: ``__call__(scenario, y) -> (n, 2)`` positions, metres.

    Subclasses implement ``_locate(scenario, y)`` (``y`` validated, (n, M, N)
    complex128) and may add scenario checks in ``_check_scenario``.  A
    dataclass subclass with a field ``params`` and the class attribute
    ``params_type`` (a frozen dataclass of hyper-parameters) gets ``params``
    checked at construction, None meaning ``params_type()``.
    """

    params_type: ClassVar[type | None] = None

    def __post_init__(self) -> None:
        if self.params_type is None:
            return
        object.__setattr__(self, "params", check_params(getattr(self, "params", None), self.params_type))

    def __call__(self, scenario: Scenario, y: Any) -> np.ndarray:
        """Position estimates.

        Parameters
        ----------
        scenario : Scenario
        y : (n, M, N) or (M, N) complex, numpy array or tensor

        Returns
        -------
        (n, 2) float, metres
        """
        scenario = check_scenario(scenario)
        self._check_scenario(scenario)
        return self._locate(scenario, check_y(scenario, y))

    def _check_scenario(self, scenario: Scenario) -> None:
        """Raise ``ValueError`` naming ``scenario`` when this localiser cannot serve it."""

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class MapLocalizer(Localizer):
    """A map estimator followed by a readout of :data:`daun_lib.readouts.READOUTS`.

    Subclasses implement ``_map(scenario, y) -> score (n, K) or X (n, K, M)``.
    With the class attribute ``block`` set, map and readout run per block of
    that many samples (bounds the memory of X).

    Attributes
    ----------
    readout : str
        Name of the readout (default ``"argmax"``); unknown names raise
        ``ValueError`` naming ``readout``.
    """

    readout: str = "argmax"
    readout_fn: Readout = field(init=False, repr=False, compare=False)

    block: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "readout_fn", get_readout(self.readout))

    def _map(self, scenario: Scenario, y: np.ndarray) -> Any:
        raise NotImplementedError

    def cells(self, scenario: Scenario) -> np.ndarray:
        """(K, 2) centres of the grid cells that a :class:`~daun_lib.readouts.GridReadout` picks from."""
        return cell_centres(scenario)

    def _read(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        score = self._map(scenario, y)
        if isinstance(self.readout_fn, GridReadout):
            return self.cells(scenario)[self.readout_fn.index(score)]
        return self.readout_fn(score, scenario, y)

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        if self.block is None:
            return self._read(scenario, y)
        out = np.empty((y.shape[0], 2))
        for lo in range(0, y.shape[0], self.block):
            out[lo : lo + self.block] = self._read(scenario, y[lo : lo + self.block])
        return out
