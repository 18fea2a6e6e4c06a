"""Checks of a validated configuration that the schema cannot express, run before any job: a
config that would empty the dataset or fail only when its step runs (after the partition and the
downloads) stops the run at start, with every problem named.

- no NaN or infinite number anywhere (YAML's `.nan` is a valid JSON-schema number);
- windows the right way round (`min_words` <= `max_words`, alignment `min_distance` <=
  `max_distance`);
- every file the enabled steps read exists: lexicons, word lists, blacklist, URL patterns,
  emoticons, fastText models, the [UNK] vocabulary, the frequency table, the NSFW model and the
  embedding checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from danqing.config import unknown_steps
from danqing.schema import schema
from danqing.steps import embedding_steps

# step -> config keys under filters.<step> that name a file (a list of files for `lists`-like
# keys); a null value means "the built-in one".
STEP_FILES: dict[str, tuple[str, ...]] = {
    "text_safety": ("lexicon", "fasttext_model"),
    "source_reliability": ("blacklist", "non_content_images"),
    "text_constraints": ("interface_words", "stop_words"),
    "cn_detect": ("model",),
    "stop_words": ("lists",),
    "unk_tokens": ("vocab",),
    "text_entropy": ("frequency_table",),
    "emoji_special_chars": ("emoticons",),
    "text_content_safety": ("lexicon", "fasttext_model"),
    "image_safety": ("model",),
}
EMBEDDING_STEPS = embedding_steps()
# The steps with a section under `filters` in the schema (the rest take no settings).
FILTER_SECTIONS = tuple(schema()["properties"]["filters"]["properties"])


def _numbers(value, where: str) -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{where}[{i}]")
    elif isinstance(value, float):
        yield where, value


def problems(config: dict, root: str | Path = ".") -> list[str]:
    """Every problem found, one line each (empty: the config is usable)."""
    root = Path(root)
    found = [
        f"config key {where}: {value} is not a finite number"
        for where, value in _numbers(config, "")
        if not math.isfinite(value)
    ]
    found += unknown_steps(config)
    filters, steps = config["filters"], set(config["steps"])
    settings = {step: filters[step] for step in steps if step in filters}
    found += [
        f"config key filters.{step}: step {step} is enabled but has no settings"
        for step in sorted(steps & set(FILTER_SECTIONS) - set(filters))
    ]
    length = settings.get("text_constraints")
    if length and length["min_words"] > length["max_words"]:
        found.append(
            f"config key filters.text_constraints: min_words {length['min_words']} > "
            f"max_words {length['max_words']}: no caption could pass"
        )
    window = settings.get("cross_modal_alignment")
    if window and window["min_distance"] > window["max_distance"]:
        found.append(
            f"config key filters.cross_modal_alignment: min_distance "
            f"{window['min_distance']} > max_distance {window['max_distance']}: no "
            "pair could pass"
        )
    for step, keys in STEP_FILES.items():
        if step not in settings:
            continue
        for key in keys:
            value = settings[step][key]
            paths = value if isinstance(value, list) else [value]
            for path in paths:
                if path is not None and not (root / path).is_file():
                    found.append(f"config key filters.{step}.{key}: file not found: {path}")
    checkpoint = config["embedding"]["checkpoint"]
    if steps & set(EMBEDDING_STEPS) and checkpoint and not (root / checkpoint).is_file():
        found.append(f"config key embedding.checkpoint: file not found: {checkpoint}")
    found += dedup_index_problems(config, root, steps)
    where = config["warc"]["index"]["where"]
    if where:
        from danqing.ingest.cc_index import where_filter

        try:
            where_filter(where)
        except ValueError as error:
            found.append(f"config key warc.index.where: {error}")
    return found


def dedup_index_problems(config: dict, root: Path, steps: set[str]) -> list[str]:
    """release.dedup_index: writing one needs embeddings; searching one needs the cross-batch
    step, and each index folder its index.json."""
    index_cfg = config["release"]["dedup_index"]
    found = []
    if index_cfg["write"] and not steps & set(EMBEDDING_STEPS):
        found.append(
            "config key release.dedup_index.write: the index holds the image embeddings, but "
            f"no step that embeds images is enabled ({', '.join(EMBEDDING_STEPS)})"
        )
    against = index_cfg["against"]
    if against and "cross_batch_dedup" not in steps:
        found.append(
            "config key release.dedup_index.against: earlier releases are searched at the "
            "cross_batch_dedup step, which is not enabled"
        )
    for k, folder in enumerate(against):
        if not (root / folder / "index.json").is_file():
            found.append(
                f"config key release.dedup_index.against[{k}]: no dedup index in {folder} "
                "(index.json missing; a run with release.dedup_index.write: true writes one "
                "as results/release/dedup_index)"
            )
    return found


def check(config: dict, root: str | Path = ".") -> None:
    """Raise ValueError listing every problem (danqing.config.ConfigError is a ValueError)."""
    from danqing.config import ConfigError

    found = problems(config, root)
    if found:
        raise ConfigError("unusable configuration:\n  " + "\n  ".join(found))
