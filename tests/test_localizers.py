"""Localisers = estimators x readouts: the registry's shape, readout registration, errors."""

import numpy as np
import pytest

from daun_lib import Scenario, blockage, channel, methods, readouts
from daun_lib.baselines import bearings, dpd, mm, srl, stansfield, vb
from daun_lib.localizers import Localizer, MapLocalizer
from daun_lib.readouts import READOUTS, GridReadout, register_readout

SMALL = Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=12)

EXPECTED = {
    "DAUN": (methods.DAUNLocalizer, "argmax"),
    "DAUN-R": (methods.DAUNLocalizer, "alg1"),
    "DAUN-S": (methods.DAUNLocalizer, "subgrid"),
    "P-ADMM": (methods.PADMMLocalizer, "argmax"),
    "DPD": (dpd.DPDLocalizer, "argmax"),
    "DPD-S": (dpd.DPDLocalizer, "subgrid"),
    "Stansfield": (stansfield.StansfieldLocalizer, None),
    "SRL": (srl.SRLLocalizer, None),
    "VB": (vb.VBLocalizer, "argmax"),
    "MM": (mm.MMLocalizer, "argmax"),
    "DAUN-ML": (methods.DAUNLocalizer, "ml"),
    "DAUN-MLB": (methods.DAUNLocalizer, "ml-bs"),
    "DPD-ML": (dpd.DPDLocalizer, "ml"),
    "DPD-MLB": (dpd.DPDLocalizer, "ml-bs"),
    "DPD-MMSE": (methods.PosteriorMeanLocalizer, None),
    "DPD-Disk": (methods.DiskLocalizer, None),
    "Subset-MAP": (blockage.SubsetMAPLocalizer, None),
    "Mixture-MMSE": (blockage.MixtureMeanLocalizer, None),
}
#: Entries that are neither map estimators nor bearing estimators.
WHOLE = (
    blockage.SubsetMAPLocalizer,
    blockage.MixtureMeanLocalizer,
    methods.PosteriorMeanLocalizer,
    methods.DiskLocalizer,
)


@pytest.fixture
def toy_readout():
    """Register a readout for one test and remove it afterwards."""
    added = []

    def add(name, fn):
        register_readout(name, fn)
        added.append(name)
        return fn

    yield add
    for name in added:
        READOUTS.pop(name, None)


def test_every_registry_entry_is_a_localizer_with_its_documented_readout():
    assert set(methods.REGISTRY) == set(EXPECTED)
    for name, (cls, readout) in EXPECTED.items():
        entry = methods.REGISTRY[name]
        assert isinstance(entry, Localizer) and type(entry) is cls, name
        if readout is None:
            assert isinstance(entry, (bearings.BearingLocalizer, *WHOLE)), name
        else:
            assert isinstance(entry, MapLocalizer) and entry.readout == readout, name
            assert entry.readout_fn is READOUTS[readout]
        assert f"``{type(entry).__name__}(" in methods.__doc__, name


def test_former_function_names_are_the_registry_entries():
    assert methods.padmm is methods.REGISTRY["P-ADMM"]
    assert methods.dpd_subgrid is methods.REGISTRY["DPD-S"]


def test_module_localize_aliases_equal_their_localizers():
    y = channel.simulate(SMALL, 3, 10.0, seed=0).y
    for mod, cls in (
        (dpd, dpd.DPDLocalizer),
        (stansfield, stansfield.StansfieldLocalizer),
        (srl, srl.SRLLocalizer),
        (vb, vb.VBLocalizer),
        (mm, mm.MMLocalizer),
    ):
        np.testing.assert_array_equal(mod.localize(SMALL, y), cls()(SMALL, y))


def test_bad_readout_name_names_readout():
    for cls in (dpd.DPDLocalizer, vb.VBLocalizer, mm.MMLocalizer, methods.PADMMLocalizer, methods.DAUNLocalizer):
        with pytest.raises(ValueError, match="readout"):
            cls(readout="nearest")
        with pytest.raises(ValueError, match="readout"):
            cls(readout=3)
    with pytest.raises(ValueError, match="readout"):
        readouts.get_readout("nope")


def test_alg1_on_a_score_map_is_a_clear_error():
    y = channel.simulate(SMALL, 2, 10.0, seed=1).y
    with pytest.raises(ValueError, match="readout: 'alg1'"):
        dpd.DPDLocalizer(readout="alg1")(SMALL, y)


def test_bad_params_name_params():
    with pytest.raises(ValueError, match="params"):
        dpd.DPDLocalizer(params=vb.VBParams())
    with pytest.raises(ValueError, match="params"):
        stansfield.StansfieldLocalizer(params="crb")


def test_register_readout_checks_its_arguments(toy_readout):
    with pytest.raises(ValueError, match="name"):
        register_readout("argmax", READOUTS["argmax"])  # taken
    with pytest.raises(ValueError, match="name"):
        register_readout("", READOUTS["argmax"])
    with pytest.raises(ValueError, match="fn"):
        register_readout("toy-bad", "not callable")
    assert "toy-bad" not in READOUTS


