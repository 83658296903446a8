"""LoS state of each BS-user link: the TR 38.901 UMa LoS probability (Table 7.4.2-1) and its draw."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._checks import check_scenario
from .._validation import as_array, positive, rng_from_seed
from .._validation import positions as check_positions
from ..scenario import Scenario

__all__ = ["los_probability", "draw_los"]


def check_ut_heights(scenario: Scenario, ut_heights: Any, n: int) -> np.ndarray | None:
    """Validate per-user heights ``ut_heights`` (n,) for ``scenario``; None passes through.

    Heights need ``geometry="3d"`` and must be finite, in ``(0, bs_height_m)``; in 2-D only the
    nominal ``ut_height_m`` for every user passes (as ``simulate`` reports it), and it returns None.
    """
    if ut_heights is None:
        return None
    h = np.asarray(as_array(ut_heights, "ut_heights", 1, complex_ok=False), dtype=float)
    if scenario.geometry != "3d":
        # the 2-D model has no heights: only the nominal one (what simulate reports in 2-D) passes
        if h.shape == (n,) and (h == scenario.ut_height_m).all():
            return None
        raise ValueError("ut_heights: per-user heights need geometry='3d' (the 2-D model has no heights)")
    if h.shape != (n,):
        raise ValueError(f"ut_heights: expected shape ({n},), got {h.shape}")
    if not ((h > 0.0).all() and (h < scenario.bs_height_m).all()):
        raise ValueError(f"ut_heights: expected heights in (0, bs_height_m = {scenario.bs_height_m:g}) metres")
    return h


def los_probability(d2d: Any, ut_height_m: Any = 1.5) -> np.ndarray:
    """UMa LoS probability, TR 38.901 Table 7.4.2-1 (outdoor users).

    ``Pr_LOS = 1`` for ``d2D <= 18 m``, else
    ``[18/d + exp(-d/63) (1 - 18/d)] [1 + C'(h_UT) 5/4 (d/100)^3 exp(-d/150)]``
    with ``C'(h_UT) = 0`` for ``h_UT <= 13 m`` and ``((h_UT - 13)/10)^1.5`` for
    ``13 m < h_UT <= 23 m``.

    Parameters
    ----------
    d2d : (...) float
        2-D BS-user distances, metres: finite and >= 0 (an empty array gives
        an empty result).
    ut_height_m : float or (...) float
        User height h_UT, metres, at most 23 m (1.5 m by default); an array
        (per-user heights, :attr:`Scenario.ut_height_range_m`) must broadcast
        against ``d2d``.

    Returns
    -------
    (...) float
        LoS probability in [0, 1].

    Raises
    ------
    ValueError
        ``d2d`` not real, with NaN/inf or a negative distance; ``ut_height_m``
        not a positive number up to 23 m (or an array of such that does not
        broadcast against ``d2d``).
    """
    d = np.asarray(as_array(d2d, "d2d", tuple(range(0, 33)), complex_ok=False), dtype=float)
    if (d < 0).any():
        raise ValueError("d2d: expected distances >= 0")
    if not isinstance(ut_height_m, numbers.Real) and np.ndim(ut_height_m) > 0:
        return _los_probability_heights(d, ut_height_m)
    h = positive(ut_height_m, "ut_height_m")
    if h > 23.0:
        raise ValueError(f"ut_height_m: the UMa LoS probability is defined for h_UT <= 23 m, got {h!r}")
    c_h = 0.0 if h <= 13.0 else ((h - 13.0) / 10.0) ** 1.5
    ds = np.maximum(d, 18.0)  # avoid 18/0; d <= 18 is overwritten below
    p = (18.0 / ds + np.exp(-ds / 63.0) * (1.0 - 18.0 / ds)) * (
        1.0 + c_h * 1.25 * (ds / 100.0) ** 3 * np.exp(-ds / 150.0)
    )
    return np.where(d <= 18.0, 1.0, np.clip(p, 0.0, 1.0))


def _los_probability_heights(d: np.ndarray, ut_height_m: Any) -> np.ndarray:
    """:func:`los_probability` for an array of heights (validated here), broadcast against ``d``."""
    h = np.asarray(as_array(ut_height_m, "ut_height_m", tuple(range(1, 33)), complex_ok=False), dtype=float)
    if not ((h > 0.0).all() and (h <= 23.0).all()):
        raise ValueError("ut_height_m: the UMa LoS probability is defined for heights 0 < h_UT <= 23 m")
    try:
        d, h = np.broadcast_arrays(d, h)
    except ValueError as exc:
        raise ValueError(f"ut_height_m: shape {h.shape} does not broadcast against d2d {d.shape}") from exc
    c_h = np.where(h <= 13.0, 0.0, (np.maximum(h, 13.0) - 13.0) / 10.0) ** 1.5
    ds = np.maximum(d, 18.0)
    p = (18.0 / ds + np.exp(-ds / 63.0) * (1.0 - 18.0 / ds)) * (
        1.0 + c_h * 1.25 * (ds / 100.0) ** 3 * np.exp(-ds / 150.0)
    )
    return np.where(d <= 18.0, 1.0, np.clip(p, 0.0, 1.0))


def draw_los(scenario: Scenario, positions: Any, seed: Any = None, ut_heights: Any = None) -> np.ndarray:
    """Draw the LoS state of every link according to ``scenario.los_model``.

    One uniform number is drawn per link whatever the model, so the random
    stream after this call does not depend on ``los_model``.

    Parameters
    ----------
    scenario : Scenario
    positions : (n, 2) float
        User positions, metres; finite, ``n >= 1`` (an empty batch raises).
    seed : int, None or numpy.random.Generator
    ut_heights : (n,) float or None
        Each user's height (``Scenario.ut_height_range_m``, ``geometry="3d"``
        only), used by ``"3gpp"`` (C'(h_UT) of Table 7.4.2-1); ``None``: every
        user at ``scenario.ut_height_m``.  Draws nothing: the stream is the same.

    Returns
    -------
    (n, M) bool
        ``"always"``: all True; ``"3gpp"``: Bernoulli(:func:`los_probability`
        of the BS-user 2-D distance and the user height); float p: Bernoulli(p).

    Raises
    ------
    ValueError
        Naming ``scenario``, ``positions`` or ``seed`` when one is invalid.
    """
    scenario = check_scenario(scenario)
    p = check_positions(positions)
    h = check_ut_heights(scenario, ut_heights, p.shape[0])
    rng = rng_from_seed(seed)
    u = rng.random((p.shape[0], scenario.n_bs))
    model = scenario.los_model
    if model == "always":
        return np.ones_like(u, dtype=bool)
    if model == "3gpp":
        d2d = np.linalg.norm(p[:, None, :] - scenario.bs_array[None, :, :], axis=-1)
        return u < los_probability(d2d, scenario.ut_height_m if h is None else h[:, None])
    return u < float(model)
