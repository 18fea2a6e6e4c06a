"""Snakemake entry point: Table 7, top source domains (CSV, Markdown, HTML)."""

from danqing.report.figures import top_domains
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
out = snakemake.output
top_domains.build_top_domains(
    snakemake.input.shards, out.csv, out.md, out.html, snakemake.params.cfg
)
