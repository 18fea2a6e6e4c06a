"""The dedup table of the report: every dedup decision job, its index and its measured recall."""

from __future__ import annotations

import polars as pl

COLUMNS = {
    "scope": pl.String,
    "batch": pl.String,
    "images": pl.Int64,
    "sets": pl.Int64,
    "removed": pl.Int64,
    # Images dropped before the sets for duplicating an earlier release's (release.dedup_index).
    "released_duplicates": pl.Int64,
    # Of sampled new images with a released one within beta (brute force), the share found.
    "released_recall": pl.Float64,
    "beta": pl.Float64,
    "index": pl.String,
    "pair_recall": pl.Float64,
    "recall_queries": pl.Int64,
    "recall_exact_pairs": pl.Int64,
    "seconds": pl.Float64,
}


def summary(runs: list[tuple[str, str | None, dict]]) -> pl.DataFrame:
    """One row per (scope, batch, stats JSON of the job). An exact search has recall 1 by
    construction; an IVF search's recall is the one measured against exact search."""
    rows = []
    for scope, batch, stats in runs:
        recall = stats.get("recall") or {}
        index = stats.get("index") or ("sha256" if scope == "exact" else None)
        rows.append(
            {
                "scope": scope,
                "batch": batch,
                "images": stats.get("input"),
                "sets": stats.get("sets"),
                "removed": stats.get("removed"),
                "released_duplicates": stats.get("released_duplicates"),
                "released_recall": (stats.get("released_recall") or {}).get("recall"),
                "beta": stats.get("beta"),
                "index": index,
                "pair_recall": recall.get("recall")
                if recall
                else (1.0 if index == "sha256" or str(index).startswith("flat") else None),
                "recall_queries": recall.get("queries"),
                "recall_exact_pairs": recall.get("exact_pairs"),
                "seconds": stats.get("seconds"),
            }
        )
    return pl.DataFrame(rows, schema=COLUMNS)
