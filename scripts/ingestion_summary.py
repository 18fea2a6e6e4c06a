"""Snakemake entry point: the ingestion table (per WARC or index file) as CSV and HTML."""

from danqing.io import read_json, write_text
from danqing.report.html_tables import html_table
from danqing.report.ingestion import summary
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
table = summary([read_json(p) for p in snakemake.input.counts])
write_text(table.write_csv(), snakemake.output.csv)
total = table.row(-1, named=True)
write_text(
    html_table(
        table,
        "Ingestion: WARC and index files",
        f"{total['pairs']:,} pairs from {total['records']:,} records; "
        f"{total['lost_records']:,} records lost, {total['archive_errors']:,} archive errors.",
    ),
    snakemake.output.html,
)
