"""Helpers shared by the baselines: noise-model checks, hyper-parameters, sectors, the area prior.

The input checks and cached scenario data that every localiser shares
(:func:`check_scenario`, :func:`check_y`, :func:`check_params`, :func:`dictionaries`) live in
:mod:`daun_lib.localizers`, the cached grid (:func:`grid`) in
:mod:`daun_lib.readouts`; they are re-exported here.  Inner helpers trust their
inputs.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from ..localizers import check_params, check_scenario, check_y, dictionaries
from ..readouts import cell_centres as grid
from ..scenario import Scenario

__all__ = [
    "check_scenario",
    "check_y",
    "dictionaries",
    "grid",
    "check_noise_floor",
    "check_params",
    "replace",
    "los_sector",
    "clip_to_area",
    "NOISE_FLOOR",
    "NOISE_CEILING",
]


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
            UserWarning,
            stacklevel=3,
        )


def replace(params: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` (re-runs the dataclass' own validation)."""
    return dataclasses.replace(params, **changes)


@lru_cache(maxsize=8)
def los_sector(scenario: Scenario) -> np.ndarray:
    """Range of LoS angles that users inside the area can have at each BS.

    The area is convex and every BS lies outside it, so the extreme angles are
    reached on the boundary; the boundary is sampled densely (401 points a side).
    In ``geometry="3d"`` the angles are ``arcsin`` of :meth:`Scenario.los_sines`
    (the measured cone angle; its extremes are on the boundary too).

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
    if scenario.geometry == "3d":
        th = np.arcsin(scenario.los_sines(edge))  # (P, M): the measured angle (cone angle), extreme on the edge too
    else:
        th = scenario.los_angles(edge)  # (P, M)
    out = np.stack([th.min(axis=0), th.max(axis=0)], axis=1)
    out.setflags(write=False)
    return out


def clip_to_area(scenario: Scenario, p: np.ndarray) -> np.ndarray:
    """Clip positions (n, 2) to the user area (the prior every grid method has too)."""
    h = scenario.area_size / 2.0
    return np.clip(p, -h, h)
