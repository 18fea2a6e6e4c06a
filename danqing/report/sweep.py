"""Threshold sweep: for each filter, the share of its input it would keep at a grid of
thresholds, from the score each step stores (no image is decoded again, no caption re-scored),
next to the configured threshold and the paper's rate.

A step's input is its kept rows, which carry the score column, and its drops, whose `value` is
the score that failed (for the two count steps, nouns and stop words, a dropped caption has no
noun or content word: 0). Rows a step drops for another reason of its own (a file name at the
length step, an unscored image) are left out: the threshold does not decide them.

    python -m danqing.report.sweep --run results [--out results/report/threshold_sweep.csv]
    python -m danqing.report.sweep --pairs my_pairs.parquet [--sample 20000]

The second form scores a sample of raw pairs with every caption step on its own (each filter as
if it were the only one), for a crawl that has not been run yet.
"""

from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from danqing.io import atomic_path
from danqing.steps import BY_NAME


@dataclass(frozen=True)
class Sweep:
    step: str
    parameter: str  # config key of filters.<step>
    column: str  # score column on kept rows
    reasons: tuple[str, ...]  # drop reasons this threshold decides
    keep_if: str  # "at_least", "above", "at_most" or "below": how a value passes the threshold
    grid: tuple[float, ...]
    dropped_score: float | None = None  # the score of every dropped row, where the drop does
    # not record it (count steps)
    paper_threshold: float | None = None
    implied: float | None = None  # the threshold a step applies without a config key

    def passes(self, values: pl.Series, threshold: float) -> pl.Series:
        return {
            "at_least": values >= threshold,
            "above": values > threshold,
            "at_most": values <= threshold,
            "below": values < threshold,
        }[self.keep_if]


