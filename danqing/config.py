"""Loading and validating the workflow configuration outside Snakemake (tests, tools)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import yaml

from danqing.schema import ROOT, SCHEMA, schema

DEFAULT_CONFIG = ROOT / "config" / "config.yaml"


class ConfigError(ValueError):
    pass


def validate(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """Validate `config` in place (filling schema defaults); raise ConfigError naming the key."""
    validator = _validator(str(schema_path))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"config key {where}: {err.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    unknown = unknown_steps(config)
    if unknown:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(unknown))
    return config


@functools.cache
def _validator(schema_path: str):
    """The default-filling validator of a schema file, built once per process: the workflow
    validates every config it loads, and each test loads several."""
    tree = (
        schema() if Path(schema_path) == SCHEMA else yaml.safe_load(Path(schema_path).read_text())
    )
    return _DefaultFilling(tree)


def unknown_steps(config: dict) -> list[str]:
    """A line for each entry of `steps` that is not a step of danqing/steps.py (the schema does
    not list them: the Step rows are their one declaration)."""
    from danqing.steps import step_names

    known = step_names()
    return [
        f"config key steps.{i}: {name!r} is not a step (known: {', '.join(known)})"
        for i, name in enumerate(config.get("steps") or [])
        if name not in known
    ]


def _fill_defaults(validator, properties, instance, schema):
    """Snakemake's `validate(config, schema)` fills `default`s of missing properties of objects
    that are present; the same here, so that code outside Snakemake sees the same config."""
    if isinstance(instance, dict):
        for name, sub in properties.items():
            if isinstance(sub, dict) and "default" in sub:
                # A copy: the schema is shared, and a filled config is the caller's to change.
                instance.setdefault(name, copy.deepcopy(sub["default"]))
    yield from _validate_properties(validator, properties, instance, schema)


_validate_properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]
_DefaultFilling = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"properties": _fill_defaults}
)


def load(path: str | Path = DEFAULT_CONFIG, overrides: dict | None = None) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    if overrides:
        config = deep_update(config, overrides)
    return validate(config)


def section(name: str, overrides: dict | None = None) -> dict:
    """One section of the default configuration with `overrides` merged in, validated and
    schema-filled: what a library function reading that section receives from the workflow."""
    return load(overrides={name: overrides or {}})[name]


def deep_update(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out
