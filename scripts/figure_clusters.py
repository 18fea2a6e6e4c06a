"""Snakemake entry point: Fig. 6, image cluster sizes under FAISS k-means (PNG + numbers CSV)."""

from danqing.report.figures import clusters, plotting
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    clusters.build_fig6,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 6: image cluster sizes",
    snakemake.input.shards,
    snakemake.input.embeddings,
    cfg=snakemake.params.cfg,
)