SWEEPS = (
    Sweep(
        "text_constraints",
        "max_words",
        "word_count",
        ("too_many_words",),
        "at_most",
        (20, 30, 40, 50, 60, 80, 100, 140),
        paper_threshold=60,
    ),
    Sweep(
        "text_constraints",
        "min_words",
        "word_count",
        ("too_few_words",),
        "at_least",
        (1, 2, 3, 4, 5, 6, 8, 10),
        paper_threshold=5,
    ),
    Sweep(
        "cn_detect",
        "min_confidence",
        "chinese_score",
        ("not_chinese",),
        "at_least",
        (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
    ),
    Sweep(
        "stop_words",
        "min_content_words",
        "content_word_count",
        ("only_stop_words",),
        "at_least",
        (1, 2, 3, 4, 5),
        dropped_score=0,
    ),
    Sweep(
        "nouns",
        "min_nouns",
        "noun_count",
        ("no_noun",),
        "at_least",
        (1, 2, 3),
        dropped_score=0,
        implied=1,
    ),
    Sweep(
        "unk_tokens",
        "max_unk",
        "unk_count",
        ("too_many_unk",),
        "at_most",
        (0, 1, 2, 3, 5, 8, 12),
        paper_threshold=5,
    ),
    Sweep(
        "text_entropy",
        "min_entropy",
        "text_entropy",
        ("low_entropy",),
        "at_least",
        (1e-4, 3e-4, 6e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        paper_threshold=6e-4,
    ),
    Sweep(
        "low_textual_images",
        "min_std",
        "img_std",
        ("low_pixel_std",),
        "at_least",
        (0.5, 1, 2, 4, 8, 16),
        paper_threshold=2,
    ),
    Sweep(
        "blurry_images",
        "min_laplacian_var",
        "img_blur",
        ("blurry",),
        "at_least",
        (100, 250, 500, 750, 1000, 1500, 2000, 3000),
        paper_threshold=1000,
    ),
    Sweep(
        "image_entropy",
        "min_entropy",
        "image_entropy",
        ("low_entropy",),
        "at_least",
        (1.5, 2, 2.5, 3, 3.5, 4, 5),
        paper_threshold=3,
    ),
    Sweep(
        "image_safety",
        "threshold",
        "nsfw_score",
        ("nsfw",),
        "below",
        (0.3, 0.5, 0.7, 0.8, 0.9, 0.95),
    ),
    Sweep(
        "cross_modal_alignment",
        "max_distance",
        "alignment_distance",
        ("above_alignment_window",),
        "at_most",
        (1.14, 1.18, 1.2, 1.24, 1.28, 1.32),
        paper_threshold=1.24,
    ),
    Sweep(
        "cross_modal_alignment",
        "min_distance",
        "alignment_distance",
        ("below_alignment_window",),
        "at_least",
        (0.9, 0.98, 1.02, 1.06, 1.1, 1.14),
        paper_threshold=1.06,
    ),
)
SWEEP_SCHEMA = {
    "step": pl.String,
    "parameter": pl.String,
    "threshold": pl.Float64,
    "rows": pl.Int64,
    "kept_share": pl.Float64,
    "configured": pl.Boolean,
    "paper_threshold": pl.Boolean,
    "paper_kept_share": pl.Float64,
}


def scores_of(sweep: Sweep, kept: pl.DataFrame, dropped: pl.DataFrame, filters: dict) -> pl.Series:
    """The step's score of every row its threshold decides: kept rows and its own drops."""
    column = sweep.column
    if sweep.step == "image_entropy":
        from danqing.filters.image import ENTROPY_COLUMNS

        column = ENTROPY_COLUMNS[filters["image_entropy"]["measure"]]
    if column not in kept.columns:
        return pl.Series(sweep.column, [], pl.Float64)
    values = [kept[column].cast(pl.Float64)]
    mine = dropped.filter(pl.col("reason").is_in(sweep.reasons))
    if sweep.dropped_score is not None:
        values.append(pl.Series(column, [sweep.dropped_score] * mine.height, pl.Float64))
    else:
        values.append(mine["value"].cast(pl.Float64, strict=False))
    return pl.concat(values).drop_nulls().rename(sweep.column)


def sweep_table(
    step_frames: dict[str, tuple[pl.DataFrame, pl.DataFrame]], filters: dict
) -> pl.DataFrame:
    """Rows (step, parameter, threshold, rows, kept_share, configured, paper_threshold,
    paper_kept_share) for every sweep whose step has rows."""
    out = []
    for sweep in SWEEPS:
        if sweep.step not in step_frames:
            continue
        scores = scores_of(sweep, *step_frames[sweep.step], filters)
        if scores.is_empty():
            continue
        configured = filters[sweep.step].get(sweep.parameter, sweep.implied)
        grid = sorted({*sweep.grid, *([configured] if configured is not None else [])})
        paper = 1 - BY_NAME[sweep.step].paper_stage_filter_pct / 100
        for threshold in grid:
            out.append(
                {
                    "step": sweep.step,
                    "parameter": sweep.parameter,
                    "threshold": float(threshold),
                    "rows": scores.len(),
                    "kept_share": float(sweep.passes(scores, threshold).mean()),
                    "configured": configured is not None and threshold == configured,
                    "paper_threshold": sweep.paper_threshold is not None
                    and threshold == sweep.paper_threshold,
                    "paper_kept_share": paper,
                }
            )
    return pl.DataFrame(out, schema=SWEEP_SCHEMA)


def swept_steps() -> list[str]:
    return list(dict.fromkeys(s.step for s in SWEEPS))


def run_frames(results: str | Path) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    """step -> (kept rows, drops) of a finished run's results folder."""
    paths = [
        p
        for step in swept_steps()
        for p in sorted(glob.glob(f"{results}/steps/{step}/*/*.parquet"))
    ]
    return frames_of(paths)


def frames_of(paths: list[str]) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    """step -> (kept rows, drops) from step output files `.../steps/{step}/{batch}/{shard}
    [.drops].parquet`."""
    by_step: dict[str, tuple[list[str], list[str]]] = {}
    for path in paths:
        step = Path(path).parent.parent.name
        kept, drops = by_step.setdefault(step, ([], []))
        (drops if path.endswith(".drops.parquet") else kept).append(path)
    frames = {}
    for step, (kept, drops) in by_step.items():
        kept_frame = (
            pl.concat([pl.read_parquet(p) for p in kept], how="diagonal_relaxed")
            if kept
            else pl.DataFrame()
        )
        drop_frame = (
            pl.concat([pl.read_parquet(p) for p in drops])
            if drops
            else pl.DataFrame(
                schema={
                    "uid": pl.String,
                    "step": pl.String,
                    "reason": pl.String,
                    "value": pl.String,
                }
            )
        )
        frames[step] = (kept_frame, drop_frame)
    return frames


def sample_frames(
    pairs: pl.DataFrame, filters: dict
) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    """step -> (kept, drops) of every caption step run alone on the same raw pairs."""
    from danqing.evaluation.caption_chain import partition_rows
    from danqing.filters import registry

    frame, _ = partition_rows(pairs)
    functions = registry()
    # The words the length step stores serve the later steps, as in a run.
    base = functions["text_constraints"](frame, filters["text_constraints"])
    frame = pl.concat(
        [
            base.kept,
            frame.join(base.kept.select("uid"), on="uid", how="anti").with_columns(
                words=pl.lit(None, pl.String), word_count=pl.lit(None, pl.Int64)
            ),
        ],
        how="diagonal_relaxed",
    )
    out = {"text_constraints": (base.kept, base.dropped)}
    for step in ("cn_detect", "stop_words", "nouns", "unk_tokens", "text_entropy"):
        result = functions[step](
            frame.drop("words") if step == "cn_detect" else frame, filters[step]
        )
        out[step] = (result.kept, result.dropped)
    return out


def plot(table: pl.DataFrame, path: str | Path) -> None:
    """One panel per swept parameter: share kept against the threshold, the configured
    threshold and the paper's stage rate marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = table.select("step", "parameter").unique(maintain_order=True).rows()
    cols = 3
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (step, parameter) in zip(axes.ravel(), panels, strict=False):
        part = table.filter((pl.col("step") == step) & (pl.col("parameter") == parameter))
        ax.plot(part["threshold"], part["kept_share"], marker="o")
        configured = part.filter(pl.col("configured"))
        if configured.height:
            ax.axvline(configured["threshold"][0], color="C1", ls="--", label="configured")
        ax.axhline(part["paper_kept_share"][0], color="C2", ls=":", label="paper's rate")
        ax.set_title(f"{step}.{parameter}", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("share kept")
        if part["threshold"].min() > 0 and part["threshold"].max() / part["threshold"].min() > 50:
            ax.set_xscale("log")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from danqing import config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="results folder of a finished run")
    source.add_argument("--pairs", help="raw pairs (Parquet or JSON Lines) to sample")
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--config", default=str(config.DEFAULT_CONFIG))
    parser.add_argument("--out", default="results/report/threshold_sweep.csv")
    args = parser.parse_args(argv)
    filters = config.load(args.config)["filters"]
    if args.run:
        frames = run_frames(args.run)
    else:
        from danqing.partition import read_records

        records = [r for _, r in read_records(args.pairs) if isinstance(r, dict)]
        pairs = (
            pl.DataFrame(records, infer_schema_length=None).sample(
                min(args.sample, len(records)), seed=1
            )
            if records
            else pl.DataFrame()
        )
        pairs = pairs.with_columns(pl.col(c).cast(pl.String) for c in pairs.columns)
        if "uid" not in pairs.columns:
            pairs = pairs.with_row_index("uid").with_columns(pl.col("uid").cast(pl.String))
        frames = sample_frames(pairs, filters)
    table = sweep_table(frames, filters)
    pl.Config.set_tbl_rows(200)
    print(table)
    write_outputs(table, args.out, Path(args.out).with_suffix(".png"))
    return 0


def write_outputs(table: pl.DataFrame, csv_path: str | Path, png_path: str | Path) -> None:
    from danqing.io import write_text

    write_text(table.write_csv(), csv_path)
    with atomic_path(png_path) as tmp:
        plot(table, tmp)


if __name__ == "__main__":
    sys.exit(main())
