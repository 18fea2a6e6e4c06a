"""Snakemake entry point: Fig. 4a, semantic-word density by jieba POS (PNG + numbers CSV)."""

from danqing.report import figures
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
figures.run_or_note(
    figures.build_fig4a,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 4a: semantic-word density",
    snakemake.input.shards,
    cfg=snakemake.params.cfg,
)
