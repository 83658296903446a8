"""Helpers shared by the baselines: noise-model checks, hyper-parameters, sectors, the area prior.

The input checks and cached scenario data that every localiser shares
(:func:`check_scenario`, :func:`check_y`, :func:`check_params`, :func:`dictionaries`) live in
:mod:`daun_lib.localizers`, the cached grid (:func:`grid`) in
:mod:`daun_lib.readouts`; they are re-exported here.  Inner helpers trust their
inputs.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np

from .._checks import (
    MAGNITUDE_MAX,
    MAGNITUDE_MIN,
    NOISE_CEILING,
    NOISE_FLOOR,
    check_magnitudes,
    check_noise_floor,
    check_params,
    check_scenario,
    check_y,
    dictionaries,
)
from .._checks import cell_centres as grid
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
