"""Notebook 06: accuracy with real heights, the paper's 2-D model against height-aware dictionaries (issue 12).

The users and channels are 3-D (BSs at ``bs_height_m``, users at ``ut_height_m``; TR 38.901 UMa, Sec. 7.5, with
zenith angles), all links LoS, from two sources:

* ``"package"``: :func:`daun_lib.channel.simulate` on ``Scenario(geometry="3d")``;
* ``"sionna"``: :func:`daun_lib.channel.sionna.simulate_sionna` (Sionna's UMa; optional extra ``sionna``).

Each method runs with two kinds of dictionaries:

* ``"height-aware"``: the registry entry called with ``Scenario(geometry="3d")`` (dictionary A from the cone
  angle ``u = sin(theta) = (d . axis) / |d|`` of every grid point, :meth:`Scenario.los_sines`; DAUN with the
  shipped 3-D network ``daun.load_pretrained(geometry="3d")``);
* ``"2-D model"``: the registry entry called with ``Scenario()`` (the paper's model (1)-(2) with the 2-D azimuth,
  and the 2-D DAUN network), applied to the same 3-D data.

The Monte Carlo is :func:`daun_lib.studies.accuracy.accuracy_rows` (:func:`daun_lib.experiments.accuracy_sweep`, common
random numbers: every method and both dictionary kinds see the same users of a source).  The engine draws one
trial per ``simulate(scenario, 1, snr_db, seed)`` call, Sionna included.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import experiments
from ..scenario import Scenario
from . import accuracy

__all__ = [
    "DICTIONARY_KINDS",
    "METHODS",
    "SOURCES",
    "available_sources",
    "geometry_methods",
    "geometry_rows",
    "params",
    "plot_geometry",
    "with_2d_model",
]

METHODS: tuple[str, ...] = ("DPD-S", "DAUN-S", "DPD", "Stansfield")
"""Default methods of notebook 06 (names in :data:`daun_lib.methods.REGISTRY`)."""

DICTIONARY_KINDS: tuple[str, ...] = ("height-aware", "2-D model")
"""Values of the ``dictionaries`` column: A, B of ``Scenario(geometry="3d")`` or of ``Scenario()``."""

SOURCES: tuple[str, ...] = ("package", "sionna")
"""Values of the ``source`` column: the package's 3-D channel or Sionna's UMa."""


def available_sources() -> tuple[str, ...]:
    """The data sources that can run here: ``("package",)``, plus ``"sionna"`` when Sionna is installed."""
    from ..channel.sionna import sionna_available

    return SOURCES if sionna_available() else SOURCES[:1]


def _check_names(names: Any) -> list[str]:
    from ..methods import REGISTRY

    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names: expected a list of method names, got {names!r}")
    if not names:
        raise ValueError("names: expected at least one method name")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"names: unknown methods {unknown}; known: {sorted(REGISTRY)}")
    return list(names)


def with_2d_model(name: str) -> Callable:
    """``localize(scenario, y (n, M, N)) -> (n, 2)``: registry entry ``name`` with the dictionaries of ``Scenario()``.

    Whatever scenario the sweep passes (here the 3-D one that drew the data), the method uses the paper's 2-D
    dictionaries A, B (eqs. (1)-(2), azimuth only) and, for DAUN, the 2-D network.  Keyed for the cache by
    ``cache_key`` (the 2-D weights enter through the sweep's ``extra``, :func:`geometry_rows`).

    Parameters
    ----------
    name : str
        A name in :data:`daun_lib.methods.REGISTRY`.
    """
    from ..methods import REGISTRY

    if not isinstance(name, str):
        raise ValueError(f"name: expected a method name (str), got {name!r}")
    (name,) = _check_names([name])
    fn = REGISTRY[name]

    def localize(scenario: Any, y: np.ndarray) -> np.ndarray:
        # the same layout in the plane, without the heights: the paper's model of this scenario
        return fn(dataclasses.replace(scenario, geometry="2d", ut_height_range_m=None), y)

    # the sweep's own key holds the scenario; this names what the wrapper does with it
    localize.cache_key = f"{name} with the 2-D dictionaries of the sweep's scenario (geometry_study v2)"
    return localize


def geometry_methods(names: Sequence[str], dictionaries: str) -> dict[str, Callable]:
    """The methods of one dictionary kind: ``{name: localize(scenario, y (n, M, N)) -> (n, 2)}``.

    Parameters
    ----------
    names : list of str
        Names in :data:`daun_lib.methods.REGISTRY`.
    dictionaries : "height-aware" or "2-D model"
        ``"height-aware"``: the registry entry itself (run on ``Scenario(geometry="3d")`` it uses the 3-D
        dictionaries and network); ``"2-D model"``: :func:`with_2d_model`.
    """
    from ..methods import REGISTRY

    names = _check_names(names)
    if dictionaries not in DICTIONARY_KINDS:
        raise ValueError(f"dictionaries: expected one of {DICTIONARY_KINDS}, got {dictionaries!r}")
    if dictionaries == "height-aware":
        return {n: REGISTRY[n] for n in names}
    return {n: with_2d_model(n) for n in names}


def _simulator(source: str) -> Callable | None:
    if source == "package":
        return None  # the engine's default, daun_lib.channel.simulate
    from ..channel.sionna import simulate_sionna

    return simulate_sionna


def geometry_rows(
    names: Sequence[str],
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    *,
    sources: Sequence[str],
    cache_dir: str | os.PathLike | None,
    scenario: Scenario | None = None,
    **sweep_kwargs: Any,
) -> list[dict]:
    """Rows of ``results/fig_geometry.csv``: every (source, dictionary kind, method, SNR point).

    For each source, one :func:`daun_lib.studies.accuracy.accuracy_rows` sweep (all links LoS) that runs every method
    with both dictionary kinds on the same users (each user and channel drawn once per source).  Each row has the keys of :data:`daun_lib.experiments.ROW_FIELDS` and
    :data:`daun_lib.studies.accuracy.ROW_EXTRA_FIELDS` plus ``source``, ``dictionaries`` and ``geometry`` (of the data:
    always ``"3d"``).

    Parameters
    ----------
    names : list of str
        Names in :data:`daun_lib.methods.REGISTRY`.
    snr_db : list of float
        Per-antenna SNR points (dB).
    n_trials : int >= 1
        Users per SNR point.
    seed : int >= 0
        Master seed of the sweeps.
    sources : list of str
        Subset of :data:`SOURCES`; ``"sionna"`` needs the extra ``sionna`` (:func:`available_sources`).
    cache_dir : path or None
        Cache of the Monte Carlo chunks (:func:`daun_lib.experiments.accuracy_sweep`).
    scenario : Scenario, optional
        The 3-D scenario of the data (default ``Scenario(geometry="3d")``); its ``los_model`` is set to "always".
    **sweep_kwargs
        Further keyword arguments of :func:`~daun_lib.experiments.accuracy_sweep` (``n_jobs``, ``force``,
        ``progress``, ``extra`` ...).  The hashes of both DAUN networks are added to ``extra``.
    """

    from .. import daun

    names = _check_names(names)
    if isinstance(sources, str) or not isinstance(sources, Sequence) or not sources:
        raise ValueError(f"sources: expected a non-empty list from {SOURCES}, got {sources!r}")
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ValueError(f"sources: unknown sources {bad}; known: {SOURCES}")
    if scenario is None:
        scenario = Scenario(geometry="3d")
    if not isinstance(scenario, Scenario) or scenario.geometry != "3d":
        raise ValueError(f"scenario: expected a Scenario with geometry='3d', got {scenario!r}")
    scenario = dataclasses.replace(scenario, los_model="always")
    if "sionna" in sources and "sionna" not in available_sources():
        raise ValueError("sources: 'sionna' needs Sionna (pip install 'daun_lib[sionna]'); see available_sources()")
    extra = dict(sweep_kwargs.pop("extra", None) or {})
    extra["weights"] = {
        "2d": accuracy.weights_hash(daun.load_pretrained()),
        "3d": accuracy.weights_hash(daun.load_pretrained(geometry="3d")),
    }
    if "sionna" in sources:  # library code is keyed by name: the data source's version goes in the key
        import sionna

        extra["sionna"] = getattr(sionna, "__version__", "unknown")
    methods: dict[str, Callable] = {}
    labels: dict[str, tuple[str, str]] = {}
    for kind in DICTIONARY_KINDS:  # one sweep per source: each user drawn once for both kinds
        for n, fn in geometry_methods(names, kind).items():
            methods[f"{n} ({kind})"] = fn
            labels[f"{n} ({kind})"] = (n, kind)
    rows: list[dict] = []
    for source in sources:
        out = accuracy.accuracy_rows(
            methods,
            scenario,
            snr_db,
            n_trials,
            seed,
            los_label="always",
            cache_dir=cache_dir,
            simulate=_simulator(source),
            extra=extra,
            **sweep_kwargs,
        )
        for r in out:
            name, kind = labels[r["method"]]
            rows.append({"source": source, "dictionaries": kind, "geometry": "3d", **r, "method": name})
    return rows


def plot_geometry(
    axes: Sequence[Any],
    table: Sequence[Mapping[str, Any]],
    xticks: Sequence[float],
    methods: Sequence[str] | None = None,
) -> None:
    """Two panels of one data source against the SNR: P(error < 1 m) (``axes[0]``) and the MSE (``axes[1]``, log).

    Style of :func:`daun_lib.studies.plotting.style_of`: colour per family, line style and marker per readout;
    the height-aware dictionaries with filled markers, the paper's 2-D model as a variant (open markers, label
    ``"<method>, 2-D model"``).  Error bars +-2 standard errors.

    Parameters
    ----------
    axes : two matplotlib Axes
    table : list of dict
        Rows of :func:`geometry_rows` of **one** ``source`` (read back with :func:`daun_lib.experiments.read_csv`).
    xticks : list of float
        The SNR points (dB) to mark.
    methods : list of str, optional
        The methods to draw, each with both dictionary kinds.  Default: per family the entry with the highest
        P(error < 1 m) averaged over the height-aware rows (:func:`daun_lib.studies.plotting.best_per_family`),
        at most one per family, hence at most six curves for three families.
    """
    from .plotting import best_per_family, curve, style_of

    if len(axes) != 2 or not all(hasattr(ax, "errorbar") for ax in axes):
        raise ValueError(f"axes: expected two matplotlib Axes, got {axes!r}")
    if not table:
        raise ValueError("table: expected at least one row")
    missing = {"source", "dictionaries", "method", "snr_db", "mse", "p_submeter"} - set(table[0])
    if missing:
        raise ValueError(f"table: rows lack {sorted(missing)}")
    sources = sorted({r["source"] for r in table})
    if len(sources) != 1:
        raise ValueError(f"table: expected the rows of one source, got {sources} (one pair of panels per source)")
    if methods is None:
        methods = best_per_family([r for r in table if r["dictionaries"] == "height-aware"], "p_submeter")
    groups: dict[tuple[str, str], list] = {}
    for r in table:
        groups.setdefault((r["method"], r["dictionaries"]), []).append(r)
    for m in methods:
        for kind in DICTIONARY_KINDS:
            rs = sorted(groups.get((m, kind), []), key=lambda r: r["snr_db"])
            if not rs:
                continue
            st = style_of(m, variant=None if kind == "height-aware" else kind)
            label = m if kind == "height-aware" else f"{m}, {kind}"
            for ax, key, logy in ((axes[0], "p_submeter", False), (axes[1], "mse", True)):
                curve(
                    ax,
                    [r["snr_db"] for r in rs],
                    [r[key] for r in rs],
                    [r.get(key + "_stderr", np.nan) for r in rs],
                    st,
                    label,
                    logy,
                )
    for ax in axes:
        ax.set_xlabel("SNR (dB)")
        ax.set_xticks(list(xticks))
    axes[0].set_ylabel("P(error < 1 m)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel(r"MSE (m$^2$)")
    axes[1].set_yscale("log")


def params(
    names: Sequence[str],
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    scenario: Scenario | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The sidecar parameters of ``results/fig_geometry.csv``: :func:`daun_lib.studies.accuracy.accuracy_params` plus ``more``.

    ``scenario`` is the one the rows were made with (default ``Scenario(geometry="3d")``, as in
    :func:`geometry_rows`).
    """
    names = _check_names(names)
    if scenario is None:
        scenario = Scenario(geometry="3d")
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario: expected a Scenario, got {type(scenario).__name__}")
    return accuracy.accuracy_params(
        {n: None for n in names},
        scenario,
        list(snr_db),
        n_trials,
        seed,
        dictionary_kinds=list(DICTIONARY_KINDS),
        experiments_code=experiments.source_digest(),
        **more,
    )
