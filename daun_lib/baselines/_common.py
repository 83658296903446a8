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
    "MAGNITUDE_MAX",
    "MAGNITUDE_MIN",
    "check_magnitudes",
]


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
