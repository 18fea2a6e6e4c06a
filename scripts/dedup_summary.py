"""Snakemake entry point: the report's table of dedup decision jobs (index, pair recall)."""

from danqing.io import read_json, write_text
from danqing.report.dedup_runs import summary
from danqing.report.html_tables import html_table
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
runs = [
    (scope, batch or None, read_json(path))
    for scope, batch, path in zip(
        snakemake.params.scopes, snakemake.params.batches, snakemake.input.stats, strict=True
    )
]
table = summary(runs)
write_text(table.write_csv(), snakemake.output.csv)
write_text(
    html_table(
        table,
        "Dedup runs",
        "Every dedup decision job: images compared, duplicate sets, rows removed, the index "
        "searched and its pair recall against exact search on sampled queries (1 for exact "
        "search and identical bytes).",
    ),
    snakemake.output.html,
)
