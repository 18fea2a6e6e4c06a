"""Which WARC files to ingest: the `warc` config section, local paths and URLs, job names, crawl ids
and the batch of each crawl."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

COLLECTED_PAIRS = "results/ingest/raw_pairs.parquet"
CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")


def warc_configured(cfg: dict) -> bool:
    """True when the (schema-filled) `warc` section lists WARC files, index files or crawls."""
    index = cfg["index"]
    return bool(
        cfg["paths"]
        or cfg["paths_file"]
        or index["paths"]
        or index["paths_file"]
        or index["crawls"]
    )


def partition_input_path(warc: dict, input_cfg: dict) -> str:
    """The partition's input: the collected WARC pairs when WARC files are configured (config
    `warc`), else `input.path`."""
    if warc_configured(warc):
        return COLLECTED_PAIRS
    return input_cfg["path"]


def partition_input_format(warc: dict, input_cfg: dict) -> str:
    if warc_configured(warc):
        return "parquet"
    return input_cfg["format"]


def local_warc_input(sources: dict[str, str]) -> Callable:
    """Input function of the per-WARC rule: the file itself when it is local (so that a changed
    file reruns its job), nothing for a URL (streamed by the job)."""

    def local_file(wildcards) -> list[str]:
        location = sources[wildcards.warc]
        return [] if is_url(location) else [location]

    return local_file


def warc_locations(cfg: dict) -> list[str]:
    """The configured WARC files in order: `paths`, then the lines of `paths_file` (a Common
    Crawl `warc.paths.gz`, relative paths joined to `base_url`), cut to `max_files`."""
    locations = [str(p) for p in cfg["paths"]]
    if cfg["paths_file"]:
        base = cfg["base_url"]
        if not base.endswith("/"):
            base += "/"
        for entry in read_paths_file(cfg["paths_file"]):
            locations.append(entry if is_url(entry) or entry.startswith("/") else base + entry)
    if cfg["max_files"] is not None:
        locations = locations[: cfg["max_files"]]
    seen: set[str] = set()
    for location in locations:
        if location in seen:
            raise ValueError(f"warc: {location} is listed twice; its pairs would be counted twice")
        seen.add(location)
    return locations


def read_paths_file(path: str | Path) -> list[str]:
    """The entries of a Common Crawl `*.paths(.gz)` listing (blank lines and # comments out)."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [e for e in (line.strip() for line in handle) if e and not e.startswith("#")]


def warc_sources(cfg: dict) -> dict[str, str]:
    """{job name: location} in list order. The name is the file name without `.warc.gz`, with a
    hash of the location appended only where two files share a name."""
    locations = warc_locations(cfg)
    stems = [location_stem(loc) for loc in locations]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    names = {}
    for stem, location in zip(stems, locations, strict=True):
        if stem in repeated:
            stem = f"{stem}-{hashlib.sha1(location.encode()).hexdigest()[:8]}"
        names[stem] = location
    return names


def location_stem(location: str) -> str:
    name = urlsplit(location).path.rsplit("/", 1)[-1] if is_url(location) else Path(location).name
    for suffix in (".gz", ".zst", ".lz4", ".warc", ".arc"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "warc"


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def batch_of_crawl(batches: dict | None) -> dict[str, str]:
    """Invert `warc.batches` ({batch: [crawl ids]}); a crawl listed in two batches is an error."""
    mapping: dict[str, str] = {}
    for batch, crawls in (batches or {}).items():
        for crawl in crawls:
            if crawl in mapping and mapping[crawl] != batch:
                raise ValueError(f"warc.batches: {crawl} is in batch {mapping[crawl]} and {batch}")
            mapping[crawl] = str(batch)
    return mapping


def crawl_of_location(location: str) -> str | None:
    match = CRAWL_ID.search(location)
    return match.group(0) if match else None
