"""The row format: every column a pair carries from ingestion to the partition's shards, with its
one type. Ingestion, the partition and the real evaluation sets take their schemas from here."""

from __future__ import annotations

import polars as pl

COLUMN_TYPES: dict[str, pl.DataType] = {
    "uid": pl.String,
    "url": pl.String,
    "alt_text": pl.String,
    "alt_text_raw": pl.String,  # the alt text as the page or the input gave it
    "page_url": pl.String,
    "page_title": pl.String,
    "domain": pl.String,  # registered domain of the image URL (danqing.urls)
    "languages": pl.String,  # comma-separated ISO 639-3 tags of the page (zho,eng)
    "crawl": pl.String,
    "batch": pl.String,
    "record_date": pl.Datetime("us", "UTC"),  # the WARC record's date
}


def schema(*columns: str) -> dict[str, pl.DataType]:
    """{column: type} of `columns`, in that order."""
    return {name: COLUMN_TYPES[name] for name in columns}
