"""Snakemake entry point: Table 7, top source domains (CSV, Markdown, HTML)."""

from danqing.report import figures
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
out = snakemake.output  # noqa: F821
figures.build_top_domains(snakemake.input.shards, out.csv, out.md, out.html,  # noqa: F821
                          snakemake.params.cfg)  # noqa: F821
