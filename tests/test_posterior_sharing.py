"""DPD-MMSE and DPD-Disk share one posterior inside a sharing block, with bit-identical positions (issue 21)."""

import numpy as np

from daun_lib import Scenario, channel
from daun_lib._memo import sharing
from daun_lib.methods import REGISTRY


def test_posterior_shared_within_a_chunk_bit_identical():
    sc = Scenario()
    y = channel.simulate(sc, 12, 10.0, seed=5).y
    ref = [REGISTRY[name](sc, y) for name in ("DPD-MMSE", "DPD-Disk")]
    with sharing() as memo:
        got = [REGISTRY[name](sc, y.copy()) for name in ("DPD-MMSE", "DPD-Disk")]
    assert memo.hits == 1 and memo.misses == 1
    for a, b in zip(ref, got, strict=True):
        assert np.array_equal(a, b)


def test_different_snapshots_do_not_share():
    sc = Scenario()
    y1 = channel.simulate(sc, 6, 10.0, seed=6).y
    y2 = channel.simulate(sc, 6, 10.0, seed=7).y
    with sharing() as memo:
        a = REGISTRY["DPD-MMSE"](sc, y1)
        b = REGISTRY["DPD-MMSE"](sc, y2)
    assert memo.hits == 0 and memo.misses == 2
    assert np.array_equal(a, REGISTRY["DPD-MMSE"](sc, y1))
    assert np.array_equal(b, REGISTRY["DPD-MMSE"](sc, y2))
