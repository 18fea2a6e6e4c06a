"""Snakemake entry point of the dedup decision rules (per batch, or across batches)."""

from danqing.images.shard_jobs import dedup_clusters
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
dedup_clusters(
    snakemake.input.shards,
    snakemake.input.embeddings,
    snakemake.output.clusters,
    snakemake.output.stats,
    snakemake.params.cfg,
    snakemake.params.scope,
    # Only the cross-batch rule searches earlier releases.
    released=snakemake.input.get("released", []),
    against=snakemake.params.get("against", []),
    released_recall=snakemake.input.get("released_recall", []),
)
