"""Snakemake entry point: one final shard's release rows (Parquet) and, with images, its tars."""

import polars as pl

from danqing import release
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
out = snakemake.output
cfg = snakemake.params.cfg
release.write_part(
    pl.read_parquet(snakemake.input.shard),
    out.parquet,
    out.record,
    out.get("wds"),
    prefix=f"{snakemake.wildcards.batch}-{snakemake.wildcards.shard}",
    tar_samples=cfg["tar_samples"],
    tar_max_bytes=cfg["tar_max_bytes"],
)
