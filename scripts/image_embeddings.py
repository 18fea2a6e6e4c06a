"""Snakemake entry point of rule image_embeddings: one shard's embeddings and distances."""

from danqing.images.shard_jobs import shard_embeddings
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
shard_embeddings(
    snakemake.input.shard,
    snakemake.output.embeddings,
    snakemake.output.distances,
    snakemake.params.cfg,
    snakemake.threads,
)
