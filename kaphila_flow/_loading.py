"""Finding a flow or a runtime from ``MODULE_OR_FILE:NAME`` on the command line."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ._exceptions import ConfigurationError

__all__ = ["FILE_MODULE_PREFIX", "load_target"]

#: Modules loaded from a file path are named this plus the file's stem.
FILE_MODULE_PREFIX = "kaphila_flow_target_"


def _load_module(spec: str) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigurationError(f"no such file: {spec}")
        name = f"{FILE_MODULE_PREFIX}{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigurationError(f"cannot load {spec} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"cannot import {spec}: {exc}") from None


def load_target(target: str) -> tuple[ModuleType, Any]:
    """``examples/ivr_menu.py:flow`` or ``package.module:flow`` -> (module, object)."""
    module_part, sep, name = target.rpartition(":")
    if not sep or not module_part or not name:
        raise ConfigurationError(
            f"expected MODULE_OR_FILE:NAME such as examples/ivr_menu.py:flow, not {target!r}"
        )
    module = _load_module(module_part)
    try:
        return module, getattr(module, name)
    except AttributeError:
        raise ConfigurationError(f"{module_part} has no {name!r}") from None
