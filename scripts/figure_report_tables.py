"""Snakemake entry point: the filtration table and the drop-reason summary as HTML for the report."""

import polars as pl

from danqing.io import write_text
from danqing.report.html_tables import html_table
from danqing.report.table import COLUMNS
from danqing.runner import setup_logging
from danqing.steps import STEPS

setup_logging(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
table = pl.read_csv(inp.table)
notes = [f"{row['Steps']}: {row['Note']}" for row in table.iter_rows(named=True) if row["Note"]]
write_text(
    html_table(
        table.select(COLUMNS),
        "Table 6: data filtration",
        "Rows left after each enabled step, from the steps' own counts records.",
        notes,
    ),
    out.table,
)
order = {name: i for i, name in enumerate(["partition", *(s.name for s in STEPS)])}
reasons = pl.read_csv(inp.reasons)
reasons = reasons.with_columns(
    pl.col("step").replace_strict(order, default=len(order)).alias("_order")
)
write_text(
    html_table(
        reasons.sort("_order", "rows", descending=[False, True]).drop("_order"),
        "Why rows were removed",
        "Removed rows per step and reason, in pipeline order "
        "(results/report/drop_reasons.parquet has one row per removed pair).",
    ),
    out.reasons,
)
