"""Snakemake entry point: validate raw pairs and split them into {batch}/{shard} shards."""

import logging

from danqing.partition import partition
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
counts = partition(
    snakemake.input[0],
    snakemake.output.shards,
    snakemake.output.drops,
    snakemake.output.counts,
    snakemake.params.num_batches,
    snakemake.params.shard_size,
    snakemake.params.fmt,
)
logging.getLogger("danqing").info("partition: %s", counts)
