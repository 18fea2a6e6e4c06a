"""Snakemake entry point: sets of identical stored images within one batch."""

from danqing.images.shard_jobs import exact_clusters
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
exact_clusters(snakemake.input.shards, snakemake.output.clusters, snakemake.output.stats)
