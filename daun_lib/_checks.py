"""Input checks that need a :class:`~daun_lib.Scenario`, shared by every layer above the model.

:mod:`daun_lib._validation` holds the checks that know no scenario (numbers, arrays, seeds);
this module the ones that do: the scenario itself (:func:`check_scenario`), received signals
against it (:func:`check_y`), hyper-parameter dataclasses (:func:`check_params`), the number of
users (:func:`check_n_users`), the guards of the methods that square ``y`` or assume a noise
power (:func:`check_magnitudes`, :func:`check_noise_floor`), and the read-only cached scenario
arrays that every estimator and readout shares (:func:`dictionaries`, :func:`cell_centres`).
Inner helpers trust their inputs.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from . import _validation
from ._validation import is_tensor
from .scenario import Scenario

__all__ = [
    "check_scenario",
    "check_y",
    "check_params",
    "check_n_users",
    "check_magnitudes",
    "check_noise_floor",
    "dictionaries",
    "cell_centres",
    "NOISE_FLOOR",
    "NOISE_CEILING",
    "MAGNITUDE_MAX",
    "MAGNITUDE_MIN",
]


def check_scenario(scenario: Any) -> Any:
    """Raise ``ValueError`` unless ``scenario`` is a :class:`daun_lib.Scenario`; returns it."""
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario: expected a daun_lib.Scenario, got {type(scenario).__name__}")
    return scenario


def check_y(scenario: Scenario, y: Any) -> np.ndarray:
    """Validate received signals against ``scenario``.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex (numpy array or tensor)

    Returns
    -------
    (n, M, N) complex128 numpy array.
    """
    y = _validation.signals(y, scenario.n_bs, scenario.n_antennas, expected=" for this scenario (M BSs, N antennas)")
    if is_tensor(y):
        y = y.detach().cpu().numpy()
    y = np.ascontiguousarray(y, dtype=np.complex128)
    _validation.reject_zero_samples(np.flatnonzero(~np.any(y != 0, axis=(1, 2))))
    return y


def check_params(params: Any, cls: type, name: str = "params") -> Any:
    """``params`` if it is an instance of the frozen dataclass ``cls``; ``cls()`` for None."""
    if params is None:
        return cls()
    if not isinstance(params, cls):
        raise ValueError(f"{name}: expected a {cls.__name__} (or None for the defaults), got {type(params).__name__}")
    return params


@lru_cache(maxsize=8)
def dictionaries(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``scenario.dictionaries()`` (A (M, N, K), B (M, N, L)), cached per scenario."""
    A, B = scenario.dictionaries()
    A.setflags(write=False)
    B.setflags(write=False)
    return A, B


@lru_cache(maxsize=8)
def cell_centres(scenario: Scenario) -> np.ndarray:
    """Read-only ``scenario.grid`` (K, 2), cached per scenario."""
    g = scenario.grid
    g.setflags(write=False)
    return g


def check_n_users(n_users: Any, name: str = "n_users") -> int:
    """``n_users`` as an int >= 1, else ``ValueError`` naming it (as ``name``)."""
    if isinstance(n_users, (bool, np.bool_)) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {n_users!r}")
    return int(n_users)


#: A sample whose mean power per antenna is below this fraction of the assumed noise
#: power cannot come from the noise model (for M N >= 2 entries the chance is below 1e-7).
NOISE_FLOOR = 1e-4


#: A sample whose mean power per antenna exceeds this multiple of the assumed noise power (80 dB)
#: is far beyond any link of the modelled scenarios: a warning says that y may be in other units.
NOISE_CEILING = 1e8


#: Largest and smallest (non-zero) magnitude of a sample of ``y`` whose squares the methods that
#: square ``y`` (DPD, Stansfield's beamscan, the noise-unit methods) compute without overflow (sums of
#: up to N M K squares stay far below 1.8e308) or subnormal squares (above 2.2e-308 with 16 digits).
MAGNITUDE_MAX = 1e150
MAGNITUDE_MIN = 1e-145


def check_magnitudes(y: np.ndarray, method: str) -> None:
    """Refuse samples whose squares float64 cannot hold: largest ``|y|`` above :data:`MAGNITUDE_MAX`
    or (non-zero and) below :data:`MAGNITUDE_MIN`.

    There ``|a^H y|^2`` overflows to inf or loses its digits in subnormal numbers, and a map's
    argmax is an arbitrary cell: a silent wrong answer.  y (n, M, N) complex; ``method`` names the
    caller in the message.
    """
    peak = np.abs(y).reshape(y.shape[0], -1).max(axis=1)
    bad = np.flatnonzero((peak > MAGNITUDE_MAX) | ((peak > 0) & (peak < MAGNITUDE_MIN)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"y: sample {i} has magnitudes up to {peak[i]:.3g}, outside [{MAGNITUDE_MIN:g}, {MAGNITUDE_MAX:g}] where "
            f"{method} squares y without overflow or loss of precision; divide y by a common scale"
            + ("" if "noise" not in method else " and the noise power with it")
        )


def check_noise_floor(y: np.ndarray, noise_var: float, what: str, fix: str | None = None) -> None:
    """Reject samples far below the noise power that a method assumes; warn for samples far above it.

    VB, MM and SRL model ``y`` as signal plus noise of a known power
    ``noise_var`` (the paper's unit noise by default), so unlike DAUN, P-ADMM,
    DPD and Stansfield they are not invariant to the scale of ``y``.  A sample
    whose mean power per antenna is below ``NOISE_FLOOR * noise_var`` is not
    data of that model (most likely ``y`` is in other units); answering anyway
    would be a silent wrong answer, so this raises.  A sample more than
    ``NOISE_CEILING`` times above it is legal (a very high SNR) but far beyond
    the modelled links, so a ``UserWarning`` says how the method reads it.

    Parameters
    ----------
    y : (n, M, N) complex
    noise_var : float > 0
    what : str
        The parameter that sets the noise power, for the message.
    fix : str or None
        What the user should do when ``y`` is in other units, for the messages; ``None``: set
        ``what`` to the noise power of ``y`` in its units.
    """
    fix = f"set {what} to the noise power of y in its units" if fix is None else fix
    power = np.mean(np.abs(y) ** 2, axis=tuple(range(1, y.ndim)))
    low = np.flatnonzero(power < NOISE_FLOOR * noise_var)
    if low.size:
        raise ValueError(
            f"y: sample(s) {low[:10].tolist()} have a mean power per antenna of {power[low[0]]:.3g}, "
            f"far below the assumed noise power {noise_var:g} ({what}); this method needs y in the units of "
            f"its noise model ({fix})"
        )
    high = np.flatnonzero(power > NOISE_CEILING * noise_var)
    if high.size:
        warnings.warn(
            f"y: sample(s) {high[:10].tolist()} have a mean power per antenna of {power[high[0]]:.3g}, "
            f"{10 * np.log10(power[high[0]] / noise_var):.0f} dB above the assumed noise power {noise_var:g} "
            f"({what}); this method treats that as the SNR. If y is in other units, {fix}",
            UserWarning,
            stacklevel=3,
        )
    check_magnitudes(y, "this noise-unit method")