def test_a_new_readout_is_one_function_and_one_registration(toy_readout):
    """A toy readout (the cell of the row with the largest single entry) through two map estimators."""
    seen = []

    def strongest_entry(score, scenario, y):
        seen.append((score.shape, y.shape))
        X = np.abs(score) if score.ndim == 3 else score[..., None]
        return readouts.cell_centres(scenario)[X.max(axis=2).argmax(axis=1)]

    toy_readout("toy-strongest", strongest_entry)
    y = channel.simulate(SMALL, 4, 20.0, seed=2).y
    # a score-map estimator: the toy readout is the plain argmax there
    np.testing.assert_array_equal(dpd.DPDLocalizer(readout="toy-strongest")(SMALL, y), dpd.localize(SMALL, y))
    # an X estimator, in a user's own REGISTRY-style dict
    mine = {**methods.REGISTRY, "MM-T": mm.MMLocalizer(readout="toy-strongest")}
    out = methods.localize("DPD", SMALL, y), mine["MM-T"](SMALL, y)
    assert out[1].shape == (4, 2)
    X = mm.solve_scenario(SMALL, y).X
    np.testing.assert_array_equal(out[1], SMALL.grid[np.abs(X).max(axis=2).argmax(axis=1)])
    assert seen == [
        ((4, SMALL.n_grid), (4, SMALL.n_bs, SMALL.n_antennas)),
        ((4, SMALL.n_grid, SMALL.n_bs), (4, SMALL.n_bs, SMALL.n_antennas)),
    ]


def test_a_grid_readout_is_an_index_function(toy_readout):
    toy_readout("toy-first", GridReadout(lambda score: np.zeros(score.shape[0], dtype=int)))
    y = channel.simulate(SMALL, 3, 10.0, seed=3).y
    out = vb.VBLocalizer(readout="toy-first")(SMALL, y)
    np.testing.assert_array_equal(out, np.repeat(SMALL.grid[:1], 3, axis=0))


def test_readouts_check_the_map_against_the_grid():
    with pytest.raises(ValueError, match="score"):
        READOUTS["argmax"](np.ones((2, SMALL.n_grid + 1)), SMALL, None)
    with pytest.raises(ValueError, match="score"):
        READOUTS["subgrid"](np.ones((2, 5, 4)), SMALL, None)
    with pytest.raises(ValueError, match="scenario"):
        READOUTS["argmax"](np.ones((2, SMALL.n_grid)), "paper", None)


def test_readouts_agree_on_a_score_map_and_on_x():
    """argmax and subgrid read X through its row powers: a one-column X gives the score's answer."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, SMALL.n_grid, 1)) + 1j * rng.standard_normal((5, SMALL.n_grid, 1))
    P = np.abs(X[..., 0]) ** 2
    for name in ("argmax", "subgrid"):
        np.testing.assert_allclose(READOUTS[name](X, SMALL, None), READOUTS[name](P, SMALL, None), atol=1e-12)


def test_validation_runs_once_before_the_estimator():
    y = channel.simulate(SMALL, 2, 10.0, seed=4).y
    for name in ("DPD", "VB", "Stansfield", "SRL", "P-ADMM"):
        with pytest.raises(ValueError, match="scenario"):
            methods.REGISTRY[name]("paper", y)
        with pytest.raises(ValueError, match="y"):
            methods.REGISTRY[name](SMALL, y[:, :2])
        with pytest.raises(ValueError, match="all zero"):
            methods.REGISTRY[name](SMALL, np.zeros_like(y))


def test_localizers_are_frozen_and_compare_by_configuration():
    a, b = dpd.DPDLocalizer(readout="subgrid"), dpd.DPDLocalizer(readout="subgrid")
    assert a == b and a != dpd.DPDLocalizer()
    with pytest.raises(AttributeError):
        a.readout = "argmax"


def test_the_methods_docstring_example_runs(toy_readout):
    doc = methods.__doc__
    start = doc.index("    from daun_lib import methods, readouts")
    stop = doc.index('    positions = mine["VB-S"](scenario, y)') + len('    positions = mine["VB-S"](scenario, y)')
    import textwrap

    y = channel.simulate(SMALL, 3, 10.0, seed=5).y
    ns = {"scenario": SMALL, "y": y}
    try:
        exec(textwrap.dedent(doc[start:stop]), ns)  # noqa: S102 - the documented example
    finally:
        READOUTS.pop("strongest-bs", None)
    assert ns["positions"].shape == (3, 2)
    assert ns["mine"]["DAUN-B"].readout == "strongest-bs"
    np.testing.assert_array_equal(ns["positions"], vb.VBLocalizer(readout="subgrid")(SMALL, y))
