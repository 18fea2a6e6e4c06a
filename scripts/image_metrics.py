"""Snakemake entry point of rule image_metrics: one shard's image metrics table."""

from danqing.images.shard_jobs import shard_image_metrics
from danqing.runner import setup_logging

# The metric stage's worker processes start by re-importing this file as __mp_main__: only the
# parent process may run the job.
if __name__ == "__main__":
    setup_logging(snakemake.log[0])
    shard_image_metrics(
        snakemake.input.shard, snakemake.output.metrics, snakemake.params.cfg, snakemake.threads
    )
