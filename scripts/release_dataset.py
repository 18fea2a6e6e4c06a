"""Snakemake entry point: the release folder's data/ (and webdataset/) and its manifest.json."""

from pathlib import Path

from danqing import release
from danqing.io import read_json
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
records = [read_json(p) for p in snakemake.input.records]
manifest = release.assemble(
    records,
    Path(snakemake.output.manifest).parent,
    parquet_rows=snakemake.params.cfg["parquet_rows"],
    images=snakemake.params.images,
)
release.write_manifest(manifest, snakemake.output.manifest)
