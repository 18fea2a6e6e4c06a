"""Snakemake entry point: one table of every dropped row with its step, reason and value."""

import polars as pl

from danqing.io import write_parquet, write_text
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
paths = [snakemake.input.partition, *snakemake.input.drops]
drops = pl.concat([pl.read_parquet(p) for p in paths], how="vertical")
write_parquet(drops, snakemake.output.table)
summary = (
    drops.group_by("step", "reason")
    .len("rows")
    .sort(["step", "rows", "reason"], descending=[False, True, False])
)
write_text(summary.write_csv(), snakemake.output.summary)
