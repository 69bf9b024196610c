"""The repository's build scripts, loaded as modules for the tests that check what they make:
``requirements/lock.py`` (``make lock``) and ``mk/build_layer.py`` (the layer's build)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


lock = _load("herald_lock", ROOT / "requirements" / "lock.py")
build_layer = _load("herald_build_layer", ROOT / "mk" / "build_layer.py")
