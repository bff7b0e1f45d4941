"""Lazy package exports (PEP 562). A package's `__init__` names what it offers; the submodule
that defines a name is imported the first time the name is asked for. So a light submodule
(`gateway.api.settings`, read with the configuration) loads without its package's heavy
neighbours (FastAPI, httpx, the case service), and `from gateway.api import build_api` still
works as before."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], object]:
    """The `__getattr__` of `package`: `names` maps each exported name to its submodule
    (relative, ".app")."""

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # once: the next access is a plain one
        return value

    return __getattr__
