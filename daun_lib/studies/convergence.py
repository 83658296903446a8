"""Fig. 3 data: the NMSE ``E||y - A x - B z||^2 / E||y||^2`` per DAUN layer and per P-ADMM iteration.

:func:`convergence_rows` computes the rows of ``results/fig3.csv`` on one set of
held-out samples; :func:`convergence_curves` turns the rows read back from
the CSV into one (iteration, NMSE) array per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

LITERAL_PARAMS = {"rho": 5.0, "tau1": 0.5, "tau2": 0.5, "w": 1.0}
"""The paper's P-ADMM setting ``tau1 = tau2 = 0.5, rho = 5`` (with ``w_m = 1``), literally, in this package's units."""


def convergence_rows(
    nets: Mapping[str, Any],
    A: Any,
    B: Any,
    y: Any,
    *,
    admm_params: Any,
    admm_iterations: int,
    literal_params: Mapping[str, float],
    literal_iterations: int,
) -> list[dict]:
    """Rows ``method, variant, iteration, nmse, rho, tau1, tau2`` of Fig. 3.

    For every network ``nets[v]``, ``net.solve(y).nmse`` after each layer
    (method ``"DAUN (v)"``, the layer's learned ``rho``, ``tau1``, ``tau2``);
    then :func:`daun_lib.admm.solve` with ``admm_params`` for
    ``admm_iterations`` (method ``"P-ADMM"``), and with ``literal_params``
    (e.g. :data:`LITERAL_PARAMS`) for ``literal_iterations`` (method
    ``"P-ADMM (paper's tau, rho)"``).

    Parameters
    ----------
    nets : dict variant -> daun.DAUN
    A : (M, N, K) complex
    B : (M, N, L) complex
    y : (n, M, N) complex
    admm_params : admm.ADMMParams (``as_kwargs()``, ``rho``, ``tau1``, ``tau2``)
    admm_iterations, literal_iterations : int >= 1
    literal_params : dict with ``rho``, ``tau1``, ``tau2`` (and ``w``)
    """
    from .. import admm
    from .._validation import positive

    if not isinstance(nets, Mapping):
        raise ValueError(f"nets: expected a dict variant -> DAUN, got {type(nets).__name__}")
    if not hasattr(admm_params, "as_kwargs"):
        raise ValueError(f"admm_params: expected admm.default_params(...), got {type(admm_params).__name__}")
    if not isinstance(literal_params, Mapping) or not {"rho", "tau1", "tau2"} <= set(literal_params):
        raise ValueError(f"literal_params: expected a dict with rho, tau1, tau2, got {literal_params!r}")
    admm_iterations = positive(admm_iterations, "admm_iterations", integer=True)
    literal_iterations = positive(literal_iterations, "literal_iterations", integer=True)
    rows = []
    for v, net in nets.items():
        res = net.solve(y)
        p = net.parameters_dict()
        for i, e in enumerate(np.asarray(res.nmse, dtype=float)):
            rows.append(
                {
                    "method": f"DAUN ({v})",
                    "variant": v,
                    "iteration": i + 1,
                    "nmse": e,
                    "rho": p["rho"][i],
                    "tau1": p["tau1"][i],
                    "tau2": p["tau2"][i],
                }
            )
    res = admm.solve(A, B, y, iterations=admm_iterations, **admm_params.as_kwargs())
    for i, e in enumerate(np.asarray(res.nmse, dtype=float)):
        rows.append(
            {
                "method": "P-ADMM",
                "variant": "default_params",
                "iteration": i + 1,
                "nmse": e,
                "rho": admm_params.rho,
                "tau1": admm_params.tau1,
                "tau2": admm_params.tau2,
            }
        )
    lit = dict(literal_params)
    res = admm.solve(A, B, y, iterations=literal_iterations, **lit)
    for i, e in enumerate(np.asarray(res.nmse, dtype=float)):
        rows.append(
            {
                "method": "P-ADMM (paper's tau, rho)",
                "variant": "literal",
                "iteration": i + 1,
                "nmse": e,
                "rho": lit["rho"],
                "tau1": lit["tau1"],
                "tau2": lit["tau2"],
            }
        )
    return rows


def held_out_samples(scenario: Any, n_samples: int, seed: int, snr_range_db: Sequence[float]) -> Any:
    """The held-out set of Fig. 3: ``n_samples`` users with per-sample SNR uniform in ``snr_range_db`` (dB).

    ``rng = numpy.random.default_rng(seed)`` draws the SNRs first, then
    :func:`daun_lib.channel.simulate` draws users, channels and noise from the same ``rng``.

    Returns
    -------
    channel batch with ``y`` (n_samples, M, N) complex
    """
    from .. import channel
    from .._validation import positive

    n_samples = positive(n_samples, "n_samples", integer=True)
    if len(snr_range_db) != 2 or not snr_range_db[0] <= snr_range_db[1]:
        raise ValueError(f"snr_range_db: expected [low, high] with low <= high, got {snr_range_db!r}")
    rng = np.random.default_rng(seed)
    snr = rng.uniform(snr_range_db[0], snr_range_db[1], size=n_samples)
    return channel.simulate(scenario, n_samples, snr, seed=rng)


def convergence_curves(table: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Method -> (n, 2) float array of (iteration, NMSE), sorted by iteration, from the rows of ``fig3.csv``."""
    if not table or not all(isinstance(r, Mapping) and {"method", "iteration", "nmse"} <= set(r) for r in table):
        raise ValueError("table: expected a non-empty list of rows with method, iteration and nmse")
    curves: dict[str, list] = {}
    for r in table:
        curves.setdefault(r["method"], []).append((r["iteration"], float(r["nmse"])))
    return {m: np.array(sorted(c)) for m, c in curves.items()}


__all__ = ["LITERAL_PARAMS", "convergence_curves", "convergence_rows", "held_out_samples"]
