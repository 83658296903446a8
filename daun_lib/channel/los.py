"""LoS state of each BS-user link: the TR 38.901 UMa LoS probability (Table 7.4.2-1) and its draw."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_array, check_scenario, positive, rng_from_seed
from .._validation import positions as check_positions
from ..scenario import Scenario

__all__ = ["los_probability", "draw_los"]


def los_probability(d2d: Any, ut_height_m: float = 1.5) -> np.ndarray:
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
    ut_height_m : float
        User height h_UT, metres, at most 23 m (1.5 m by default).

    Returns
    -------
    (...) float
        LoS probability in [0, 1].

    Raises
    ------
    ValueError
        ``d2d`` not real, with NaN/inf or a negative distance; ``ut_height_m``
        not a positive number up to 23 m.
    """
    d = np.asarray(as_array(d2d, "d2d", tuple(range(0, 33)), complex_ok=False), dtype=float)
    if (d < 0).any():
        raise ValueError("d2d: expected distances >= 0")
    h = positive(ut_height_m, "ut_height_m")
    if h > 23.0:
        raise ValueError(f"ut_height_m: the UMa LoS probability is defined for h_UT <= 23 m, got {h!r}")
    c_h = 0.0 if h <= 13.0 else ((h - 13.0) / 10.0) ** 1.5
    ds = np.maximum(d, 18.0)  # avoid 18/0; d <= 18 is overwritten below
    p = (18.0 / ds + np.exp(-ds / 63.0) * (1.0 - 18.0 / ds)) * (
        1.0 + c_h * 1.25 * (ds / 100.0) ** 3 * np.exp(-ds / 150.0)
    )
    return np.where(d <= 18.0, 1.0, np.clip(p, 0.0, 1.0))


def draw_los(scenario: Scenario, positions: Any, seed: Any = None) -> np.ndarray:
    """Draw the LoS state of every link according to ``scenario.los_model``.

    One uniform number is drawn per link whatever the model, so the random
    stream after this call does not depend on ``los_model``.

    Parameters
    ----------
    scenario : Scenario
    positions : (n, 2) float
        User positions, metres; finite, ``n >= 1`` (an empty batch raises).
    seed : int, None or numpy.random.Generator

    Returns
    -------
    (n, M) bool
        ``"always"``: all True; ``"3gpp"``: Bernoulli(:func:`los_probability`
        of the BS-user 2-D distance); float p: Bernoulli(p).

    Raises
    ------
    ValueError
        Naming ``scenario``, ``positions`` or ``seed`` when one is invalid.
    """
    scenario = check_scenario(scenario)
    p = check_positions(positions)
    rng = rng_from_seed(seed)
    u = rng.random((p.shape[0], scenario.n_bs))
    model = scenario.los_model
    if model == "always":
        return np.ones_like(u, dtype=bool)
    if model == "3gpp":
        d2d = np.linalg.norm(p[:, None, :] - scenario.bs_array[None, :, :], axis=-1)
        return u < los_probability(d2d, scenario.ut_height_m)
    return u < float(model)
