"""Fingerprints of what a callable computes, for cache keys and checkpoint records.

A cache that keys a function by its name returns stale results for every
lambda (all are ``__main__.<lambda>``), every :func:`functools.partial` and
every edited function.  :func:`fingerprint` hashes instead what determines
the result:

* plain values (None, bool, int, float, complex, str, bytes), tuples, lists,
  dicts, sets: their contents;
* numpy arrays and scalars, torch tensors: dtype, shape and bytes;
* torch modules: for the module and each submodule, its class, its public
  attributes (``training`` included; names starting with ``_`` are torch's
  bookkeeping or private caches and are skipped), every parameter and buffer
  (persistent or not); dataclass instances: class and fields; enums: class
  and name; modules: their name;
* *library* code (the standard library, installed packages, ``daun_lib``
  itself): a function is keyed by its module, qualified name, defaults and
  closure values, a class by its module and name.  Its code is not hashed:
  the versions of the libraries decide it, and the Monte Carlo key holds the
  ``daun_lib`` version (pass ``extra={"code": source_digest()}`` to key the
  source itself).  This keeps a key stable across Python versions;
* *user* code (``__main__`` such as a notebook or script, and modules outside
  the installed packages): a function is keyed by its name, its code object
  (bytecode, constants, names, argument layout; not line numbers or file
  names), defaults, closure values and every global it refers to,
  recursively; a class by its name and the functions and data defined in it
  and in its user-code base classes;
* :func:`functools.partial`: the function, its positional and keyword
  arguments; bound methods: the function and the instance; other callable
  objects: their class and their attributes;
* an object with a string attribute ``cache_key`` is keyed by that string
  alone: the explicit version string a user sets when the automatic
  fingerprint is not what they want (``my_method.cache_key = "v3"``).

Anything else (open files, clients, objects without a readable state) raises
``ValueError`` naming the argument and the path to the offending value, so
that nothing is cached under a key that does not determine the result.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib
import struct
import sys
import types
from typing import Any

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - torch is a core dependency
    torch = None  # type: ignore[assignment]

__all__ = ["fingerprint"]

_MAX_DEPTH = 60
#: Special methods whose code is part of a user class's key (the other dunders are Python's bookkeeping).
_KEYED_DUNDERS = frozenset({"__call__", "__init__", "__new__", "__post_init__", "__getattr__", "__getitem__"})


class _Unkeyable(Exception):
    """Raised internally with the path of a value that cannot be fingerprinted."""


def fingerprint(obj: Any, *, name: str = "obj") -> str:
    """SHA-256 (64 hex digits) of what ``obj`` computes or holds.

    Parameters
    ----------
    obj : any supported value or callable (module docstring)
    name : str
        The argument's name, used in the error message.

    Returns
    -------
    str
        Equal for equal inputs in one Python version; different whenever the
        code, a closure value, a default, a partial argument or (for
        non-importable functions) a referenced global differs.

    Raises
    ------
    ValueError
        When some part of ``obj`` cannot be keyed; the message names the part
        and how to give an explicit ``cache_key``.
    """
    h = hashlib.sha256()
    try:
        _Hasher(h).feed(obj, name, 0)
    except _Unkeyable as exc:
        raise ValueError(
            f"{name}: cannot be fingerprinted for a cache key ({exc}); give it an explicit version string "
            f"(e.g. `fn.cache_key = 'my-method-v1'`) or do not cache (cache_dir=None)"
        ) from None
    return h.hexdigest()


def _is_library(obj: Any) -> bool:
    """True for functions and classes of the standard library, installed packages and ``daun_lib``."""
    mod = getattr(obj, "__module__", None) or ""
    if not mod or mod == "__main__":
        return False
    top = mod.split(".")[0]
    if top == "daun_lib" or top in sys.stdlib_module_names or top == "builtins":
        return True
    module = sys.modules.get(top)
    if module is None:
        try:
            module = importlib.import_module(top)
        except Exception:  # noqa: BLE001 - not importable: treat as user code (keyed in full)
            return False
    path = getattr(module, "__file__", None)
    if path is None:  # built-in or namespace package
        return True
    return any(part in ("site-packages", "dist-packages") for part in path.replace("\\", "/").split("/"))


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


class _Hasher:
    def __init__(self, h: Any) -> None:
        self.h = h
        self.seen: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps ids stable while hashing

    def tag(self, label: str) -> None:
        self.h.update(b"\x00" + label.encode() + b"\x01")

    def raw(self, data: bytes) -> None:
        self.h.update(struct.pack("<Q", len(data)) + data)

    # ------------------------------------------------------------------ dispatch
    def feed(self, obj: Any, path: str, depth: int) -> None:  # noqa: C901 - one dispatch table
        if depth > _MAX_DEPTH:
            raise _Unkeyable(f"{path}: nested more than {_MAX_DEPTH} levels deep")
        key = getattr(obj, "cache_key", None) if not isinstance(obj, type) else None
        if isinstance(key, str) and key:
            self.tag("explicit")
            self.raw(key.encode())
            return
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            self.tag(type(obj).__name__)
            self.raw(repr(obj).encode() if not isinstance(obj, bytes) else obj)
            return
        if obj is Ellipsis or obj is NotImplemented:
            self.tag("singleton")
            self.raw(repr(obj).encode())
            return
        if isinstance(obj, (slice, range)):
            self.tag(type(obj).__name__)
            self.feed((obj.start, obj.stop, obj.step), path, depth + 1)
            return
        if isinstance(obj, (np.ndarray, np.generic)):
            arr = np.ascontiguousarray(obj)
            if arr.dtype == object:
                self.tag("ndarray-object")
                self.feed(arr.tolist(), path, depth + 1)
                return
            self.tag("ndarray")
            self.raw(f"{arr.dtype.str}{arr.shape}".encode())
            self.raw(arr.tobytes())
            return
        if torch is not None and isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            self.tag("tensor")
            self.raw(f"{t.dtype}{tuple(t.shape)}".encode())
            self.raw(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            return
        if torch is not None and isinstance(obj, (torch.dtype, torch.device)):
            self.tag("torch-" + type(obj).__name__)
            self.raw(str(obj).encode())
            return
        if isinstance(obj, np.dtype):
            self.tag("dtype")
            self.raw(obj.str.encode())
            return

        # containers and objects that may refer back to themselves
        oid = id(obj)
        if oid in self.seen:
            self.tag("ref")
            self.raw(str(self.seen[oid]).encode())
            return
        self.seen[oid] = len(self.seen)
        self.keep.append(obj)

        if isinstance(obj, (tuple, list)):
            self.tag(type(obj).__name__)
            self.raw(str(len(obj)).encode())
            for i, v in enumerate(obj):
                self.feed(v, f"{path}[{i}]", depth + 1)
            return
        if isinstance(obj, dict):
            self.tag("dict")
            items = []
            for k, v in obj.items():
                sub = hashlib.sha256()
                _Hasher(sub).feed(k, f"{path} key {k!r}", depth + 1)
                items.append((sub.digest(), k, v))
            for digest, k, v in sorted(items, key=lambda t: t[0]):
                self.raw(digest)
                self.feed(v, f"{path}[{k!r}]", depth + 1)
            return
        if isinstance(obj, (set, frozenset)):
            self.tag("set")
            digests = []
            for v in obj:
                sub = hashlib.sha256()
                _Hasher(sub).feed(v, f"{path} element", depth + 1)
                digests.append(sub.digest())
            for d in sorted(digests):
                self.raw(d)
            return
        if isinstance(obj, types.ModuleType):
            self.tag("module")
            self.raw(obj.__name__.encode())
            return
        if isinstance(obj, enum.Enum):
            self.tag("enum")
            self.feed(type(obj), path, depth + 1)
            self.raw(obj.name.encode())
            return
        if isinstance(obj, type):
            self.feed_class(obj, path, depth)
            return
        if isinstance(obj, functools.partial):
            self.tag("partial")
            self.feed(obj.func, f"{path}.func", depth + 1)
            self.feed(tuple(obj.args), f"{path}.args", depth + 1)
            self.feed(dict(obj.keywords), f"{path}.keywords", depth + 1)
            return
        if isinstance(obj, types.MethodType):
            self.tag("method")
            self.feed(obj.__func__, f"{path}.__func__", depth + 1)
            self.feed(obj.__self__, f"{path}.__self__", depth + 1)
            return
        if isinstance(obj, types.FunctionType):
            self.feed_function(obj, path, depth)
            return
        if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType, np.ufunc)):
            self.tag("builtin")
            owner = getattr(obj, "__self__", None)
            self.raw(f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', obj.__name__)}".encode())
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.feed(owner, f"{path}.__self__", depth + 1)
            return
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None and callable(obj):  # functools.lru_cache, functools.wraps-style wrappers
            self.tag("wrapper")
            self.raw(type(obj).__qualname__.encode())
            self.feed(wrapped, f"{path}.__wrapped__", depth + 1)
            return
        if torch is not None and isinstance(obj, torch.nn.Module):
            self.tag("module-torch")
            for mname, module in obj.named_modules():
                self.raw(mname.encode())
                self.feed(type(module), f"{path}.{mname}" if mname else path, depth + 1)
                public = {k: v for k, v in vars(module).items() if not k.startswith("_")}
                self.feed(public, f"{path}.{mname}" if mname else path, depth + 1)
            for pname, p in obj.named_parameters():
                self.raw(pname.encode())
                self.feed(p, f"{path}.{pname}", depth + 1)
            for bname, b in obj.named_buffers():
                self.raw(bname.encode())
                self.feed(b, f"{path}.{bname}", depth + 1)
            return
        if dataclasses.is_dataclass(obj):
            self.tag("dataclass")
            self.feed(type(obj), path, depth + 1)
            for f in dataclasses.fields(obj):
                self.raw(f.name.encode())
                self.feed(getattr(obj, f.name), f"{path}.{f.name}", depth + 1)
            return
        state = getattr(obj, "__dict__", None)
        slots = getattr(type(obj), "__slots__", None)
        if isinstance(state, dict) and not slots:
            self.tag("object")
            self.feed(type(obj), path, depth + 1)
            self.feed(state, f"{path}.__dict__", depth + 1)
            return
        raise _Unkeyable(f"{path} is a {type(obj).__module__}.{type(obj).__qualname__} without a readable state")

    # ------------------------------------------------------------------ pieces
    def feed_class(self, cls: type, path: str, depth: int) -> None:
        self.tag("class")
        self.raw(f"{cls.__module__}.{cls.__qualname__}".encode())
        if _is_library(cls):
            return
        # user code: what its own classes define (methods and data) is part of the key
        for klass in cls.__mro__:
            if _is_library(klass):
                continue
            self.raw(f"{klass.__module__}.{klass.__qualname__}".encode())
            for attr, value in sorted(vars(klass).items()):
                if attr.startswith("__") and attr.endswith("__") and attr not in _KEYED_DUNDERS:
                    continue
                if isinstance(value, property):
                    value = (value.fget, value.fset)
                elif isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                elif isinstance(value, functools.cached_property):
                    value = value.func
                elif not isinstance(value, types.FunctionType) and hasattr(type(value), "__get__"):
                    continue  # a field descriptor (slots, NamedTuple fields): it stores, it computes nothing
                self.raw(attr.encode())
                self.feed(value, f"{path}.{attr}", depth + 1)

    def feed_code(self, code: types.CodeType, path: str, depth: int) -> None:
        self.tag("code")
        for attr in ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_flags"):
            self.raw(str(getattr(code, attr, 0)).encode())
        self.raw(code.co_code)
        for attr in ("co_names", "co_varnames", "co_freevars", "co_cellvars"):
            self.raw("\x1f".join(getattr(code, attr)).encode())
        for i, const in enumerate(code.co_consts):
            if isinstance(const, types.CodeType):
                self.feed_code(const, f"{path}<const {i}>", depth + 1)
            else:
                self.feed(const, f"{path}<const {i}>", depth + 1)

    def feed_function(self, fn: types.FunctionType, path: str, depth: int) -> None:
        self.tag("function")
        self.raw(f"{fn.__module__}.{fn.__qualname__}".encode())
        self.feed(fn.__defaults__, f"{path}.__defaults__", depth + 1)
        self.feed(fn.__kwdefaults__, f"{path}.__kwdefaults__", depth + 1)
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell (the variable is not bound yet)
                value = None
            self.raw(var.encode())
            self.feed(value, f"{path} (closure variable {var!r})", depth + 1)
        if _is_library(fn):
            return
        # user code: its code and what it refers to are part of the key
        self.feed_code(fn.__code__, path, depth + 1)
        glb = fn.__globals__
        for gname in sorted(_code_names(fn.__code__)):
            if gname in glb:
                self.raw(gname.encode())
                self.feed(glb[gname], f"{path} (global {gname!r})", depth + 1)
