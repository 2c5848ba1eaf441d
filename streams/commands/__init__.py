"""Sub-commands of ``scorer``, one module each, discovered at start-up.

A command module defines ``register(subparsers)``; the parser it adds sets ``func``.
Modules are listed in alphabetical order of their file names, which is also ``--help``'s order.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def _discover() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"{__name__}.{info.name}"))
    return modules


COMMAND_MODULES = _discover()
