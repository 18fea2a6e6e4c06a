"""Snakemake entry point: image-URL/alt-text pairs and counts of one WARC file."""

import logging

from danqing.ingest.archive import extract_warc
from danqing.io import write_json, write_parquet
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
pairs, counts = extract_warc(
    params.location,
    params.crawl,
    params.batches,
    params.prefilter_languages,
    params.allowed_networks,
)
# Pairs first, counts last: the counts file marks the WARC done.
write_parquet(pairs, snakemake.output.pairs)
write_json(counts, snakemake.output.counts)
logging.getLogger("danqing").info("%s: %s", params.location, counts)
