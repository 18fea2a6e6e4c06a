"""A frame as a standalone HTML table page (the Snakemake report shows it in a frame)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import polars as pl

# HTML tables for the Snakemake report, and plotting helpers


def html_table(frame: pl.DataFrame, title: str, intro: str = "", notes: Sequence[str] = ()) -> str:
    """A standalone HTML page with `frame` as a table (the report shows it in a frame)."""

    def cell(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    extra = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Noto Sans", sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }}
th {{ background: #f4ecea; }}
td:nth-child(2), th:nth-child(2) {{ text-align: left; }}
.note {{ color: #555; font-size: 13px; }}
</style></head><body>
<h2>{html.escape(title)}</h2>
<p>{html.escape(intro)}</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
{extra}
</body></html>
"""
