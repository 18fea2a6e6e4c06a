"""Snakemake entry point: write the deterministic demo corpus and its ground-truth labels."""

from pathlib import Path

from danqing.demo import corpus
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
out = Path(snakemake.output.pairs).parent
corpus.write(out, snakemake.params.rows, snakemake.params.seed, snakemake.params.port)
