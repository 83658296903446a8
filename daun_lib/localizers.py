r"""One contract for every localiser: ``localizer.locate(scenario, y, n_users) -> positions (n, U, 2)``.

:class:`Localizer` is the base (in the spirit of pyroomacoustics' ``DOA.locate_sources``, where
the number of sources is an argument and not a second class hierarchy): :meth:`Localizer.locate`
validates the scenario, ``n_users`` and the received signals ``y`` once
(:func:`daun_lib._checks.check_scenario`, :func:`~daun_lib._checks.check_n_users`,
:func:`~daun_lib._checks.check_y`), calls the subclass' ``_process(scenario, y, n_users)`` with
``y`` as a (n, M, N) complex128 array, and checks what comes back
(:func:`daun_lib.readouts.check_positions_out`: finite, real, (n, U, 2), within
:data:`~daun_lib.readouts.POSITION_MARGIN_AREAS` area sizes of the user area).  Calling a localiser,
``localizer(scenario, y)``, is the one-user form and returns (n, 2); ``localizer(scenario, y,
n_users)`` returns (n, U, 2).  The order of the ``U`` estimates of a sample is arbitrary
(:func:`daun_lib.metrics.assigned_errors` matches them to the truth).

Families:

* **Map estimators** (:class:`MapLocalizer`: DPD, P-ADMM, DAUN, VB, MM) estimate a score per
  grid cell, or the LoS gains X (n, K, M) of (3) whose row powers are that score, in
  ``_map``; the readout named by ``readout=`` turns it into the positions of ``n_users`` users
  (:mod:`daun_lib.readouts`, one registry for one and several users).
* **Single-user estimators** (bearing estimators Stansfield and SRL, the blockage-robust and
  posterior estimators) implement ``_locate(scenario, y) -> (n, 2)`` and refuse ``n_users > 1``
  with a ``ValueError`` naming it.
* **Multi-user searches** (:mod:`daun_lib.multiuser`: successive cancellation, OMP) implement
  ``_process`` themselves.

Subclasses are frozen dataclasses: their fields (readout name, hyper-parameter dataclass) are
the whole configuration, so two equal localisers give the same positions and the experiment
cache keys them by those fields.

Registry.  :func:`register_localizer` adds a localiser under a name to :data:`LOCALIZERS`, the
one table of named localisers; :data:`daun_lib.methods.REGISTRY` (the single-user studies'
names) and :data:`daun_lib.multiuser.MULTI_REGISTRY` (the multi-user study's names) are
read-only views of it (:class:`RegistryView`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ._checks import cell_centres, check_n_users, check_params, check_scenario, check_y, dictionaries
from ._fingerprint import fingerprint
from ._memo import active, shared
from .peaks import SUPPRESSION_M, check_suppression, score_of
from .readouts import GridReadout, Readout, check_positions_out, get_readout
from .scenario import Scenario

__all__ = [
    "Localizer",
    "MapLocalizer",
    "LOCALIZERS",
    "RegistryView",
    "register_localizer",
    "check_scenario",
    "check_y",
    "check_params",
    "dictionaries",
    "cell_centres",
    "GridReadout",
    "Readout",
]


class Localizer:
    """Base of every localiser: :meth:`locate` ``(scenario, y, n_users) -> (n, U, 2)`` positions, metres.

    Subclasses implement ``_process(scenario, y, n_users)`` or, for one user only,
    ``_locate(scenario, y) -> (n, 2)``; they may add scenario checks in ``_check_scenario`` and
    user-count checks in ``_check_users``.  A dataclass subclass with a field ``params`` and the
    class attribute ``params_type`` (a frozen dataclass of hyper-parameters) gets ``params``
    checked at construction, None meaning ``params_type()``.

    Class attributes
    ----------------
    multi_user : bool
        Whether ``_process`` serves several users (False: ``n_users > 1`` raises ``ValueError``).
    scale_invariant : bool
        Whether ``c * y`` gives the positions of ``y`` (False for methods set in units of the
        noise power: SRL, VB, MM, the Bayesian and blockage-robust estimators).
    """

    params_type: ClassVar[type | None] = None
    multi_user: ClassVar[bool] = False
    scale_invariant: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.params_type is None:
            return
        object.__setattr__(self, "params", check_params(getattr(self, "params", None), self.params_type))

    def __call__(self, scenario: Scenario, y: Any, n_users: int | None = None) -> np.ndarray:
        """Position estimates: (n, 2) for one user (``n_users`` None), else (n, U, 2), metres.

        ``y`` must come from this scenario's geometry: signals of another geometry of the same shape
        (2-D against 3-D, another BS layout) give wrong positions that no check here can detect (a
        model-fit diagnostic is planned, issue 22).

        Parameters
        ----------
        scenario : Scenario
        y : (n, M, N) or (M, N) complex, numpy array or tensor
        n_users : int >= 1 or None
        """
        if n_users is None:
            return self.locate(scenario, y, 1)[:, 0]
        return self.locate(scenario, y, n_users)

    def locate(self, scenario: Scenario, y: Any, n_users: int = 1) -> np.ndarray:
        """Positions of ``n_users`` users per sample, (n, U, 2) metres, in arbitrary user order.

        As for :meth:`__call__`, signals from another geometry of the same shape cannot be told (issue 22).

        Parameters
        ----------
        scenario : Scenario
        y : (n, M, N) or (M, N) complex, numpy array or tensor
        n_users : int >= 1
        """
        scenario = check_scenario(scenario)
        self._check_scenario(scenario)
        n_users = check_n_users(n_users)
        if n_users > scenario.n_grid:
            raise ValueError(f"n_users: expected at most the K = {scenario.n_grid} grid cells, got {n_users}")
        if n_users > scenario.n_antennas:  # one rule for every entry: N antennas separate at most N sources
            raise ValueError(
                f"n_users: a BS's {scenario.n_antennas} antennas separate at most N = {scenario.n_antennas} "
                f"LoS sources; got {n_users}"
            )
        self._check_users(scenario, n_users)
        y = check_y(scenario, y)
        return check_positions_out(self._process(scenario, y, n_users), y.shape[0], n_users, self.describe(), scenario)

    def describe(self) -> str:
        """How error messages name this localiser (class and readout)."""
        readout = getattr(self, "readout", None)
        return type(self).__name__ + (f"(readout={readout!r})" if readout is not None else "")

    def _check_scenario(self, scenario: Scenario) -> None:
        """Raise ``ValueError`` naming ``scenario`` when this localiser cannot serve it."""

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        """Raise ``ValueError`` naming ``n_users`` when this localiser cannot separate that many users."""
        if n_users > 1 and not self.multi_user:
            raise ValueError(f"n_users: {self.describe()} localises one user per snapshot; got n_users = {n_users}")

    def _process(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        return np.asarray(self._locate(scenario, y))[:, None]

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class MapLocalizer(Localizer):
    """A map estimator followed by a readout of :data:`daun_lib.readouts.READOUTS`.

    Subclasses implement ``_map(scenario, y) -> score (n, K) or X (n, K, M)``.  With the class
    attribute ``block`` set, the map runs per block of that many samples (bounds the memory of X):
    with one user map and readout run per block; with several the blocks' score maps (n, K) are
    read out together.

    Attributes
    ----------
    readout : str
        Name of the readout (default ``"argmax"``); unknown names raise ``ValueError`` naming
        ``readout``.  Whether several users can be served is the readout's declaration.
    suppression_m : float >= 0, keyword-only
        With several users: cells within this distance (metres) of a pick are not picked again.
    """

    readout: str = "argmax"
    suppression_m: float = field(default=SUPPRESSION_M, kw_only=True)
    readout_fn: Readout = field(init=False, repr=False, compare=False)

    block: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "readout_fn", get_readout(self.readout))
        object.__setattr__(self, "suppression_m", check_suppression(self.suppression_m))

    @property
    def multi_user(self) -> bool:  # type: ignore[override]
        """Whether the readout serves several users."""
        return self.readout_fn.multi_user

    @property
    def scale_invariant(self) -> bool:  # type: ignore[override]
        """The map's scale behaviour (class attribute ``map_scale_invariant``) and the readout's."""
        return type(self).map_scale_invariant and self.readout_fn.scale_invariant

    map_scale_invariant: ClassVar[bool] = True

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        self.readout_fn.check_users(n_users)

    def _map(self, scenario: Scenario, y: np.ndarray) -> Any:
        raise NotImplementedError

    def cells(self, scenario: Scenario) -> np.ndarray:
        """(K, 2) centres of the grid cells that a grid readout picks from."""
        return cell_centres(scenario)

    def scores(self, scenario: Scenario, y: Any) -> np.ndarray:
        """The score map (n, K) for ``y`` (n, M, N) (validated): the map, or X's row powers."""
        scenario = check_scenario(scenario)
        self._check_scenario(scenario)
        return self._scores(scenario, check_y(scenario, y))

    def _map_key(self, scenario: Scenario) -> str | None:
        """Fingerprint of what determines ``_map``: the class, every field but the readout's, the scenario."""
        own = [(f.name, getattr(self, f.name)) for f in fields(self) if f.name not in _READOUT_FIELDS]
        try:
            return fingerprint(("map", type(self), own, scenario, self.block), name="localizer")
        except ValueError:
            return None  # a field that cannot be fingerprinted: the map is not shared

    def _shared_map(self, scenario: Scenario, y: np.ndarray, key: str | None) -> Any:
        """``_map(scenario, y)``, computed once per ``y`` among the localisers of an open sharing block."""
        if key is None:
            return self._map(scenario, y)
        return shared(key, y, lambda: self._map(scenario, y))

    def _scores(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        key = self._map_key(scenario) if active() else None
        if self.block is None:
            return score_of(self._shared_map(scenario, y, key))
        return np.concatenate(
            [
                score_of(self._shared_map(scenario, y[lo : lo + self.block], key))
                for lo in range(0, y.shape[0], self.block)
            ]
        )

    def _read(self, scenario: Scenario, y: np.ndarray, score: Any, n_users: int) -> np.ndarray:
        cells = np.asarray(self.cells(scenario), dtype=float)
        return self.readout_fn(
            score, scenario, y, n_users, cells=cells, suppression_m=self.suppression_m, owner=type(self).__name__
        )

    def _process(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        if n_users > 1:
            return self._read(scenario, y, self._scores(scenario, y), n_users)
        key = self._map_key(scenario) if active() else None
        if self.block is None:
            return self._read(scenario, y, self._shared_map(scenario, y, key), 1)
        out = np.empty((y.shape[0], 1, 2))
        for lo in range(0, y.shape[0], self.block):
            yb = y[lo : lo + self.block]
            out[lo : lo + self.block] = self._read(scenario, yb, self._shared_map(scenario, yb, key), 1)
        return out


_READOUT_FIELDS = ("readout", "suppression_m", "readout_fn")
"""The fields of :class:`MapLocalizer` that choose the readout, not the map (left out of the map's key)."""


# ------------------------------------------------------------------------------------------------
# The one table of named localisers


LOCALIZERS: dict[str, tuple[Localizer, bool]] = {}
"""Name -> (localiser, listed among the multi-user entries); filled by :func:`register_localizer`."""


def register_localizer(
    name: str, localizer: Localizer, *, multi_user: bool = False, replace: bool = False
) -> Localizer:
    """Add ``localizer`` to :data:`LOCALIZERS` under ``name`` (returns it).

    Parameters
    ----------
    name : str
        A new name (or an existing one with ``replace=True``).
    localizer : Localizer
        Any :class:`Localizer`; the contract tests of ``tests/test_contract.py`` run over every entry.
    multi_user : bool
        List it in :data:`daun_lib.multiuser.MULTI_REGISTRY` (the multi-user study's entries, called
        ``f(scenario, y, n_users)``) instead of :data:`daun_lib.methods.REGISTRY` (``f(scenario, y)``).
    replace : bool
        Allow replacing an entry.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not isinstance(localizer, Localizer):
        raise ValueError(f"localizer: expected a daun_lib.localizers.Localizer, got {type(localizer).__name__}")
    for flag, value in (("multi_user", multi_user), ("replace", replace)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag}: expected True or False, got {value!r}")
    if name in LOCALIZERS and not replace:
        raise ValueError(f"name: localizer {name!r} is already registered (pass replace=True to replace it)")
    if multi_user and not localizer.multi_user:
        raise ValueError(f"localizer: {localizer.describe()} serves one user; it cannot be a multi-user entry")
    LOCALIZERS[name] = (localizer, multi_user)
    return localizer


class RegistryView(Mapping):
    """A read-only, live view of :data:`LOCALIZERS`: the single-user or the multi-user entries."""

    def __init__(self, multi_user: bool) -> None:
        self._multi_user = multi_user

    def __getitem__(self, name: str) -> Localizer:
        entry = LOCALIZERS.get(name)
        if entry is None or entry[1] != self._multi_user:
            raise KeyError(name)
        return entry[0]

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, (_, multi) in LOCALIZERS.items() if multi == self._multi_user])

    def __len__(self) -> int:
        return sum(1 for _, multi in LOCALIZERS.values() if multi == self._multi_user)

    def __repr__(self) -> str:
        return f"RegistryView({dict(self)!r})"
