"""The filtration table (paper Table 6) from the workflow's counts records."""

from __future__ import annotations

from collections import defaultdict

import polars as pl

from danqing.steps import BY_NAME, COLLECTED_LABEL, PAPER_COLLECTED, STEPS

FINAL_LABEL = "Final image-text pairs"
COLUMNS = ["Stage", "Steps", "Left Data Num", "Total Filter %", "Stage Filter %", "Left %"]


def sum_records(records: list[dict]) -> dict[str, dict]:
    """Per step: summed input/kept/dropped/transformed, and any note of a step that did not run."""
    totals: dict[str, dict] = defaultdict(
        lambda: {"input": 0, "kept": 0, "dropped": 0, "transformed": 0, "jobs": 0, "notes": set()}
    )
    for rec in records:
        t = totals[rec["step"]]
        for key in ("input", "kept", "dropped", "transformed"):
            t[key] += int(rec[key])
        t["jobs"] += 1
        if rec.get("status", "ran") != "ran":
            t["notes"].add(rec.get("note") or rec["status"])
    return dict(totals)


def build(
    partition_counts: dict,
    records: list[dict],
    enabled: list[str],
    ingestion: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per enabled step, in pipeline order, between the collected and final rows; the
    collected row's note gives the malformed input rows and, for a crawl, what ingestion lost
    (`ingestion`: the report's ingestion table, danqing.report.ingestion.summary).

    Raises if the records are inconsistent: a step's input must equal its predecessor's kept rows.
    """
    totals = sum_records(records)
    collected = int(partition_counts["kept"])
    rows = [
        {
            "Stage": "",
            "Steps": COLLECTED_LABEL,
            "step": "collected",
            "Left Data Num": collected,
            "Total Filter %": None,
            "Stage Filter %": None,
            "Left %": 100.0,
            "Removed": 0,
            "Transformed": 0,
            "Note": "; ".join(
                n for n in (_malformed_note(partition_counts), ingestion_note(ingestion)) if n
            ),
        }
    ]
    left = collected
    ordered = [s.name for s in STEPS if s.name in enabled]
    for name in ordered:
        step = BY_NAME[name]
        if name not in totals:
            if left:
                raise ValueError(f"no counts records for step {name}")
            # Nothing reached the step (an empty input, or every row dropped before it): no
            # shard, so no job and no record, and zero rows is the honest count.
            totals[name] = {
                "input": 0,
                "kept": 0,
                "dropped": 0,
                "transformed": 0,
                "notes": {"no rows reached this step"},
            }
        t = totals[name]
        if t["input"] != left:
            raise ValueError(
                f"step {name}: {t['input']} input rows, but the previous step kept {left}"
            )
        left = t["kept"]
        rows.append(
            {
                "Stage": step.stage,
                "Steps": step.label,
                "step": name,
                "Left Data Num": left,
                "Total Filter %": _pct(collected - left, collected),
                "Stage Filter %": _pct(t["dropped"], t["input"]),
                "Left %": _pct(left, collected),
                "Removed": t["dropped"],
                "Transformed": t["transformed"],
                "Note": "; ".join(sorted(t["notes"])),
            }
        )
    rows.append(
        {
            "Stage": "",
            "Steps": FINAL_LABEL,
            "step": "final",
            "Left Data Num": left,
            "Total Filter %": _pct(collected - left, collected),
            "Stage Filter %": None,
            "Left %": _pct(left, collected),
            "Removed": collected - left,
            "Transformed": 0,
            "Note": "",
        }
    )
    return pl.DataFrame(
        rows,
        schema={
            "Stage": pl.String,
            "Steps": pl.String,
            "step": pl.String,
            "Left Data Num": pl.Int64,
            "Total Filter %": pl.Float64,
            "Stage Filter %": pl.Float64,
            "Left %": pl.Float64,
            "Removed": pl.Int64,
            "Transformed": pl.Int64,
            "Note": pl.String,
        },
    )


def _malformed_note(partition_counts: dict) -> str:
    dropped = int(partition_counts.get("dropped", 0))
    if not dropped:
        return ""
    return (
        f"{partition_counts['input']:,} input rows; {partition_counts.get('malformed', 0):,} "
        f"malformed and {partition_counts.get('duplicate_uid', 0):,} duplicate uids dropped"
    )


def ingestion_note(ingestion: pl.DataFrame | None) -> str:
    """What the crawl's archives lost, per crawl: files read, records lost, archive errors."""
    if ingestion is None or ingestion.height < 2:
        return ""
    files = ingestion.head(ingestion.height - 1)  # the last row is the total
    per_crawl = (
        files.group_by(pl.col("crawl").fill_null("unknown crawl"), maintain_order=True)
        .agg(
            pl.len().alias("files"),
            pl.col("lost_records").fill_null(0).sum(),
            pl.col("archive_errors").fill_null(0).sum(),
        )
        .iter_rows(named=True)
    )
    parts = [
        f"{c['crawl']}: {c['files']:,} file(s), {c['lost_records']:,} records lost, "
        f"{c['archive_errors']:,} archive errors"
        for c in per_crawl
    ]
    return "ingested " + "; ".join(parts) + " (results/report/ingestion.csv)"


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}%"


def to_markdown(table: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    notes = []
    for row in table.iter_rows(named=True):
        steps = row["Steps"]
        if row["Note"]:
            notes.append(f"{steps}: {row['Note']}")
            steps += f" [{len(notes)}]"
        lines.append(
            "| "
            + " | ".join(
                [
                    row["Stage"],
                    steps,
                    f"{row['Left Data Num']:,}",
                    _fmt_pct(row["Total Filter %"]),
                    _fmt_pct(row["Stage Filter %"]),
                    _fmt_pct(row["Left %"]),
                ]
            )
            + " |"
        )
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
    ):
        text = text.replace(a, b)
    return text


def to_latex(table: pl.DataFrame) -> str:
    """A booktabs table in the layout of the paper's Table 6 (stage names as multirow cells)."""
    rows = list(table.iter_rows(named=True))
    out = [
        r"\begin{tabular}{llrrrr}",
        r"\toprule",
        " & ".join(_tex_escape(c) for c in COLUMNS) + r" \\",
        r"\midrule",
    ]
    i = 0
    while i < len(rows):
        stage = rows[i]["Stage"]
        j = i
        while j < len(rows) and rows[j]["Stage"] == stage:
            j += 1
        for k in range(i, j):
            row = rows[k]
            first = ""
            if stage and k == i:
                first = rf"\multirow{{{j - i}}}{{*}}{{\shortstack[l]{{{_tex_escape(stage)}}}}}"
            cells = [
                first,
                _tex_escape(row["Steps"]),
                f"{row['Left Data Num']:,}",
                _tex_escape(_fmt_pct(row["Total Filter %"]).replace("–", "--")),
                _tex_escape(_fmt_pct(row["Stage Filter %"]).replace("–", "--")),
                _tex_escape(_fmt_pct(row["Left %"])),
            ]
            out.append(" & ".join(cells) + r" \\")
        if j < len(rows):
            out.append(r"\midrule")
        i = j
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def calibration(table: pl.DataFrame) -> pl.DataFrame:
    """Our stage filter rates next to the paper's, per Table 6 row (merged rows combined)."""
    groups: list[dict] = []
    previous_left = 0
    for row in table.iter_rows(named=True):
        if row["step"] == "collected":
            previous_left = row["Left Data Num"]
            continue
        if row["step"] not in BY_NAME:
            continue
        step = BY_NAME[row["step"]]
        if not groups or groups[-1]["paper_row"] != step.paper_row:
            groups.append(
                {"paper_row": step.paper_row, "steps": [], "input": previous_left, "paper": step}
            )
        groups[-1]["steps"].append(row["step"])
        # The paper's figures of a merged row are those of its last step (the row's outcome).
        groups[-1]["paper"] = step
        groups[-1]["left"] = previous_left = row["Left Data Num"]
    return pl.DataFrame(
        [
            {
                "Table 6 row": g["paper_row"],
                "steps": ", ".join(g["steps"]),
                "workflow stage filter %": _pct(g["input"] - g["left"], g["input"]),
                "paper stage filter %": g["paper"].paper_stage_filter_pct,
                "paper left data num": g["paper"].paper_left,
            }
            for g in groups
        ]
    )


__all__ = ["build", "to_markdown", "to_latex", "calibration", "PAPER_COLLECTED"]
