"""Snakemake entry point: Fig. 2, image sizes and caption lengths (PNG + numbers CSV)."""

from danqing.report.figures import plotting, sizes
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    sizes.build_fig2,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 2: data characteristics",
    snakemake.input.shards,
    cfg=snakemake.params.cfg,
)
