"""Snakemake entry point: Fig. 6, image cluster sizes under FAISS k-means (PNG + numbers CSV)."""

from danqing.report import figures
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
figures.run_or_note(figures.build_fig6, snakemake.output.png, snakemake.output.csv,  # noqa: F821
                    "Fig. 6: image cluster sizes", snakemake.input.shards,  # noqa: F821
                    snakemake.input.embeddings, cfg=snakemake.params.cfg)  # noqa: F821
