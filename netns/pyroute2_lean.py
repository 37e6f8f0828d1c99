"""Makes pyroute2's submodules importable without running pyroute2/__init__.py.

Why: `import pyroute2` loads every protocol the library speaks (about 100 ms here), and a CNI
plugin is a short-lived process started once per pod: it needs only the rtnetlink message
classes (about 30 ms). Importing this module registers a stand-in `pyroute2` package whose
submodules load from the real package directory; the first access to a public name
(`from pyroute2 import IPRoute`) runs the real __init__ into it, so code that wants the full
library in the same process still gets it.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys


def _install() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.origin is None:
        raise ImportError("pyroute2 is not installed")
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str):
        # `from pyroute2 import config` inside pyroute2 asks for a submodule: load just that.
        try:
            return importlib.import_module(f"pyroute2.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pyroute2.{name}":
                raise
        # Someone asked for the public API: load it all, once.
        del package.__dict__["__getattr__"]
        with open(spec.origin, encoding="utf-8") as f:
            exec(compile(f.read(), spec.origin, "exec"), package.__dict__)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    package.__getattr__ = __getattr__
    sys.modules["pyroute2"] = package


_install()
