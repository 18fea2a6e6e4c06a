"""Snakemake entry point of every per-shard filter rule: runs step `params.step` on one shard.

Named inputs other than `shard` (e.g. `metrics`) are passed on to the filter function.
"""

from danqing.runner import run_shard_step, setup_logging

setup_logging(snakemake.log[0])
run_shard_step(
    snakemake.params.step,
    snakemake.params.cfg,
    snakemake.input.shard,
    dict(snakemake.output.items()),
    snakemake.wildcards.batch,
    snakemake.wildcards.shard,
    {k: v for k, v in snakemake.input.items() if k != "shard"},
)
