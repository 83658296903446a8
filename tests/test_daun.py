"""DAUN: equality with P-ADMM, API, checkpoints, resumable training, shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daun_lib import Scenario, admm, channel, daun
from daun_lib.daun import DAUN, TrainConfig, load_pretrained, train
from daun_lib.metrics import p_within

TINY = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32)
TINY_CFG = TrainConfig(n_layers=2, samples_per_layer=42, batch_size=7, n_val=28, max_epochs=3, seed=5)


@pytest.fixture(scope="module")
def paper_batch():
    return channel.simulate(Scenario(), 6, np.array([-5.0, 0.0, 5.0, 10.0, 15.0, 20.0]), seed=11)


@pytest.fixture(scope="module")
def tiny_batch():
    return channel.simulate(TINY, 20, 15.0, seed=3)


def _params(net):
    return {k: v.copy() for k, v in net.parameters_dict().items()}


# ----------------------------------------------------------------- the network
def test_equals_admm_solve_float64(paper_batch):
    sc = Scenario()
    A, B = sc.dictionaries()
    p = admm.default_params(A, B)
    net = DAUN(6, 4, scenario=sc, dtype="float64")
    ref = admm.solve(A, B, paper_batch.y, **p.as_kwargs(), iterations=6, dtype="float64")
    out = net.solve(paper_batch.y)
    assert np.abs(out.X - ref.X).max() < 1e-10
    assert np.abs(out.Z - ref.Z).max() < 1e-10
    np.testing.assert_allclose(out.nmse, ref.nmse, rtol=1e-10, atol=1e-14)


def test_equals_admm_solve_other_setting(tiny_batch):
    A, B = TINY.dictionaries()
    kw = dict(rho=2.5, tau1=0.01, tau2=0.05, w=(0.5, 1.0, 2.0, 0.7))
    net = DAUN(4, scenario=TINY, dtype="float64").set_parameters(**kw)
    ref = admm.solve(A, B, tiny_batch.y, **kw, iterations=4, dtype="float64")
    out = net.solve(tiny_batch.y, batch_size=7)  # chunked: same result
    assert np.abs(out.X - ref.X).max() < 1e-10
    assert np.abs(out.Z - ref.Z).max() < 1e-10
    np.testing.assert_allclose(out.nmse, ref.nmse, rtol=1e-9)


def test_solve_equals_autograd_forward(tiny_batch):
    """solve (in-place inference layers) equals forward (the autograd layers used in training)."""
    rng = np.random.default_rng(4)
    net = DAUN(5, scenario=TINY, dtype="float64").set_parameters(
        rho=rng.uniform(0.5, 2.0, 5),
        tau1=rng.uniform(0.005, 0.02, 5),
        tau2=rng.uniform(0.02, 0.08, 5),
        w=(0.5, 1.0, 2.0, 0.7),
    )
    X, Z = net(tiny_batch.y)
    out = net.solve(tiny_batch.y)
    assert np.count_nonzero(out.X) > 0
    assert np.abs(out.X - X.detach().numpy()).max() < 1e-12 * np.abs(out.X).max()
    assert np.abs(out.Z - Z.detach().numpy()).max() < 1e-12 * np.abs(out.Z).max()


def test_infer_rejects_unprepared_input(tiny_batch):
    net = DAUN(2, scenario=TINY)
    with pytest.raises(ValueError, match="yt"):
        net.infer(tiny_batch.y)  # numpy, not a prepared tensor
    yt, _ = net.prepare(tiny_batch.y)
    with pytest.raises(ValueError, match="yt"):
        net.infer(yt.to(torch.complex128))  # wrong precision for this network
    with torch.inference_mode():
        assert net.infer(yt).x.shape == (TINY.n_bs, TINY.n_grid, tiny_batch.y.shape[0])


def test_parameter_count_and_positivity():
    net = DAUN(7, 4)
    assert sum(p.numel() for p in net.parameters()) == 3 * 7 + 4
    net.append_layer()
    assert net.n_layers == 8
    assert sum(p.numel() for p in net.parameters()) == 3 * 8 + 4
    for v in net.parameters_dict().values():
        assert (v > 0).all()
    assert DAUN(3, scenario=TINY, w_min=0.5).w.min() > 0.5


def test_solve_localize_shapes_numpy_and_tensor(tiny_batch):
    net = DAUN(3, scenario=TINY)
    out = net.solve(tiny_batch.y)
    assert out.X.shape == (20, 64, 4) and out.Z.shape == (20, 32, 4) and out.nmse.shape == (3,)
    assert isinstance(out.X, np.ndarray) and out.X.dtype == np.complex64
    t = net.solve(torch.as_tensor(tiny_batch.y))
    assert isinstance(t.X, torch.Tensor) and t.X.shape == (20, 64, 4)
    single = net.solve(tiny_batch.y[0])
    assert single.X.shape == (1, 64, 4)
    for refine in (True, False):
        pos = net.localize(tiny_batch.y, refine=refine)
        assert pos.shape == (20, 2) and np.isfinite(pos).all()
    # plain DAUN is the argmax of its X
    k = np.argmax(np.linalg.norm(out.X, axis=2), axis=1)
    np.testing.assert_array_equal(net.localize(tiny_batch.y, refine=False), TINY.grid[k])


def test_from_dictionaries(tiny_batch):
    A, B = TINY.dictionaries()
    net = DAUN.from_dictionaries(A, B, 2, grid=TINY.grid)
    assert net.localize(tiny_batch.y).shape == (20, 2)
    no_grid = DAUN.from_dictionaries(A, B, 2)
    assert no_grid.solve(tiny_batch.y).X.shape == (20, 64, 4)
    with pytest.raises(ValueError, match="grid"):
        no_grid.localize(tiny_batch.y)


def test_one_constructor(tiny_batch):
    """DAUN(n, scenario=...), DAUN(n, A=, B=, grid=), from_scenario and from_dictionaries build the same network."""
    A, B = TINY.dictionaries()
    nets = [
        DAUN(2, scenario=TINY),
        DAUN.from_scenario(TINY, 2),
        DAUN(2, A=A, B=B, grid=TINY.grid),
        DAUN.from_dictionaries(A, B, 2, grid=TINY.grid),
    ]
    ref = nets[0].solve(tiny_batch.y)
    for net in nets[1:]:
        for k, v in net.parameters_dict().items():
            np.testing.assert_array_equal(v, nets[0].parameters_dict()[k])
        np.testing.assert_array_equal(net.solve(tiny_batch.y).X, ref.X)
        np.testing.assert_array_equal(net.localize(tiny_batch.y), nets[0].localize(tiny_batch.y))
    assert nets[1].scenario == TINY and nets[2].scenario is None
    with pytest.raises(ValueError, match="A, B"):
        DAUN(2, A=A)
    with pytest.raises(ValueError, match="scenario"):
        DAUN(2, scenario=TINY, A=A, B=B)
    with pytest.raises(ValueError, match="grid"):
        DAUN(2, scenario=TINY, grid=TINY.grid)
    with pytest.raises(ValueError, match="scenario"):
        DAUN.from_scenario("TINY", 2)
    with pytest.raises(ValueError, match="init"):
        DAUN(2, scenario=TINY, init=(1.0, 1.0, 1.0))


def test_package_exports_every_public_name():
    import importlib

    for name in daun.__all__:
        assert getattr(daun, name) is not None
    for sub in ("network", "losses", "config", "training", "checkpoint_file", "checkpoints", "plotting"):
        mod = importlib.import_module(f"daun_lib.daun.{sub}")
        for name in getattr(mod, "__all__", []):
            assert name in daun.__all__ or sub == "checkpoints", (sub, name)
    assert (daun.WEIGHTS_DIR / daun.VARIANTS["paper"]).is_file()


def test_bad_inputs(tiny_batch):
    net = DAUN(2, scenario=TINY)
    y = tiny_batch.y.copy()
    with pytest.raises(ValueError, match="y"):
        net.solve(y[:, :3])
    with pytest.raises(ValueError, match="y"):
        net.localize(y[..., :-1])
    with pytest.raises(ValueError, match="y"):
        net.localize(np.zeros((2, 2, 4, 16)))
    y[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.solve(y)
    y[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        net.localize(y)
    with pytest.raises(ValueError, match="refine"):
        net.localize(tiny_batch.y, refine="yes")
    with pytest.raises(ValueError, match="n_bs"):
        DAUN(2, 3, scenario=TINY)
    with pytest.raises(ValueError, match="n_layers"):
        DAUN(0, scenario=TINY)
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="nope")
    with pytest.raises(ValueError, match="snr_range_db"):
        TrainConfig(snr_range_db=(10, -10))
    with pytest.raises(ValueError, match="variant"):
        load_pretrained("nope")


# ----------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tmp_path, tiny_batch):
    net = DAUN(3, scenario=TINY).set_parameters(rho=[1.0, 2.0, 3.0], tau1=0.01, tau2=0.05, w=[0.3, 0.4, 0.5, 0.6])
    net.history = [{"layer": 1, "train": [1.0, 0.5], "val": [1.2, 0.6]}]
    path = net.save(tmp_path / "n.pt", notes="hello")
    back = DAUN.load(path)
    for k, v in net.parameters_dict().items():
        np.testing.assert_allclose(back.parameters_dict()[k], v, rtol=1e-6)
    assert back.history == net.history and back.meta["notes"] == "hello"
    assert back.scenario == TINY
    np.testing.assert_allclose(back.solve(tiny_batch.y).X, net.solve(tiny_batch.y).X)
    obj = torch.load(path, weights_only=True)
    assert obj["meta"]["scenario"]["n_antennas"] == 16 and obj["meta"]["library_version"]
    # load into an existing network (layer count adapts)
    other = DAUN(1, scenario=TINY).load_weights(path)
    assert other.n_layers == 3


def test_foreign_checkpoint_names_the_field(tmp_path):
    path = DAUN(2, scenario=TINY).save(tmp_path / "tiny.pt")
    with pytest.raises(ValueError, match="n_antennas"):
        DAUN.load(path, scenario=Scenario(n_antennas=20, grid_shape=(8, 8), n_angles=32))
    with pytest.raises(ValueError, match="n_angles"):
        DAUN(2, scenario=Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=40)).load_weights(path)
    with pytest.raises(ValueError, match="grid"):
        DAUN.load(path, scenario=Scenario(n_antennas=16, grid_shape=(6, 8), n_angles=32))
    with pytest.raises(ValueError, match="area_size"):
        DAUN.load(path, scenario=Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, area_size=30.0))
    # the LoS model only changes the channel: allowed
    assert DAUN.load(path, scenario=Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, los_model="3gpp"))


def test_corrupt_and_foreign_files(tmp_path):
    good = DAUN(2, scenario=TINY).save(tmp_path / "good.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    torch.save({"weights": torch.ones(3)}, tmp_path / "other.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")  # arbitrary objects are not loaded
    for name in ("trunc.pt", "junk.pt", "other.pt", "pickled.pt", "missing.pt"):
        with pytest.raises(ValueError, match="checkpoint"):
            DAUN.load(tmp_path / name)


# -------------------------------------------------------------------- training
def test_training_reduces_validation_loss():
    net = train(TINY_CFG, TINY, progress=False)
    assert net.n_layers == 2 and len(net.history) == 2
    for h in net.history:
        assert h["best_val"] < h["val"][0]  # every stage improved on its starting point
        assert len(h["train"]) == h["epochs"] >= 1
    for v in net.parameters_dict().values():
        assert np.isfinite(v).all() and (v > 0).all()


def test_training_other_losses_and_registry():
    calls = []

    def my_loss(net, batch, config):
        calls.append(batch.yt.shape[-1])
        return daun.LOSSES["ce"](net, batch, config)

    daun.register_loss("my_ce", my_loss)
    try:
        cfg = TrainConfig(n_layers=1, samples_per_layer=14, n_val=14, max_epochs=1, loss="my_ce", seed=1)
        train(cfg, TINY, progress=False)
        assert calls and max(calls) <= 14
        cfg = TrainConfig(n_layers=1, samples_per_layer=14, n_val=14, max_epochs=1, loss="softargmax", seed=1)
        assert train(cfg, TINY, progress=False).n_layers == 1
    finally:
        daun.LOSSES.pop("my_ce", None)


def test_same_seed_same_network():
    cfg = TrainConfig(n_layers=1, samples_per_layer=14, n_val=14, max_epochs=2, seed=9)
    a, b = train(cfg, TINY, progress=False), train(cfg, TINY, progress=False)
    for k, v in a.parameters_dict().items():
        np.testing.assert_array_equal(v, b.parameters_dict()[k])


def test_resume_after_interruption(tmp_path, monkeypatch):
    ck = tmp_path / "ck.pt"
    cfg3 = TrainConfig(n_layers=3, samples_per_layer=28, batch_size=7, n_val=14, max_epochs=2, seed=2)

    # interrupted while drawing the data of layer 3: layers 1 and 2 are on disk
    def failing(scenario, n, snr_db, seed):
        if n == cfg3.samples_per_layer and failing.draws >= 2:
            raise KeyboardInterrupt
        failing.draws += n == cfg3.samples_per_layer
        return channel.simulate(scenario, n, snr_db, seed)

    failing.draws = 0
    with pytest.raises(KeyboardInterrupt):
        train(cfg3, TINY, checkpoint=ck, progress=False, simulate=failing)
    saved = DAUN.load(ck)
    assert saved.n_layers == 2 and len(saved.history) == 2

    stages = []
    real_stage = daun.training._train_stage

    def spy(net, loss_fn, config, train_data, val_data, layer, bar):
        stages.append((layer, net.parameters_dict()))
        return real_stage(net, loss_fn, config, train_data, val_data, layer, bar)

    monkeypatch.setattr(daun.training, "_train_stage", spy)
    failing.draws = -(10**9)  # the same generator (its fingerprint is checked), no longer interrupted
    net = train(cfg3, TINY, checkpoint=ck, resume=True, progress=False, simulate=failing)
    assert [s[0] for s in stages] == [3]  # only the new layer's stage ran
    start = stages[0][1]
    for k in ("rho", "tau1", "tau2"):  # layers 1..2 started from the checkpoint's values
        np.testing.assert_allclose(start[k][:2], saved.parameters_dict()[k], rtol=1e-6)
    np.testing.assert_allclose(start["w"], saved.parameters_dict()["w"], rtol=1e-6)
    assert net.n_layers == 3 and net.history[:2] == saved.history
    assert DAUN.load(ck).n_layers == 3
    # the resumed network equals an uninterrupted training with the same seed
    monkeypatch.setattr(daun.training, "_train_stage", real_stage)
    fresh = train(cfg3, TINY, progress=False)
    for k, v in fresh.parameters_dict().items():
        np.testing.assert_allclose(net.parameters_dict()[k], v, rtol=1e-5)
    # a checkpoint trained with other settings is not silently mixed in
    with pytest.raises(ValueError, match="lr"):
        train(
            TrainConfig(n_layers=3, lr=0.1, samples_per_layer=28, n_val=14),
            TINY,
            checkpoint=ck,
            progress=False,
            simulate=failing,
        )


# --------------------------------------------------------------- shipped weights
def test_default_variant_is_the_supervised_one():
    a, b = load_pretrained(), load_pretrained(daun.DEFAULT_VARIANT)
    for k, v in a.parameters_dict().items():
        np.testing.assert_array_equal(v, b.parameters_dict()[k])


@pytest.mark.parametrize("variant", ["paper", "supervised"])
def test_load_pretrained(variant):
    net = load_pretrained(variant)
    params = net.parameters_dict()
    assert sum(p.numel() for p in net.parameters()) == 3 * net.n_layers + 4
    for v in params.values():
        assert (v > 0).all() and np.isfinite(v).all()
    b = channel.simulate(Scenario(), 60, 20.0, seed=2024)
    for refine in (False, True):
        assert p_within(net.localize(b.y, refine=refine), b.positions) >= 0.9
    assert net.meta["train_config"]["n_layers"] == net.n_layers


def test_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    net = load_pretrained("paper")
    assert len(daun.plot_training(net).axes) == 1
    assert len(daun.plot_parameters(net).axes) == 2
    with pytest.raises(ValueError, match="history"):
        daun.plot_training(DAUN(2, scenario=TINY))


def test_recipes():
    assert daun.recipe().loss == daun.RECIPES[daun.DEFAULT_VARIANT].loss
    assert daun.recipe("paper", n_layers=3).n_layers == 3
    assert daun.RECIPES["paper"].loss == "paper" and daun.RECIPES["paper"].learn_w
    for v in daun.VARIANTS:
        assert load_pretrained(v).meta["train_config"] == daun.RECIPES[v].as_dict()
    with pytest.raises(ValueError, match="variant"):
        daun.recipe("nope")


def test_estimate_x_equals_solve():
    from daun_lib import Scenario
    from daun_lib import daun as daun_mod

    s = Scenario(n_antennas=8, grid_shape=(4, 4), n_angles=12)
    net = daun_mod.DAUN(3, scenario=s, dtype="float64")
    rng = np.random.default_rng(5)
    y = rng.standard_normal((5, 4, 8)) + 1j * rng.standard_normal((5, 4, 8))
    assert np.allclose(net.estimate_x(y, batch_size=2), net.solve(y).X, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-4)])
def test_small_batch_numpy_path_equals_torch_layers(dtype, tol):
    # estimate_x runs batches under admm.SMALL_BATCH through numpy; it must equal the torch layers
    s = Scenario()
    net = load_pretrained(dtype=dtype)
    y = channel.simulate(s, 3, 5.0, seed=11).y
    small = net.estimate_x(y, batch_size=1)  # numpy path
    full = net.solve(y).X  # torch path
    assert np.abs(small - full).max() <= tol * np.abs(full).max()
