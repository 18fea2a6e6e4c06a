"""The configuration schema's file and its defaults, for code outside a validated config."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "config" / "schema.yaml"


@functools.cache
def schema() -> dict:
    """config/schema.yaml, parsed once per process (read it, never change it)."""
    return yaml.safe_load(SCHEMA.read_text())


@functools.cache
def schema_defaults(*path: str) -> dict:
    """{property: default} of the schema object at `path` (e.g. "$defs", "dedup"): for code that
    needs a default outside a validated config (a dataclass field) without writing it twice."""
    node = schema()
    for key in path:
        node = node[key]
    return {name: sub["default"] for name, sub in node["properties"].items() if "default" in sub}
