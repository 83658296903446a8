"""Checking a user's ``device`` argument before torch sees it.

torch reports a bad device in ways that do not name the argument: an unknown
string raises ``RuntimeError: Expected one of cpu, cuda, ... device type``
deep inside a ``.to()`` call, and ``"cuda"`` on a machine without CUDA raises
``AssertionError: Torch not compiled with CUDA enabled`` (or a driver error)
only when the first tensor is moved.  :func:`check_device` turns both into a
:class:`ValueError` that names the argument, up front.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["check_device"]


def _available(dev: torch.device) -> tuple[bool, str]:
    """Whether ``dev`` can hold tensors on this machine, with a reason when it cannot."""
    kind = dev.type
    if kind == "cpu":
        return True, ""
    if kind == "meta":
        return False, "meta tensors hold no values, so nothing can be computed on them"
    if kind == "cuda":
        if not torch.cuda.is_available():
            return False, "CUDA is not available on this machine (torch.cuda.is_available() is False)"
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            return False, f"CUDA device index {dev.index} does not exist ({count} CUDA device(s) visible)"
        return True, ""
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            return False, "MPS is not available on this machine (torch.backends.mps.is_available() is False)"
        return True, ""
    # other backends (xpu, ...): ask torch when it offers a check, otherwise trust it
    module = getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if callable(is_available) and not is_available():
        return False, f"{kind} is not available on this machine"
    return True, ""


def check_device(device: Any, name: str = "device") -> torch.device:
    """Parse and check a device argument.

    Parameters
    ----------
    device : None, str, int or torch.device
        ``None`` means the CPU.  Strings are anything ``torch.device`` accepts
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); an ``int`` is a CUDA
        device index.
    name : str
        The argument name used in error messages.

    Returns
    -------
    torch.device
        The parsed device (``torch.device("cpu")`` for ``None``).

    Raises
    ------
    ValueError
        When ``device`` cannot be parsed as a device, or names a CUDA / MPS
        device that this machine does not have.
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, bool):
        raise ValueError(f"{name}: expected a device such as 'cpu' or 'cuda', got {device!r}")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, int):
        if device < 0:
            raise ValueError(f"{name}: expected a non-negative CUDA device index, got {device!r}")
        dev = torch.device("cuda", device)
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"{name}: expected a device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}") from exc
    else:
        raise ValueError(
            f"{name}: expected None, a string such as 'cpu' or 'cuda', an int or a torch.device, "
            f"got {type(device).__name__}"
        )
    ok, why = _available(dev)
    if not ok:
        raise ValueError(f"{name}: {device!r} cannot be used: {why}")
    return dev
