"""Snakemake entry point: image-URL/alt-text pairs of the captures one cc-index file selects."""

from danqing.ingest.cc_index import extract_index
from danqing.io import write_json, write_parquet
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
index = params.index
pairs, counts = extract_index(
    params.location,
    params.partial,
    base_url=params.base_url,
    crawl=params.crawl,
    batches=params.batches,
    languages=index["languages"],
    mime_types=index["mime_types"],
    chunk_records=index["chunk_records"],
    allowed_networks=params.allowed_networks,
    timeout=index["timeout"],
    retries=index["retries"],
    where=index["where"],
)
# Pairs first, counts last: the counts file marks the index file done.
write_parquet(pairs, snakemake.output.pairs)
write_json(counts, snakemake.output.counts)
