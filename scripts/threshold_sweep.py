"""Snakemake entry point: the threshold sweep of a finished run (danqing/report/sweep.py)."""

from danqing.report.sweep import frames_of, sweep_table, write_outputs
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
table = sweep_table(frames_of(list(snakemake.input.steps)), snakemake.params.filters)
write_outputs(table, snakemake.output.csv, snakemake.output.png)
