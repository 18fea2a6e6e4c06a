"""Snakemake entry point: Fig. 4b, masked-LM pseudo-perplexity (PNG + numbers CSV).

Fails with a message naming figures.perplexity.model when no model is configured."""

from danqing.report.figures import perplexity, plotting
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    perplexity.build_fig4b,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 4b: perplexity",
    snakemake.input.shards,
    cfg=snakemake.params.cfg,
)
