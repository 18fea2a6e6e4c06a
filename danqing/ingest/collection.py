"""All WARC files together: their pairs concatenated into the partition's input, their counts
summed."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from danqing.ingest.pairs import PAIR_SCHEMA


def concat_pairs(pair_paths: list[str], out_path: str) -> int:
    """Concatenate per-WARC pair files in list order into one Parquet, one file at a time."""
    from danqing.io import atomic_path

    schema = pl.DataFrame(schema=PAIR_SCHEMA).to_arrow().schema
    rows = 0
    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for path in pair_paths:
            table = pq.read_table(path)
            rows += table.num_rows
            if table.num_rows:
                writer.write_table(table.select(schema.names).cast(schema))
        if rows == 0:
            writer.write_table(pa.Table.from_pylist([], schema=schema))
    return rows


def add_counts(total: dict, record: dict) -> None:
    """Add a counts record's integers and reason tables into `total` (other values skipped)."""
    for key, value in record.items():
        if isinstance(value, bool) or not isinstance(value, int | dict) or key == "archive_errors":
            continue
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
        else:
            table = total.setdefault(key, {})
            for reason, n in value.items():
                table[reason] = table.get(reason, 0) + n


def sum_counts(records: list[dict]) -> dict:
    """Total of per-WARC counts: numbers and reason tables summed, errors kept per file."""
    total: dict = {"warc_files": len(records), "archive_errors": [], "pairs_by_crawl": {}}
    for record in records:
        add_counts(total, record)
        total["archive_errors"] += [
            {"warc": record["warc"], "error": e} for e in record.get("archive_errors", [])
        ]
        crawl = record.get("crawl") or ""
        total["pairs_by_crawl"][crawl] = total["pairs_by_crawl"].get(crawl, 0) + record["pairs"]
    return total
