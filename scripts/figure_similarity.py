"""Snakemake entry point: Fig. 7, image-text similarity distribution (PNG + numbers CSV)."""

from danqing.report.figures import plotting, similarity
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    similarity.build_fig7,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 7: image-text similarity",
    snakemake.input.shards,
    snakemake.input.embeddings,
    cfg=snakemake.params.cfg,
)
