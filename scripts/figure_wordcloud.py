"""Snakemake entry point: Fig. 11, word cloud of jieba words (PNG + word counts CSV)."""

from danqing.report.figures import plotting, wordcloud
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
plotting.run_or_note(
    wordcloud.build_wordcloud,
    snakemake.output.png,
    snakemake.output.csv,
    "Fig. 11: word cloud",
    snakemake.input.shards,
    cfg=snakemake.params.cfg,
    stop_lists=snakemake.params.stop_lists,
)
