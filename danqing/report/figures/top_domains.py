"""Table 7: the top image source domains (registered domains) of the final pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import polars as pl

from danqing.report.figures.plotting import write_csv
from danqing.report.figures.sampling import iter_columns
from danqing.report.html_tables import html_table


def domain_counts(frames: Iterable[pl.DataFrame]) -> tuple[Counter, int]:
    counts: Counter = Counter()
    total = 0
    for frame in frames:
        if frame.height == 0 or "domain" not in frame.columns:
            continue
        total += frame.height
        vc = frame["domain"].fill_null("(none)").value_counts()
        counts.update(dict(zip(vc["domain"], vc["count"], strict=True)))
    return counts, total


def top_domains(counts: Counter, total: int, n: int = 40) -> pl.DataFrame:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return pl.DataFrame(
        {
            "rank": list(range(1, len(ranked) + 1)),
            "source_domain": [d for d, _ in ranked],
            "total_count": [c for _, c in ranked],
            "share_pct": [round(100.0 * c / total, 2) if total else 0.0 for _, c in ranked],
        },
        schema_overrides={"source_domain": pl.String, "total_count": pl.Int64},
    )


def top_domains_markdown(table: pl.DataFrame, total: int) -> str:
    lines = ["| Rank | Source Domain | Total Count | % |", "|---:|---|---:|---:|"]
    lines += [
        f"| {r['rank']} | {r['source_domain']} | {r['total_count']:,} | {r['share_pct']:.2f}% |"
        for r in table.iter_rows(named=True)
    ]
    covered = table["total_count"].sum()
    lines += [
        "",
        f"Top {table.height} domains: {covered:,} of {total:,} pairs "
        f"({100.0 * covered / total if total else 0:.2f}%).",
    ]
    return "\n".join(lines) + "\n"


def build_top_domains(shards, csv, md, html_path, cfg) -> pl.DataFrame:
    from danqing.io import write_text

    counts, total = domain_counts(iter_columns(shards, ["domain"]))
    table = top_domains(counts, total, cfg["top_domains"])
    write_csv(table, csv)
    write_text(top_domains_markdown(table, total), md)
    write_text(
        html_table(
            table,
            f"Table 7: top {table.height} image source domains",
            f"{total:,} pairs from {len(counts):,} registered domains; share of all pairs.",
        ),
        html_path,
    )
    return table
