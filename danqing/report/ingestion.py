"""The ingestion table of the report: per WARC or index file, what was read and what it gave."""

from __future__ import annotations

import polars as pl

COLUMNS = {
    "source": pl.String,
    "crawl": pl.String,
    "records": pl.Int64,
    "selected_records": pl.Int64,
    "pairs": pl.Int64,
    "bytes_read": pl.Int64,
    "bytes_per_pair": pl.Float64,
    "records_per_s": pl.Float64,
    "lost_records": pl.Int64,
    "lost_bytes": pl.Int64,
    "resyncs": pl.Int64,
    "archive_errors": pl.Int64,
}


def summary(jobs: list[dict]) -> pl.DataFrame:
    """One row per ingestion job (its counts record), and a total row."""
    rows = []
    for job in jobs:
        rows.append(
            {
                "source": job.get("index") or job.get("warc"),
                "crawl": job.get("crawl"),
                "records": job.get("records", 0),
                "selected_records": job.get("selected_records"),
                "pairs": job.get("pairs", 0),
                "bytes_read": job.get("bytes_read"),
                "bytes_per_pair": job.get("bytes_per_pair"),
                "records_per_s": job.get("records_per_s"),
                "lost_records": job.get("lost_records", 0),
                "archive_errors": len(job.get("archive_errors") or []),
            }
        )
    frame = pl.DataFrame(rows, schema=COLUMNS)
    read = frame["bytes_read"].drop_nulls()
    total = {
        "source": f"all {frame.height} files",
        "crawl": None,
        **{
            c: frame[c].sum()
            for c in ("records", "pairs", "lost_records", "lost_bytes", "resyncs", "archive_errors")
        },
        "selected_records": frame["selected_records"].drop_nulls().sum() or None,
        "bytes_read": read.sum() if read.len() else None,
        "bytes_per_pair": (read.sum() / frame["pairs"].sum())
        if read.len() and frame["pairs"].sum()
        else None,
        "records_per_s": None,
    }
    return pl.concat([frame, pl.DataFrame([total], schema=COLUMNS)])
