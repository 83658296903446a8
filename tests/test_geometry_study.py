"""daun_lib.studies.geometry_study (notebook 06): input checks, the rows of both dictionary kinds, the figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from daun_lib import Scenario
from daun_lib.methods import REGISTRY  # noqa: E402
from daun_lib.studies import geometry_study  # noqa: E402


def test_sources_include_the_package():
    assert geometry_study.available_sources()[0] == "package"
    assert set(geometry_study.available_sources()) <= set(geometry_study.SOURCES)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"names": "DPD"}, "names"),
        ({"names": ["nope"]}, "names"),
        ({"names": []}, "names"),
        ({"sources": ["elsewhere"]}, "sources"),
        ({"sources": "package"}, "sources"),
        ({"scenario": Scenario()}, "scenario"),
        ({"n_trials": 0}, "n_trials"),
    ],
)
def test_geometry_rows_rejects_bad_input(kwargs, match):
    args = {"names": ["DPD"], "snr_db": [10.0], "n_trials": 2, "seed": 0, "sources": ["package"], "cache_dir": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        geometry_study.geometry_rows(
            args.pop("names"), args.pop("snr_db"), args.pop("n_trials"), args.pop("seed"), progress=False, **args
        )


def test_sionna_source_refused_when_not_installed(monkeypatch):
    monkeypatch.setattr(geometry_study, "available_sources", lambda: ("package",))
    with pytest.raises(ValueError, match="sionna"):
        geometry_study.geometry_rows(["DPD"], [10.0], 2, 0, sources=["sionna"], cache_dir=None, progress=False)


def test_methods_of_each_kind():
    with pytest.raises(ValueError, match="dictionaries"):
        geometry_study.geometry_methods(["DPD"], "3-D")
    with pytest.raises(ValueError, match="name"):
        geometry_study.with_2d_model(3)
    assert geometry_study.geometry_methods(["DPD"], "height-aware")["DPD"] is REGISTRY["DPD"]
    fn = geometry_study.geometry_methods(["DPD"], "2-D model")["DPD"]
    assert isinstance(fn.cache_key, str) and "DPD" in fn.cache_key
    # the 2-D model ignores the scenario it is given: same estimate as the registry entry on Scenario()
    from daun_lib import channel

    batch = channel.simulate(Scenario(geometry="3d"), 3, 20.0, seed=5)
    np.testing.assert_array_equal(fn(Scenario(geometry="3d"), batch.y), REGISTRY["DPD"](Scenario(), batch.y))


def test_rows_height_aware_beats_the_2d_model_on_3d_data(tmp_path):
    rows = geometry_study.geometry_rows(
        ["DPD-S", "Stansfield"], [20.0], 8, 3, sources=["package"], cache_dir=tmp_path, progress=False
    )
    assert [(r["dictionaries"], r["method"]) for r in rows] == [
        ("height-aware", "DPD-S"),
        ("height-aware", "Stansfield"),
        ("2-D model", "DPD-S"),
        ("2-D model", "Stansfield"),
    ]
    assert all(r["source"] == "package" and r["geometry"] == "3d" and r["n_trials"] == 8 for r in rows)
    by = {(r["dictionaries"], r["method"]): r for r in rows}
    assert by[("height-aware", "DPD-S")]["p_submeter"] == 1.0
    assert by[("2-D model", "DPD-S")]["median_error"] > 2.0
    # a rerun reads the cache and gives the same rows
    again = geometry_study.geometry_rows(
        ["DPD-S", "Stansfield"], [20.0], 8, 3, sources=["package"], cache_dir=tmp_path, progress=False
    )
    assert again == rows


def test_plot_geometry(tmp_path):
    table = [
        {"source": s, "dictionaries": k, "method": m, "snr_db": x, "mse": 0.1 + x + i, "p_submeter": 0.5 - 0.1 * i}
        for s in ("package", "sionna")
        for k in geometry_study.DICTIONARY_KINDS
        for i, m in enumerate(("DPD-S", "DPD", "DAUN-S", "Stansfield"))
        for x in (0.0, 10.0)
    ]
    package = [r for r in table if r["source"] == "package"]
    fig, axes = plt.subplots(1, 2)
    geometry_study.plot_geometry(axes, package, xticks=[0.0, 10.0])
    labels = [ln.get_label() for ln in axes[0].get_lines() if not ln.get_label().startswith("_")]
    # per family the best height-aware entry (DPD-S beats DPD), each with both dictionary kinds
    assert labels == ["DPD-S", "DPD-S, 2-D model", "DAUN-S", "DAUN-S, 2-D model", "Stansfield", "Stansfield, 2-D model"]
    assert axes[1].get_yscale() == "log"
    line = {ln.get_label(): ln for ln in axes[0].get_lines()}
    assert line["DPD-S"].get_color() == line["DPD-S, 2-D model"].get_color()  # one colour per family
    assert line["DPD-S"].get_linestyle() == line["DAUN-S"].get_linestyle()  # one line per readout
    assert line["DPD-S, 2-D model"].get_markerfacecolor() == "none"  # the 2-D model: open markers
    with pytest.raises(ValueError, match="axes"):
        geometry_study.plot_geometry(axes[:1], package, xticks=[0.0])
    with pytest.raises(ValueError, match="table"):
        geometry_study.plot_geometry(axes, [{"method": "DPD"}], xticks=[0.0])
    with pytest.raises(ValueError, match="one source"):
        geometry_study.plot_geometry(axes, table, xticks=[0.0])
    plt.close(fig)


def test_params_record_the_kinds():
    p = geometry_study.params(["DPD"], [0.0], 5, 1, sources=["package"])
    assert p["dictionary_kinds"] == list(geometry_study.DICTIONARY_KINDS)
    assert p["scenario"]["geometry"] == "3d" and p["sources"] == ["package"]
