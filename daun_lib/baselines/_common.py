"""Helpers shared by the baseline localisers: input checks, cached dictionaries, sectors.

Inner helpers trust their inputs; the public ``localize`` functions call
:func:`check_scenario` and :func:`check_y` first.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from .._validation import as_array, is_tensor
from ..scenario import Scenario


def check_scenario(scenario: Any) -> Scenario:
    """Raise ``ValueError`` unless ``scenario`` is a :class:`daun_lib.Scenario`."""
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
    y = as_array(y, "y", (2, 3))
    if is_tensor(y):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2:
        y = y[None]
    M, N = scenario.n_bs, scenario.n_antennas
    if y.shape[1:] != (M, N):
        raise ValueError(f"y: expected shape (n, {M}, {N}) for this scenario (M BSs, N antennas), got {y.shape}")
    if y.shape[0] < 1:
        raise ValueError("y: expected at least one sample, got n = 0")
    y = np.ascontiguousarray(y, dtype=np.complex128)
    zero = np.flatnonzero(~np.any(y != 0, axis=(1, 2)))
    if zero.size:
        raise ValueError(f"y: sample(s) {zero[:10].tolist()} are all zero: a zero signal carries no "
                         f"information about the position")
    return y


#: A sample whose mean power per antenna is below this fraction of the assumed noise
#: power cannot come from the noise model (for M N >= 2 entries the chance is below 1e-7).
NOISE_FLOOR = 1e-4


#: A sample whose mean power per antenna exceeds this multiple of the assumed noise power (80 dB)
#: is far beyond any link of the modelled scenarios: a warning says that y may be in other units.
NOISE_CEILING = 1e8


def check_noise_floor(y: np.ndarray, noise_var: float, what: str) -> None:
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
    """
    power = np.mean(np.abs(y) ** 2, axis=tuple(range(1, y.ndim)))
    low = np.flatnonzero(power < NOISE_FLOOR * noise_var)
    if low.size:
        raise ValueError(
            f"y: sample(s) {low[:10].tolist()} have a mean power per antenna of {power[low[0]]:.3g}, "
            f"far below the assumed noise power {noise_var:g} ({what}); this method needs y in the units of "
            f"its noise model (set {what} to the noise power of y in its units)"
        )
    high = np.flatnonzero(power > NOISE_CEILING * noise_var)
    if high.size:
        warnings.warn(
            f"y: sample(s) {high[:10].tolist()} have a mean power per antenna of {power[high[0]]:.3g}, "
            f"{10 * np.log10(power[high[0]] / noise_var):.0f} dB above the assumed noise power {noise_var:g} "
            f"({what}); this method treats that as the SNR. If y is in other units, set {what} to the noise "
            f"power of y in its units",
            UserWarning, stacklevel=3,
        )


def check_params(params: Any, cls: type, name: str = "params") -> Any:
    """``params`` if it is an instance of the frozen dataclass ``cls``; ``cls()`` for None."""
    if params is None:
        return cls()
    if not isinstance(params, cls):
        raise ValueError(f"{name}: expected a {cls.__name__} (or None for the defaults), got {type(params).__name__}")
    return params


def replace(params: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` (re-runs the dataclass' own validation)."""
    return dataclasses.replace(params, **changes)


@lru_cache(maxsize=8)
def dictionaries(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``scenario.dictionaries()`` (A (M, N, K), B (M, N, L)), cached per scenario."""
    A, B = scenario.dictionaries()
    A.setflags(write=False)
    B.setflags(write=False)
    return A, B


@lru_cache(maxsize=8)
def grid(scenario: Scenario) -> np.ndarray:
    """Read-only ``scenario.grid`` (K, 2), cached."""
    g = scenario.grid
    g.setflags(write=False)
    return g


@lru_cache(maxsize=8)
def los_sector(scenario: Scenario) -> np.ndarray:
    """Range of LoS angles that users inside the area can have at each BS.

    The area is convex and every BS lies outside it, so the extreme angles are
    reached on the boundary; the boundary is sampled densely (401 points a side).

    Returns
    -------
    (M, 2) float
        ``[theta_min, theta_max]`` per BS, radians from broadside.
    """
    h = scenario.area_size / 2.0
    t = np.linspace(-h, h, 401)
    e = np.full_like(t, h)
    edge = np.concatenate(
        [np.stack([t, -e], 1), np.stack([t, e], 1), np.stack([-e, t], 1), np.stack([e, t], 1)], axis=0
    )
    th = scenario.los_angles(edge)  # (P, M)
    out = np.stack([th.min(axis=0), th.max(axis=0)], axis=1)
    out.setflags(write=False)
    return out


def clip_to_area(scenario: Scenario, p: np.ndarray) -> np.ndarray:
    """Clip positions (n, 2) to the user area (the prior every grid method has too)."""
    h = scenario.area_size / 2.0
    return np.clip(p, -h, h)
