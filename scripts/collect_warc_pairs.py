"""Snakemake entry point: concatenate the per-WARC pairs in list order and sum their counts."""

import logging

from danqing.ingest.collection import concat_pairs, sum_counts
from danqing.io import read_json, write_json
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
counts = sum_counts([read_json(p) for p in snakemake.input.counts])
rows = concat_pairs(list(snakemake.input.pairs), snakemake.output.pairs)
if rows != counts.get("pairs", 0):
    raise AssertionError(f"{rows} pairs in the WARC files' Parquets, {counts.get('pairs')} counted")
write_json(counts, snakemake.output.counts)
logging.getLogger("danqing").info(
    "collected %d pairs from %d WARC files", rows, counts["warc_files"]
)
