"""daun_lib._memo: a map computed once per chunk and shared, never a stale or foreign one."""

from __future__ import annotations

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib._memo import active, shared, sharing
from daun_lib.channel import simulate
from daun_lib.localizers import LOCALIZERS
from daun_lib.multiuser import MULTI_REGISTRY


def _counter():
    calls = []

    def compute(value):
        calls.append(value)
        return np.full(3, float(value))

    return calls, compute


def test_outside_sharing_every_call_computes():
    calls, compute = _counter()
    y = np.zeros((2, 3))
    assert not active()
    shared("k", y, lambda: compute(1))
    shared("k", y, lambda: compute(1))
    assert calls == [1, 1]


def test_inside_sharing_once_per_key_and_content():
    calls, compute = _counter()
    y = np.arange(6.0).reshape(2, 3)
    with sharing() as memo:
        a = shared("k", y, lambda: compute(1))
        b = shared("k", y.copy(), lambda: compute(2))  # same content, another object: shared
        c = shared("other", y, lambda: compute(3))  # another key: computed
        d = shared("k", y + 1e-12, lambda: compute(4))  # other content: computed
        e = shared("k", y.astype(np.float32), lambda: compute(5))  # other dtype: computed
    assert calls == [1, 3, 4, 5]
    assert b is a and c[0] == 3 and d[0] == 4 and e[0] == 5
    assert (memo.hits, memo.misses) == (1, 4)
    assert not active()


def test_shared_arrays_are_read_only():
    y = np.ones((2, 2))
    with sharing():
        v = shared("k", y, lambda: np.zeros(4))
        with pytest.raises(ValueError):
            v[0] = 1.0


def test_the_memo_does_not_outlive_its_block():
    calls, compute = _counter()
    y = np.ones(4)
    with sharing():
        shared("k", y, lambda: compute(1))
    with sharing():
        shared("k", y, lambda: compute(2))
    assert calls == [1, 2]


def test_max_bytes_bounds_what_is_kept():
    calls, compute = _counter()
    y = np.ones(4)
    with sharing(max_bytes=0):
        shared("k", y, lambda: compute(1))
        shared("k", y, lambda: compute(2))
    assert calls == [1, 2]
    with pytest.raises(ValueError, match="max_bytes"):
        with sharing(max_bytes=-1):
            pass


def test_y_must_be_an_array():
    with sharing(), pytest.raises(ValueError, match="y"):
        shared("k", [1, 2], lambda: 0)


@pytest.mark.parametrize("n_users", [1, 2])
def test_localisers_give_the_same_positions_with_and_without_sharing(n_users):
    """Every registered map estimator: sharing changes no bit, and maps of the same estimator are reused."""
    s = Scenario()
    b = simulate(s, 6, 10.0, seed=11, n_users=n_users) if n_users > 1 else simulate(s, 6, 10.0, seed=11)
    names = list(MULTI_REGISTRY) if n_users > 1 else [n for n, (_, multi) in LOCALIZERS.items() if not multi]
    alone = {n: LOCALIZERS[n][0].locate(s, b.y, n_users) for n in names}
    with sharing() as memo:
        together = {n: LOCALIZERS[n][0].locate(s, b.y, n_users) for n in names}
    for n in names:
        np.testing.assert_array_equal(together[n], alone[n], err_msg=n)
    assert memo.hits > 0


def test_readout_fields_do_not_enter_the_map_key_but_map_fields_do():
    from daun_lib.methods import REGISTRY

    s = Scenario()
    dpd = REGISTRY["DPD"]
    assert dpd._map_key(s) == REGISTRY["DPD-ML"]._map_key(s)  # same map, another readout
    assert dpd._map_key(s) != dpd._map_key(Scenario(grid_shape=(20, 20)))  # another scenario
    assert dpd._map_key(s) != REGISTRY["P-ADMM"]._map_key(s)  # another estimator
