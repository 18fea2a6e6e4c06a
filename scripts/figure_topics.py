"""Snakemake entry point: topic model of Sec. 3.3 (PNG + topics CSV), an optional target."""

from danqing.report.figures import plotting, topics
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    topics.build_topics,
    snakemake.output.png,
    snakemake.output.csv,
    "Topics (Sec. 3.3)",
    snakemake.input.shards,
    snakemake.input.embeddings,
    cfg=snakemake.params.cfg,
    stop_lists=snakemake.params.stop_lists,
)
