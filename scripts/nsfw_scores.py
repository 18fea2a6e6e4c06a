"""Snakemake entry point of rule nsfw_scores: one shard's NSFW scores."""

from danqing.images.shard_jobs import shard_nsfw_scores
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
shard_nsfw_scores(
    snakemake.input.shard, snakemake.output.scores, snakemake.params.cfg, snakemake.threads
)
