"""Old import paths of modules that moved, kept working for one release with a ``DeprecationWarning``.

The release after 0.1.0 put the notebook back-ends under :mod:`daun_lib.studies` and the Sionna adapter
under :mod:`daun_lib.channel`.  Code written for 0.1 still runs::

    from daun_lib.limits import closest_report   # DeprecationWarning: use daun_lib.studies.limits
    from daun_lib import multiuser_study          # the same module object as daun_lib.studies.multiuser_study

An old path is a small forwarding module (its attributes are read from the new module on
access), installed by a finder on :data:`sys.meta_path`, so the package's top level holds no
stub files.  :data:`MOVED` is the whole table; the next release removes it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: Old module path -> new module path.
MOVED: dict[str, str] = {
    **{
        f"daun_lib.{name}": f"daun_lib.studies.{name}"
        for name in (
            "accuracy",
            "channel_stats",
            "claims",
            "convergence",
            "figures",
            "geometry_study",
            "limits",
            "multiuser_study",
            "notebook_params",
            "plotting",
            "run_notebooks",
            "tables",
        )
    },
    "daun_lib.sionna_data": "daun_lib.channel.sionna",
}


class _Forward(types.ModuleType):
    """A module whose attributes are those of ``target`` (read on access, so monkeypatching the
    new module is seen through the old path)."""

    def __init__(self, name: str, target: types.ModuleType) -> None:
        super().__init__(name, target.__doc__)
        object.__setattr__(self, "_target", target)

    def __getattr__(self, attr: str) -> Any:
        return getattr(object.__getattribute__(self, "_target"), attr)

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_target"))


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` and loads them as :class:`_Forward` modules."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path is removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return _Forward(spec.name, importlib.import_module(new))

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the forwarding module reads the new one."""


def install() -> None:
    """Put the finder on :data:`sys.meta_path` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
