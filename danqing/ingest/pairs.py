"""The pair rows ingestion writes: their columns, their uid, and their language tags."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import polars as pl

from danqing.rows import schema

PAIR_SCHEMA = schema(
    "uid",
    "url",
    "alt_text",
    "page_url",
    "page_title",
    "domain",
    "languages",
    "crawl",
    "batch",
    "record_date",
)
_TAG_SPLIT = re.compile(r"[\s,;|]+")


def uid_of(crawl: str | None, url: str, alt_text: str) -> str:
    """Equal for equal (url, alt) in one crawl, so the partition's duplicate-uid removal keeps
    the first page seen of each pair within a crawl."""
    return hashlib.sha1(f"{crawl or ''}\t{url}\t{alt_text}".encode()).hexdigest()[:20]


def language_tags(value: str | None) -> set[str]:
    return {t.lower() for t in _TAG_SPLIT.split(value or "") if t}


def has_language_tag(tags: Iterable[str]) -> pl.Expr:
    """Rows whose `languages` list (`zho,eng`) holds one of `tags`."""
    wanted = sorted(t.lower() for t in tags)
    return (
        pl.col("languages")
        .str.to_lowercase()
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().is_in(wanted))
        .list.any()
    )
