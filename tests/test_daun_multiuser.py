"""DAUN for several users per snapshot (issue 14): multi-label loss, two-user data, training, shipped variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daun_lib import Scenario, channel, daun
from daun_lib.daun import DAUN, TrainConfig, TrainingBatch, train
from daun_lib.daun.losses import loss_ce, loss_mce, loss_mce_paper, loss_paper
from daun_lib.daun.training import SuperposedUsers

TINY = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32)
TINY2 = TrainConfig(
    n_layers=2, samples_per_layer=14, batch_size=7, n_val=14, max_epochs=1, seed=5, loss="mce+paper", n_users=2
)


@pytest.fixture(scope="module")
def tiny_two():
    return SuperposedUsers(2)(TINY, 6, 15.0, seed=3)


def _batch(net, y, cell, snr=10.0):
    yt = torch.as_tensor(np.moveaxis(y, 0, -1) / np.sqrt(np.mean(np.abs(y) ** 2, axis=(1, 2))), dtype=net.A.dtype)
    n = y.shape[0]
    return TrainingBatch(yt, net.run(yt), torch.full((n,), snr), torch.zeros(n, 2), torch.as_tensor(cell))


# ---------------------------------------------------------------- two-user data
def test_superposed_users_is_the_sum_of_single_user_batches(tiny_two):
    b = tiny_two
    one = channel.simulate(TINY, 6, 15.0, seed=3)
    assert b.y.shape == (6, TINY.n_bs, 16) and b.positions.shape == (6, 2, 2)
    assert b.los.shape == (6, 2, TINY.n_bs) and b.snr_db.shape == (6, 2) and b.h.shape == (6, 2, TINY.n_bs, 16)
    assert np.array_equal(b.positions[:, 0], one.positions) and np.array_equal(b.h[:, 0], one.h)
    np.testing.assert_allclose(b.y, one.y + np.sqrt(10**1.5) * b.h[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.sum(np.abs(b.h) ** 2, axis=-1), 16.0)
    assert not np.array_equal(b.positions[:, 0], b.positions[:, 1])


def test_superposed_users_one_user_and_validation():
    one = SuperposedUsers(1)(TINY, 3, 5.0, seed=2)
    ref = channel.simulate(TINY, 3, 5.0, seed=2)
    assert all(np.array_equal(a, r) for a, r in zip(one, ref, strict=True))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_users"):
            SuperposedUsers(bad)
    with pytest.raises(ValueError, match="seed"):
        SuperposedUsers(2)(TINY, 3, 5.0, seed=-1)
    a, b = SuperposedUsers(2)(TINY, 3, 5.0, seed=7), SuperposedUsers(2)(TINY, 3, 5.0, seed=7)
    assert np.array_equal(a.y, b.y)


# ---------------------------------------------------------------- the loss
def test_mce_equals_ce_for_one_user_and_for_a_repeated_cell(tiny_two):
    net = DAUN(2, scenario=TINY, dtype="float64")
    cfg = TrainConfig(temperature=0.05)
    cells = TINY.nearest_grid(tiny_two.positions[:, 0])
    b1 = _batch(net, tiny_two.y, cells)
    assert torch.allclose(loss_mce(net, b1, cfg), loss_ce(net, b1, cfg))
    b2 = _batch(net, tiny_two.y, np.stack([cells, cells], 1))
    assert torch.allclose(loss_mce(net, b2, cfg), loss_ce(net, b1, cfg))
    assert torch.allclose(
        loss_mce_paper(net, b2, cfg), loss_mce(net, b2, cfg) + cfg.residual_weight * loss_paper(net, b2, cfg)
    )
    with pytest.raises(ValueError, match="one user per sample"):
        loss_ce(net, b2, cfg)


def test_mce_is_the_mean_of_the_per_user_cross_entropies(tiny_two):
    net = DAUN(2, scenario=TINY, dtype="float64")
    cfg = TrainConfig(temperature=0.05)
    cells = TINY.nearest_grid(tiny_two.positions.reshape(-1, 2)).reshape(6, 2)
    both = loss_mce(net, _batch(net, tiny_two.y, cells), cfg)
    each = [loss_ce(net, _batch(net, tiny_two.y, cells[:, u]), cfg) for u in range(2)]
    assert torch.allclose(both, (each[0] + each[1]) / 2)
    assert {"mce", "mce+paper"} <= set(daun.LOSSES)


# ---------------------------------------------------------------- config and training
def test_config_n_users():
    assert "n_users" not in TrainConfig().as_dict()
    assert TrainConfig.from_dict(TrainConfig().as_dict()) == TrainConfig()
    assert TrainConfig.from_dict(TINY2.as_dict()) == TINY2 and TINY2.as_dict()["n_users"] == 2
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n_users"):
            TrainConfig(n_users=bad)
    for loss in ("ce", "ce+paper", "softargmax"):
        with pytest.raises(ValueError, match="loss"):
            TrainConfig(loss=loss, n_users=2)
    m = daun.recipe("multi2")
    assert (m.loss, m.n_users, m.temperature, m.residual_weight) == ("mce+paper", 2, 0.02, 10.0)


def test_train_on_two_users_records_and_checks_n_users(tmp_path):
    ck = tmp_path / "m2.pt"
    net = train(TINY2, TINY, checkpoint=ck, progress=False)
    assert net.n_layers == 2 and all(np.isfinite(h["best_val"]) for h in net.history)
    assert net.meta["train_config"]["n_users"] == 2
    again = train(TINY2, TINY, checkpoint=ck, progress=False)  # complete checkpoint: nothing retrained
    assert np.array_equal(again.parameters_dict()["rho"], net.parameters_dict()["rho"])
    single = TrainConfig(**{**TINY2.as_dict(), "n_users": 1})
    with pytest.raises(ValueError, match="n_users"):
        train(single, TINY, checkpoint=ck, progress=False)
    with pytest.raises(ValueError, match="user"):  # single-user data for a two-user config
        train(TINY2, TINY, progress=False, simulate=channel.simulate)


def test_shipped_multi2_variant():
    net = daun.load_pretrained("multi2")
    assert net.n_layers == daun.RECIPES["multi2"].n_layers and net.meta["train_config"]["n_users"] == 2
    assert net.meta["train_config"]["loss"] == "mce+paper"
    assert TrainConfig.from_dict(net.meta["train_config"]) == daun.RECIPES["multi2"]
    na, nb = net.operator_norms()
    p = net.parameters_dict()
    assert max(float(p["tau1"].max() * na), float(p["tau2"].max() * nb)) < 7.2  # as the single-user variants
    assert "multi2" not in daun.VARIANTS  # the notebooks' single-user loops stay as they are
