"""Property tests (issue 24), part three: the rest of the table of public functions (:data:`TABLE2`).

The :class:`Row` machinery, the drawn batch and the settings are those of ``tests/test_properties_api.py``
(its :data:`TABLE` would not fit one module); ``tests/test_properties_coverage.py`` checks that every
function of a public ``__all__`` has a row in one of the two tables or a named exemption.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_properties_api import (
    BATCH,
    FEW,
    FIXED,
    NAN_Y,
    SC,
    A,
    B,
    M,
    N,
    Row,
    check_declared_output,
    check_refusal,
    finite,
    positions_of,
    sim,
)

from daun_lib import (
    Scenario,
    arrays,
    blockage,
    bounds,
    channel,
    continuous,
    localizers,
    metrics,
    multiuser,
    operators,
    peaks,
    refine,
)
from daun_lib.baselines import bearings, dpd, mm, srl, stansfield, vb
from daun_lib.channel import sionna, tables
from daun_lib.experiments import arguments, keys

hypothesis = pytest.importorskip("hypothesis")

MMP, VBP = mm.MMParams(iterations=5), vb.VBParams(iterations=5)
_Y = sim(FIXED).y
_PHI = arrays.steering(np.linspace(-1.0, 1.0, 24), N).T  # (N, G)
_BEARINGS = stansfield.beamscan_aoa(SC, _Y)
K = A.shape[2]


def _result_xz(out, a, n) -> bool:
    return finite(out.X, (n, A.shape[2], M)) and finite(out.Z, (n, B.shape[2], M))


TABLE2: list[Row] = [
    Row(
        "multiuser.conditional_cost",
        lambda b: {"A": A, "y": sim(b, 2).y, "Q": np.zeros((b["n"], M, N, 1), complex)},
        multiuser.conditional_cost,
        lambda out, a: (
            finite(out, (a["y"].shape[0], K)) and np.allclose(out, dpd.cost(A, a["y"]), rtol=1e-9)
        ),  # no found user: the DPD cost
        [("y", NAN_Y), ("Q", np.zeros((3, M, N, 1), complex)), ("Q", np.zeros((2, M, N + 1, 1), complex))]
        + [("A", A[:, :-1])],
    ),
    Row(
        "peaks.cell_distances / score_of",
        lambda b: {"cells": SC.grid, "score": np.abs(np.random.default_rng(b["seed"]).standard_normal((b["n"], K, M)))},
        lambda cells, score: (peaks.cell_distances(cells), peaks.score_of(score)),
        lambda out, a: (
            finite(out[0], (K, K))
            and np.allclose(np.diag(out[0]), 0.0)
            and finite(out[1], (a["score"].shape[0], K))
            and np.allclose(out[1] / (a["score"] ** 2).sum(axis=2), (out[1] / (a["score"] ** 2).sum(axis=2))[:, :1])
        ),
        [("cells", np.full((3, 2), np.nan)), ("cells", np.ones(3)), ("score", np.full((2, 9, 4), np.nan))]
        + [("score", np.ones(3))],
    ),
    Row(
        "multiuser.count.default_localizer",
        lambda b: {"scenario": Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16) if b["n"] == 2 else SC},
        multiuser.count.default_localizer,
        lambda out, a: isinstance(out, localizers.Localizer) and out.multi_user and out.readout == "ap-relax1",
        [("scenario", "paper"), ("scenario", None)],
    ),
    Row(
        "multiuser.residual_energy / locate_unknown",
        lambda b: {"scenario": SC, "y": sim(b, 2).y, "max_users": 3},
        lambda scenario, y, max_users: (
            multiuser.residual_energy(scenario, y, np.zeros((y.shape[0], 1, 2))),
            multiuser.locate_unknown(scenario, y, max_users, localizer="DPD-peaks-APM"),
        ),
        lambda out, a: (
            finite(out[0], (a["y"].shape[0], M))
            and (out[0] <= (np.abs(a["y"]) ** 2).sum(axis=-1) * (1 + 1e-12)).all()
            and ((out[1].n_users >= 1) & (out[1].n_users <= 3)).all()
            and np.isfinite(out[1].positions[out[1].mask]).all()
            and np.isnan(out[1].positions[~out[1].mask]).all()
        ),
        [("y", NAN_Y), ("max_users", 0), ("max_users", N + 1), ("max_users", 2.5), ("scenario", "paper")],
    ),
    Row(
        "mm.solve / solve_scenario",
        lambda b: {"scenario": SC, "y": sim(b).y, "params": MMP},
        lambda scenario, y, params: (mm.solve(A, B, y, params), mm.solve_scenario(scenario, y, params)),
        lambda out, a: (
            all(_result_xz(r, a, a["y"].shape[0]) for r in out)
            and np.allclose(out[0].X, out[1].X, atol=1e-3 * np.abs(out[1].X).max())
        ),
        [("y", NAN_Y), ("y", np.ones((2, M, N - 1), complex)), ("y", np.zeros((2, M, N), complex))]
        + [("params", "fast"), ("params", vb.VBParams())],
    ),
    Row(
        "vb.solve / solve_scenario",
        lambda b: {"scenario": SC, "y": sim(b).y, "params": VBP},
        lambda scenario, y, params: (vb.solve(A, B, y, params), vb.solve_scenario(scenario, y, params)),
        lambda out, a: all(
            _result_xz(r, a, a["y"].shape[0]) and (r.noise_var > 0).all() and np.isfinite(r.alpha).all() for r in out
        ),
        [("y", NAN_Y), ("y", np.ones((2, M + 1, N), complex)), ("y", np.zeros((2, M, N), complex))]
        + [("params", 3), ("params", mm.MMParams())],
    ),
    Row(
        "srl.l1_spectrum",
        lambda b: {"Phi": _PHI, "y": sim(b).y[:, 0], "beta": srl.noise_bound(N, 1.0, 0.9), "iterations": 20},
        srl.l1_spectrum,
        lambda out, a: finite(out, (a["y"].shape[0], _PHI.shape[1])),
        [("y", np.full((2, N), np.nan)), ("y", np.ones((2, N + 1))), ("beta", -1.0), ("beta", np.nan)]
        + [("Phi", np.ones(N)), ("iterations", 0), ("rho", -1.0), ("relax", 2.0), ("dtype", "int8")],
    ),
    Row(
        "stansfield.bearing_variance / sector_u / phase_k",
        lambda b: {"y": _Y, "theta": _BEARINGS[0], "power": _BEARINGS[1], "scenario": SC, "margin": 0.5 * b["n"]},
        lambda y, theta, power, scenario, margin: (
            stansfield.bearing_variance(y, theta, power),
            stansfield.sector_u(scenario, margin),
            stansfield.phase_k(scenario),
        ),
        lambda out, a: (
            finite(out[0], a["theta"].shape)
            and (out[0] > 0).all()
            and finite(out[1], (M, 2))
            and (out[1][:, 0] <= out[1][:, 1]).all()
            and finite(out[2], (N,))
        ),
        [("y", NAN_Y), ("theta", np.full((2, M), np.nan)), ("theta", np.zeros((3, M))), ("power", -np.ones((2, M)))]
        + [("power", np.ones((2, M + 1))), ("margin", -1.0), ("margin", np.nan), ("scenario", "paper")],
    ),
    Row(
        "continuous.los_oracle",
        lambda b: (lambda s: {"scenario": SC, "y": s.y, "los": s.los})(sim(b)),
        continuous.los_oracle,
        lambda out, a: positions_of(out, a["y"].shape[0]),
        [("y", NAN_Y), ("los", np.ones((2, M + 1), bool)), ("los", np.full((2, M), 0.5)), ("cost", "l2")],
    ),
    Row(
        "continuous.trust_radius / bounds.sine_information",
        lambda b: {"scenario": Scenario(n_antennas=8 * b["n"]), "snr_db": b["snr_db"]},
        lambda scenario, snr_db: (continuous.trust_radius(scenario), bounds.sine_information(scenario, snr_db)),
        lambda out, a: all(np.isfinite(v) and v > 0 for v in out),
        [("scenario", "paper"), ("snr_db", np.nan), ("snr_db", 1e4)],
    ),
    Row(
        "bounds.los_gradients",
        lambda b: {"scenario": SC, "positions": sim(b).positions},
        bounds.los_gradients,
        lambda out, a: np.isfinite(out).all() and out.shape[0] == a["positions"].shape[0],
        [("positions", np.ones((2, 3))), ("positions", np.full((2, 2), np.nan))]
        + [("positions", np.asarray(SC.bs_positions, float)[:2])],
    ),
    Row(
        "dpd.cost_eigen",
        lambda b: {"A": A, "Y": np.stack([sim({**b, "seed": b["seed"] + t}).y for t in range(2)], -1)},
        dpd.cost_eigen,
        lambda out, a: finite(out, (a["Y"].shape[0], A.shape[2])) and (out >= 0).all(),
        [("Y", np.full((2, M, N, 2), np.nan + 0j)), ("Y", np.ones((2, M, N - 1, 2))), ("Y", np.ones((2, M, N)))]
        + [("A", A[0])],
    ),
    Row(
        "blockage.subsets",
        lambda b: {"n_bs": 2 + b["n"], "min_bs": b["n"]},
        blockage.subsets,
        lambda out, a: (
            len(out) == len(set(out)) > 0
            and all(a["min_bs"] <= len(S) <= a["n_bs"] and set(S) <= set(range(a["n_bs"])) for S in out)
        ),
        [("n_bs", 0), ("n_bs", 2.5), ("n_bs", True), ("min_bs", 0), ("min_bs", 99), ("min_bs", "2")],
    ),
    Row(
        "localizers.check_scenario / check_y / check_params",
        lambda b: {"scenario": SC, "y": sim(b).y, "params": stansfield.StansfieldParams(margin=0.1 * b["n"])},
        lambda scenario, y, params: (
            localizers.check_scenario(scenario),
            localizers.check_y(scenario, y),
            localizers.check_params(params, stansfield.StansfieldParams),
        ),
        lambda out, a: out[0] is a["scenario"] and finite(out[1], a["y"].shape) and out[2] == a["params"],
        [("scenario", "paper"), ("y", NAN_Y), ("y", np.ones((2, M, N + 1), complex)), ("params", mm.MMParams())],
    ),
    Row(
        "arrays.steering / wrap_angle",
        lambda b: {"theta": np.linspace(-1.5, 1.5, 3 * b["n"]), "n_antennas": 4 * b["n"], "spacing": 0.5},
        lambda theta, n_antennas, spacing: (arrays.steering(theta, n_antennas, spacing), arrays.wrap_angle(9 * theta)),
        lambda out, a: (
            finite(out[0], (*a["theta"].shape, a["n_antennas"]))
            and np.allclose(np.linalg.norm(out[0], axis=-1), 1.0)
            and (np.abs(out[1]) <= np.pi).all()
        ),
        [("theta", np.array([np.nan])), ("n_antennas", 0), ("n_antennas", 2.5), ("spacing", -0.5)],
    ),
    Row(
        "channel.los_probability / draw_los",
        lambda b: {"scenario": SC, "positions": sim(b).positions, "seed": b["seed"]},
        lambda scenario, positions, seed, ut_height_m=1.5: (
            lambda los: (channel.los_probability(np.linalg.norm(positions, axis=-1) + 10.0, ut_height_m), los)
        )(channel.draw_los(scenario, positions, seed)),
        lambda out, a: (
            finite(out[0], (a["positions"].shape[0],))
            and ((out[0] >= 0) & (out[0] <= 1)).all()
            and out[1].shape == (a["positions"].shape[0], M)
            and out[1].dtype == bool
        ),
        [("positions", np.ones((2, 3))), ("positions", np.full((2, 2), np.nan)), ("seed", -1)]
        + [("ut_height_m", np.nan), ("ut_height_m", -1.0)],
    ),
    Row(
        "tables.mu_lgzsd / zod_offset_deg",
        lambda b: {
            "d2d": np.linspace(10.0, 200.0, 3 * b["n"]),
            "ut_height_m": 1.5,
            "los": np.arange(3 * b["n"]) % 2 == 0,
        },
        lambda d2d, ut_height_m, los, fc=28e9: (
            tables.mu_lgzsd(d2d, ut_height_m, los),
            tables.zod_offset_deg(fc, d2d, ut_height_m, los),
        ),
        lambda out, a: all(finite(v, a["d2d"].shape) for v in out),
        [("d2d", np.full(6, np.nan)), ("d2d", -np.ones(6)), ("ut_height_m", np.nan), ("fc", -1.0), ("fc", np.inf)],
    ),
    Row(
        "operators.available / is_operator / max_spectral_norm_sq",
        lambda b: {"scenario": SC, "D": A[: b["n"]]},
        lambda scenario, D: (
            operators.available(scenario),
            operators.is_operator(D),
            operators.max_spectral_norm_sq(D),
        ),
        lambda out, a: set(out[0]) <= set(operators.KINDS) and out[1] is False and np.isfinite(out[2]) and out[2] > 0,
        [("scenario", "paper"), ("D", np.full((2, N, 5), np.nan)), ("D", np.ones(3))],
    ),
    Row(
        "arguments.check_seed / check_n_jobs / check_snr_list / check_n_users",
        lambda b: {"seed": b["seed"], "n_jobs": b["n"], "snr_db": [b["snr_db"]] * b["n"], "n_users": b["n"]},
        lambda seed, n_jobs, snr_db, n_users: (
            arguments.check_seed(seed),
            arguments.check_n_jobs(n_jobs),
            arguments.check_snr_list(snr_db),
            arguments.check_n_users(n_users),
        ),
        lambda out, a: (
            out[0] == a["seed"] and out[1] == a["n_jobs"] and out[2] == a["snr_db"] and out[3] == a["n_users"]
        ),
        [("seed", -1), ("seed", 1.5), ("n_jobs", 0), ("n_jobs", "2"), ("snr_db", []), ("snr_db", [np.nan])]
        + [("n_users", 0), ("n_users", True)],
    ),
    Row(
        "keys.sweep_folder",
        lambda b: {"cache_dir": tempfile.gettempdir(), "method": "dpd", "params": {"n": b["n"], "seed": b["seed"]}},
        keys.sweep_folder,
        lambda out, a: (
            isinstance(out, Path) and out == keys.sweep_folder(a["cache_dir"], a["method"], dict(a["params"]))
        ),
        [("method", 3), ("method", None), ("params", {"a": object()}), ("params", [1]), ("cache_dir", 3.5)],
    ),
    Row(
        "metrics.mse_stderr / p_within_stderr",
        lambda b: {"errors": np.random.default_rng(b["seed"]).exponential(b["n"], 5 * b["n"]), "radius_m": b["n"]},
        lambda errors, radius_m: (metrics.mse_stderr(errors), metrics.p_within_stderr(errors, radius_m)),
        lambda out, a: (
            np.isfinite(out[0])
            and np.isclose(out[0], metrics.mse_stderr(2 * a["errors"]) / 4)  # err^2 scales by 4
            and np.isclose(out[1], np.sqrt((p := np.mean(a["errors"] < a["radius_m"])) * (1 - p) / a["errors"].size))
        ),
        [("errors", [1.0, -1.0]), ("errors", [np.nan]), ("errors", []), ("errors", np.ones((2, 2)))]
        + [("radius_m", 0.0), ("radius_m", np.nan)],
    ),
    Row(
        "metrics.fraction_all_within_stderr / fraction_within_per_user / fraction_within_per_user_stderr"
        " / mse_per_user_stderr / median_error_per_user",
        lambda b: {"errors": np.random.default_rng(b["seed"]).exponential(1.0, (b["n"], 2)), "radius_m": 1.0},
        lambda errors, radius_m: (
            metrics.fraction_all_within_stderr(errors, radius_m),
            metrics.fraction_within_per_user(errors, radius_m),
            metrics.fraction_within_per_user_stderr(errors, radius_m),
            metrics.mse_per_user_stderr(errors),
            metrics.median_error_per_user(errors),
        ),
        lambda out, a: (
            lambda e, n, all_in: (
                np.isclose(out[0], np.sqrt(all_in * (1 - all_in) / n))
                and all_in <= out[1] == np.mean(e < a["radius_m"])
                and all(np.isnan(v) if n == 1 else np.isfinite(v) and v >= 0 for v in out[2:4])  # NaN for one sample
                and e.min() <= out[4] <= e.max()
            )
        )(a["errors"], a["errors"].shape[0], np.mean(np.all(a["errors"] < a["radius_m"], axis=1))),
        [("errors", -np.ones((2, 2))), ("errors", np.full((2, 2), np.nan)), ("errors", np.ones(3))]
        + [("errors", np.ones((0, 2))), ("radius_m", -1.0), ("radius_m", np.inf), ("radius_m", True)],
    ),
    Row(
        "refine.argmax_rows / row_power / subgrid",
        lambda b: (lambda X: {"X": X, "scenario": SC, "power": refine.row_power(X), "k": refine.argmax_rows(X)})(
            (lambda g: g.standard_normal((b["n"], K, M)) + 1j * g.standard_normal((b["n"], K, M)))(
                np.random.default_rng(b["seed"])
            )[0 if b["n"] == 1 else slice(None)]  # (K, M) for one sample
            * 10.0 ** b["snr_db"]
        ),
        lambda X, scenario, power, k, normalize=True: (
            refine.argmax_rows(X),
            refine.row_power(X, normalize=normalize),
            refine.subgrid(power, scenario, k),
        ),
        lambda out, a: (
            lambda ref, n: (
                np.array_equal(out[0], ref.argmax(axis=1))
                and finite(out[1], ref.shape)
                and np.allclose(out[1] / out[1].max(1, keepdims=True), ref / ref.max(1, keepdims=True))
                and finite(out[2], (n, 2))
                and (np.abs(out[2] - SC.grid[a["k"]]) <= 0.5 * np.array(SC.grid_spacing) + 1e-9).all()
            )
        )(np.square(np.abs(a["X"].reshape(-1, K, M))).sum(-1), a["k"].shape[0]),
        [("X", np.full((2, 9, M), np.nan)), ("X", np.ones(5)), ("X", np.ones((2, 0, M))), ("normalize", 1)]
        + [("normalize", "yes"), ("power", -np.ones((2, K))), ("power", np.ones((2, K - 1)))]
        + [("k", np.array([K, 0])), ("k", np.array([0.5, 1.0])), ("k", np.array([0])), ("scenario", "paper")],
    ),
    Row(
        "bearings.to_bearings / stansfield / cone_intersection",
        lambda b: (
            lambda p, g: {
                "scenario": SC,
                "theta": SC.los_angles(p),
                "u": SC.los_sines(p),
                "bs": SC.bs_array,
                "bearing_var": g.uniform(0.5, 2.0, (b["n"], M)),
                "weights": g.uniform(0.5, 2.0, (b["n"], M)),
                "iterations": 9 + b["n"],  # cone_intersection: from the grid start to the truth
                "truth": p,
            }
        )(sim(b).positions, np.random.default_rng(b["seed"])),
        lambda scenario, theta, u, bs, bearing_var, weights, iterations, truth: (
            lambda phi: (
                phi,
                bearings.stansfield(bs, phi, iterations=0),
                bearings.stansfield(bs, phi, bearing_var, iterations=iterations),
                bearings.stansfield(bs, phi, 1e-310 * bearing_var, iterations=iterations),  # only ratios matter
                bearings.cone_intersection(scenario, u, weights, iterations=iterations),
            )
        )(bearings.to_bearings(scenario, theta)),
        lambda out, a: (
            finite(out[0], a["theta"].shape) and all(np.allclose(p, a["truth"], atol=1e-4) for p in out[1:])
        ),  # noise-free bearings meet at the truth
        [("scenario", "paper"), ("theta", np.full((2, M), np.nan)), ("theta", np.zeros((2, M + 1)))]
        + [("bs", np.ones((M, 3))), ("bs", np.ones((1, 2))), ("bearing_var", -np.ones((2, M)))]
        + [("bearing_var", np.zeros((2, M))), ("iterations", -1), ("iterations", 0.0), ("iterations", True)]
        + [("u", np.full((2, M), 1.5)), ("u", np.ones((2, M + 1))), ("weights", -np.ones((2, M)))],
    ),
    Row(
        "dpd.localize",
        lambda b: {"scenario": SC, "y": sim(b).y, "params": dpd.DPDParams(offgrid=b["n"] % 2 == 0)},
        dpd.localize,
        lambda out, a: (
            lambda peak: (
                positions_of(out, a["y"].shape[0])
                and (np.abs(out - peak) <= (max(SC.grid_spacing) if a["params"].offgrid else 0.0)).all()
            )
        )(SC.grid[dpd.cost(A, a["y"]).argmax(axis=1)]),
        [("y", NAN_Y), ("y", np.ones((2, M, N - 1), complex)), ("y", np.zeros((2, M, N), complex))]
        + [("params", "fast"), ("params", mm.MMParams()), ("scenario", "paper")],
    ),
    Row(
        "sionna.sionna_available / simulate_sionna",
        lambda b: (
            {"scenario": SC, "n": b["n"], "snr_db": b["snr_db"], "seed": b["seed"]}
            if sionna.sionna_available()
            else pytest.skip("sionna is not importable (the sionna extra is not installed)")
        ),
        lambda scenario, n, snr_db, seed: (
            sionna.sionna_available(),
            sionna.simulate_sionna(scenario, n, snr_db, seed),
        ),
        lambda out, a: out[0] is True and finite(out[1].y, (a["n"], M, N)) and positions_of(out[1].positions, a["n"]),
        [("n", 0), ("n", 1.5), ("snr_db", np.nan), ("seed", -1)],
    ),
]


def _torch_rows() -> list[Row]:
    """DAUN training and checkpoints, on a tiny scenario and configuration (skipped without torch)."""
    try:
        from daun_lib.daun import DAUN, TrainConfig, checkpoint_file, checkpoints, config, training
    except Exception:  # noqa: BLE001 - torch missing: the rows are skipped, not failed
        return []
    tiny = Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=16)
    folder = Path(tempfile.mkdtemp(prefix="daun_props_"))

    def cfg(seed: int) -> TrainConfig:
        return TrainConfig(n_layers=1, samples_per_layer=7, batch_size=7, n_val=7, max_epochs=1, seed=seed)

    def saved(b: dict) -> Path:
        path = folder / f"net_{b['n']}.pt"
        checkpoints.save(DAUN(b["n"], scenario=tiny), path)
        return path

    return [
        Row(
            "training.train",
            lambda b: {"config": cfg(b["seed"] % 1000), "scenario": tiny, "progress": False},
            training.train,
            lambda out, a: (
                isinstance(out, DAUN) and out.n_layers == 1 and np.isfinite(out.localize(sim_tiny(tiny))).all()
            ),
            [("config", "paper"), ("scenario", "paper"), ("resume", "yes"), ("dtype", "float16"), ("simulate", 3)]
            + [("progress", "no")],
        ),
        Row(
            "training.load_or_train",
            lambda b: {
                "config": cfg(b["seed"] % 1000),
                "checkpoint": folder / f"lot_{b['seed']}.pt",
                "progress": False,
            },
            training.load_or_train,
            lambda out, a: isinstance(out[0], DAUN) and isinstance(out[1], str) and Path(a["checkpoint"]).is_file(),
            [("config", {"n_layers": 1}), ("force", "yes"), ("checkpoint", 3.5)],
        ),
        Row(
            "checkpoints.save / load / load_weights / build",
            lambda b: {"path": saved(b), "scenario": tiny},
            lambda path, scenario: (
                checkpoints.load(path, scenario=scenario),
                checkpoints.load_weights(DAUN(1, scenario=scenario), path),
                checkpoints.build(DAUN, path, scenario=scenario),
            ),
            lambda out, a: all(isinstance(n, DAUN) and n.n_layers == out[0].n_layers for n in out),
            [("path", folder / "missing.pt"), ("path", folder), ("scenario", Scenario()), ("scenario", "paper")],
        ),
        Row(
            "checkpoints.load_pretrained / config.recipe",
            lambda b: {"variant": "default", "n_layers": b["n"]},
            lambda variant, n_layers, geometry="2d": (
                checkpoints.load_pretrained(variant, geometry=geometry),
                config.recipe(variant, n_layers=n_layers),
            ),
            lambda out, a: isinstance(out[0], DAUN) and out[1].n_layers == a["n_layers"],
            [("variant", "nope"), ("variant", 3), ("geometry", "4d"), ("n_layers", 0), ("n_layers", 1.5)],
        ),
        Row(
            "checkpoint_file.read_checkpoint / digest",
            lambda b: {"path": saved(b)},
            lambda path: (lambda d: (d, checkpoint_file.digest(d)))(checkpoint_file.read_checkpoint(path)),
            lambda out, a: isinstance(out[0], dict) and isinstance(out[1], str) and len(out[1]) >= 16,
            [("path", folder / "missing.pt"), ("path", Path(__file__)), ("path", 3.5)],
        ),
    ]


def sim_tiny(scenario: Scenario) -> np.ndarray:
    return channel.simulate(scenario, 2, 10.0, seed=0).y


TABLE2 += _torch_rows()
ROWS2 = {row.name: row for row in TABLE2}


@pytest.mark.parametrize("name", sorted(ROWS2))
@FEW
@hypothesis.given(batch=BATCH)
def test_more_public_functions_give_their_declared_output(name, batch):
    check_declared_output(ROWS2[name], batch)


@pytest.mark.parametrize("name, k", [(n, k) for n in sorted(ROWS2) for k in range(len(ROWS2[n].invalid))])
def test_more_public_functions_refuse_invalid_arguments_naming_them(name, k):
    check_refusal(ROWS2[name], k)
