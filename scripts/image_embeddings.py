"""Snakemake entry point of rule image_embeddings: one shard's embeddings and distances."""

from danqing.image_jobs import shard_embeddings
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
shard_embeddings(snakemake.input.shard, snakemake.output.embeddings,  # noqa: F821
                 snakemake.output.distances, snakemake.params.cfg)  # noqa: F821
