"""Snakemake entry point: Table 6 (CSV, Markdown, LaTeX) from the steps' counts records."""

import polars as pl

from danqing.io import read_json, write_text
from danqing.report import table
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
records = [read_json(p) for p in snakemake.input.counts]
ingestion = pl.read_csv(snakemake.input.ingestion[0]) if snakemake.input.ingestion else None
result = table.build(
    read_json(snakemake.input.partition), records, snakemake.params.steps, ingestion
)
write_text(result.write_csv(), snakemake.output.csv)
write_text(table.to_markdown(result), snakemake.output.md)
write_text(table.to_latex(result), snakemake.output.tex)
write_text(table.calibration(result).write_csv(), snakemake.output.calibration)
