"""Guarantees under misuse: the solvers never return a silent wrong answer.

Each test calls the public API the way a user would and checks for either the
correct answer or a ValueError that names the offending argument.
"""

from __future__ import annotations

import pytest
import torch

from daun_lib._devices import check_device


# ---------------------------------------------------------------------------
# device arguments
# ---------------------------------------------------------------------------
def test_check_device_accepts_cpu_forms():
    for dev in (None, "cpu", torch.device("cpu"), "cpu:0"):
        assert check_device(dev).type == "cpu"


@pytest.mark.parametrize("bad", ["foo", "", 3.5, True, object(), -1, "meta"])
def test_check_device_rejects_unparsable(bad):
    with pytest.raises(ValueError, match="^my_dev: "):
        check_device(bad, "my_dev")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0", 0, torch.device("cuda")])
def test_check_device_rejects_missing_cuda(dev):
    with pytest.raises(ValueError, match="device: .*CUDA is not available"):
        check_device(dev)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_check_device_rejects_missing_cuda_index():
    with pytest.raises(ValueError, match="does not exist"):
        check_device(f"cuda:{torch.cuda.device_count()}")
