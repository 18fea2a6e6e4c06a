"""Snakemake entry point: Fig. 4a, semantic-word density by jieba POS (PNG + numbers CSV)."""

from danqing.report.figures import plotting, semantic_density
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    semantic_density.build_fig4a,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 4a: semantic-word density",
    snakemake.input.shards,
    cfg=snakemake.params.cfg,
)
