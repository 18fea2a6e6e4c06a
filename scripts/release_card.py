"""Snakemake entry point: the dataset card (README.md) and the release's file table for the report."""

from pathlib import Path

import polars as pl

from danqing.io import read_json, write_text
from danqing.report import card
from danqing.report.html_tables import html_table
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
manifest = read_json(snakemake.input.manifest)
table = pl.read_csv(snakemake.input.table_csv)
collected = table.filter(pl.col("step") == "collected")["Left Data Num"].to_list()
write_text(
    card.render(
        manifest,
        Path(snakemake.input.table_md).read_text(encoding="utf-8"),
        collected[0] if collected else None,
        snakemake.params.cfg,
    ),
    snakemake.output.card,
)
files = pl.DataFrame(
    manifest["files"],
    schema={
        "path": pl.String,
        "kind": pl.String,
        "rows": pl.Int64,
        "bytes": pl.Int64,
        "sha256": pl.String,
    },
)
write_text(
    html_table(
        files,
        "Release files (results/release/dataset)",
        f"{manifest['rows']:,} pairs; images: {'yes' if manifest['images'] else 'no (text-only run)'}.",
    ),
    snakemake.output.files_html,
)
