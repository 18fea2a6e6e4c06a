"""Run the partition's row contract and every caption step, in pipeline order, over a frame of
raw pairs, and say per row where it left the chain and why (or what caption it ended with)."""

from __future__ import annotations

import polars as pl

from danqing.filters import registry
from danqing.partition import SHARD_SCHEMA, Malformed, derive_uid, normalise
from danqing.steps import caption_steps

# The partition's shard columns but the crawl and batch, which no caption step reads.
KEPT_COLUMNS = [c for c in SHARD_SCHEMA if c not in ("crawl", "batch")]

OUTCOME_SCHEMA = {
    "uid": pl.String,
    "step": pl.String,
    "reason": pl.String,
    "value": pl.String,
    "final_text": pl.String,
}


def partition_rows(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid rows as the partition writes them, drops with the partition's reasons).

    Rows of a set that has no uids of its own (crawled alts) repeat a pair when a site prints
    the same image and alt on several pages; the partition derives their uid from (url, alt) and
    keeps the first, so the same is done here by `pair_key` where the set has one.
    """
    kept, dropped = [], []
    seen: set[str] = set()
    for record in raw.iter_rows(named=True):
        try:
            row = normalise(record)
        except Malformed as err:
            dropped.append(
                {"uid": record["uid"], "step": "partition", "reason": str(err), "value": None}
            )
            continue
        if record.get("pair_key"):
            key = derive_uid(row.url, row.alt_text)
            if key in seen:
                dropped.append(
                    {"uid": row.uid, "step": "partition", "reason": "duplicate_uid", "value": key}
                )
                continue
            seen.add(key)
        kept.append({c: getattr(row, c) for c in KEPT_COLUMNS})
    schema = {c: SHARD_SCHEMA[c] for c in KEPT_COLUMNS}
    drops = {"uid": pl.String, "step": pl.String, "reason": pl.String, "value": pl.String}
    return pl.DataFrame(kept, schema=schema), pl.DataFrame(dropped, schema=drops)


def run(raw: pl.DataFrame, filters_cfg: dict, steps: list[str] | None = None) -> pl.DataFrame:
    """One outcome row per input row: `step`/`reason`/`value` of the drop, or `final_text`."""
    frame, drops = partition_rows(raw)
    parts = [drops]
    functions = registry()
    for step in steps or caption_steps():
        result = functions[step](frame, filters_cfg[step])
        parts.append(result.dropped.select("uid", "step", "reason", "value"))
        frame = result.kept
    dropped = pl.concat(parts).with_columns(pl.lit(None, pl.String).alias("final_text"))
    kept = frame.select(
        "uid",
        pl.lit(None, pl.String).alias("step"),
        pl.lit(None, pl.String).alias("reason"),
        pl.lit(None, pl.String).alias("value"),
        pl.col("alt_text").alias("final_text"),
    )
    out = pl.concat([dropped, kept.cast(OUTCOME_SCHEMA)])
    if out.height != raw.height:
        raise AssertionError(f"{raw.height} rows in, {out.height} outcomes")
    return out
