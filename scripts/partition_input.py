"""Snakemake entry point: validate raw pairs and split them into {batch}/{shard} shards."""

import logging

from danqing.partition import partition
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
counts = partition(
    snakemake.input[0],  # noqa: F821
    snakemake.output.shards,  # noqa: F821
    snakemake.output.drops,  # noqa: F821
    snakemake.output.counts,  # noqa: F821
    snakemake.params.num_batches,  # noqa: F821
    snakemake.params.shard_size,  # noqa: F821
    snakemake.params.fmt,  # noqa: F821
)
logging.getLogger("danqing").info("partition: %s", counts)
