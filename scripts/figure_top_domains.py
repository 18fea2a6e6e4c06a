"""Snakemake entry point: Table 7, top source domains (CSV, Markdown, HTML)."""

from danqing.report import figures
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
out = snakemake.output
figures.build_top_domains(snakemake.input.shards, out.csv, out.md, out.html, snakemake.params.cfg)
