"""Glue between Snakemake jobs and the pure filter functions: read a shard, run one step, write
the kept rows, the drop records and the counts record atomically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import polars as pl

from danqing.filters import StepResult, registry
from danqing.io import counts_record, write_json, write_parquet

log = logging.getLogger("danqing")


def setup_logging(log_path: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def write_step_outputs(
    result: StepResult,
    step: str,
    batch: str,
    shard: str,
    n_input: int,
    kept_path: str,
    dropped_path: str,
    counts_path: str,
) -> dict:
    """Kept rows and drops first, the counts record last: its presence marks the shard done."""
    result.check(n_input)
    write_parquet(result.kept, kept_path)
    write_parquet(result.dropped, dropped_path)
    record = counts_record(
        step,
        batch,
        shard,
        n_input,
        result.kept.height,
        result.dropped.height,
        n_transformed=result.transformed,
        status=result.status,
        note=result.note,
        extra=result.extra,
    )
    write_json(record, counts_path)
    return record


def run_shard_step(
    step: str,
    cfg: dict,
    shard_path: str,
    outputs: dict,
    batch: str,
    shard: str,
    inputs: dict | None = None,
) -> dict:
    """Run filter `step` on one shard. `inputs` are the rule's other named inputs (paths), passed
    to the filter function as keyword arguments (e.g. `metrics=` for the image filters)."""
    frame = pl.read_parquet(shard_path)
    started = time.perf_counter()
    result = registry()[step](frame, cfg, **(inputs or {}))
    elapsed = time.perf_counter() - started
    record = write_step_outputs(
        result,
        step,
        batch,
        shard,
        frame.height,
        outputs["kept"],
        outputs["dropped"],
        outputs["counts"],
    )
    log.info(
        "%s %s/%s: %d in, %d kept, %d dropped, %d transformed in %.2fs",
        step,
        batch,
        shard,
        record["input"],
        record["kept"],
        record["dropped"],
        record["transformed"],
        elapsed,
    )
    return record
