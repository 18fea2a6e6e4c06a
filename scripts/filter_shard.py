"""Snakemake entry point of every per-shard filter rule: runs step `params.step` on one shard.

Named inputs other than `shard` (e.g. `metrics`) are passed on to the filter function.
"""

from danqing.runner import run_shard_step, setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
run_shard_step(
    snakemake.params.step,  # noqa: F821
    snakemake.params.cfg,  # noqa: F821
    snakemake.input.shard,  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
    snakemake.wildcards.batch,  # noqa: F821
    snakemake.wildcards.shard,  # noqa: F821
    {k: v for k, v in snakemake.input.items() if k != "shard"},  # noqa: F821
)
