"""daun_lib._fingerprint: cache keys that follow what a callable computes."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from daun_lib import Scenario, channel
from daun_lib._fingerprint import fingerprint
from daun_lib.methods import REGISTRY


def test_lambdas_with_other_constants_differ():
    f3 = lambda s, n, snr, seed: channel.simulate(s, n, snr + 3, seed)  # noqa: E731
    f4 = lambda s, n, snr, seed: channel.simulate(s, n, snr + 4, seed)  # noqa: E731
    assert fingerprint(f3) != fingerprint(f4)


def test_partials_with_other_arguments_differ_and_equal_ones_agree():
    p1 = functools.partial(channel.simulate, seed=1)
    p2 = functools.partial(channel.simulate, seed=2)
    assert fingerprint(p1) != fingerprint(p2)
    assert fingerprint(p1) == fingerprint(functools.partial(channel.simulate, seed=1))
    nlos = functools.partial(channel.simulate, Scenario(los_model=0.0))
    los = functools.partial(channel.simulate, Scenario())
    assert fingerprint(nlos) != fingerprint(los)


def test_closure_values_and_defaults_are_part_of_the_key():
    def make(k):
        return lambda s, y: y * k

    assert fingerprint(make(1)) != fingerprint(make(2))
    assert fingerprint(make(1)) == fingerprint(make(1))

    def with_default(s, y, k=1):
        return y * k

    def with_other_default(s, y, k=2):
        return y * k

    with_other_default.__qualname__ = with_default.__qualname__
    assert fingerprint(with_default) != fingerprint(with_other_default)


def test_globals_of_a_non_importable_function_are_part_of_the_key():
    namespace = {"channel": channel, "offset": 3.0}
    exec("f = lambda s, n, snr, seed: channel.simulate(s, n, snr + offset, seed)", namespace)
    before = fingerprint(namespace["f"])
    namespace["offset"] = 4.0
    assert fingerprint(namespace["f"]) != before


def test_same_name_other_body_differs():
    def method(s, y):
        return y

    first = fingerprint(method)

    def method(s, y):  # noqa: F811 - the point: same name, other body
        return -y

    assert fingerprint(method) != first


def test_arrays_tensors_dataclasses_and_modules():
    a = np.arange(6.0)
    assert fingerprint(a) != fingerprint(a.astype(np.float32))
    assert fingerprint(a) != fingerprint(a.reshape(2, 3))
    assert fingerprint(torch.zeros(3)) != fingerprint(torch.ones(3))
    assert fingerprint(Scenario()) != fingerprint(Scenario(n_antennas=40))
    lin = torch.nn.Linear(2, 2)
    before = fingerprint(lin)
    with torch.no_grad():
        lin.weight[0, 0] += 1.0
    assert fingerprint(lin) != before


def test_explicit_cache_key_overrides():
    def method(s, y):
        return y

    method.cache_key = "mine-v1"
    other = lambda s, y: -y  # noqa: E731
    other.cache_key = "mine-v1"
    assert fingerprint(method) == fingerprint(other)
    other.cache_key = "mine-v2"
    assert fingerprint(method) != fingerprint(other)


def test_unkeyable_values_are_refused_with_the_argument_name():
    lock = threading.Lock()
    f = lambda s, y: lock  # noqa: E731
    with pytest.raises(ValueError, match=r"methods\['mine'\].*lock.*cache_key"):
        fingerprint(f, name="methods['mine']")


def test_self_reference_terminates():
    @dataclass
    class Node:
        child: object = None

    n = Node()
    n.child = [n]
    assert len(fingerprint(n)) == 64


def test_registry_fingerprints_are_distinct():
    prints = {fingerprint(fn, name=name) for name, fn in REGISTRY.items()}
    assert len(prints) == len(REGISTRY)


def test_fingerprint_is_the_same_in_a_fresh_process():
    code = (
        "import functools\n"
        "from daun_lib import channel\n"
        "from daun_lib._fingerprint import fingerprint\n"
        "from daun_lib.methods import REGISTRY\n"
        "f = lambda s, n, snr, seed: channel.simulate(s, n, snr + 3, seed)\n"
        "print(fingerprint(REGISTRY['DAUN-S']), fingerprint(functools.partial(channel.simulate, seed=1)),"
        " fingerprint(f))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0].split()[0] == fingerprint(REGISTRY["DAUN-S"])


def test_constants_of_every_kind_are_keyed():
    assert fingerprint(Ellipsis) != fingerprint(NotImplemented)
    assert fingerprint(slice(1, 2)) != fingerprint(slice(1, 3))
    assert fingerprint(range(3)) != fingerprint(range(4))
    assert len(fingerprint(channel.simulate, name="simulate")) == 64


def test_torch_module_attributes_and_parameter_free_submodules_are_keyed():
    class Scaled(torch.nn.Module):
        def __init__(self, temperature):
            super().__init__()
            self.temperature = temperature
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return self.act(x) / self.temperature

    a, b = Scaled(1.0), Scaled(2.0)
    assert fingerprint(a) != fingerprint(b)
    c = Scaled(1.0)
    assert fingerprint(a) == fingerprint(c)
    c.act = torch.nn.Tanh()
    assert fingerprint(a) != fingerprint(c)


def test_user_class_data_and_inherited_methods_are_keyed():
    class Base:
        scale = 2.0

        def __call__(self, s, y):
            return y * self.scale

    class Child(Base):
        pass

    first = fingerprint(Child())
    Base.scale = 3.0
    assert fingerprint(Child()) != first

    def other_call(self, s, y):
        return -y * self.scale

    Base.__call__ = other_call
    assert fingerprint(Child()) != first


def test_functions_of_a_user_module_key_their_code_and_constants(tmp_path, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path))
    src = tmp_path / "my_methods_for_fp.py"
    src.write_text("SCALE = 2\n\ndef method(s, y):\n    return y * SCALE\n")
    mod = importlib.import_module("my_methods_for_fp")
    first = fingerprint(mod.method)
    mod.SCALE = 3
    assert fingerprint(mod.method) != first
    mod.SCALE = 2
    assert fingerprint(mod.method) == first


def test_library_functions_are_keyed_by_name_and_state_not_bytecode():
    # stable across Python versions and docstring edits of the library: the version is keyed elsewhere
    assert fingerprint(channel.simulate) == fingerprint(channel.simulate)
    assert fingerprint(channel.simulate) != fingerprint(channel.draw_los)


def test_atomic_writes_leave_no_temporary_file_and_respect_the_umask(tmp_path, monkeypatch):
    import os

    from daun_lib._io import atomic_write_bytes

    target = atomic_write_bytes(tmp_path / "sub" / "a.bin", b"one")
    assert target.read_bytes() == b"one" and os.listdir(tmp_path / "sub") == ["a.bin"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"one" and os.listdir(tmp_path / "sub") == ["a.bin"]
