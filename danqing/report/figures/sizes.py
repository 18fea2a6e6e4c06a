"""Fig. 2: image sizes and caption lengths of the final pairs."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from danqing.report.figures.plotting import (
    OURS_COLOUR,
    FigureDataMissing,
    bin_label,
    hist_frame,
    histogram,
    pyplot,
    save_figure,
    write_csv,
)
from danqing.report.figures.sampling import iter_columns

# Fig. 2: image sizes and caption lengths


def fig2_numbers(
    frames: Iterable[pl.DataFrame], size_edges: Sequence[int]
) -> tuple[pl.DataFrame, list[str]]:
    """Width, height and minimum edge of the original images (bins `size_edges`) and caption
    length in characters, the unit of the paper's "5 to 60 Chinese words" (one bin per length;
    danqing.filters.source.caption_length), summed over all shards."""
    from danqing.filters.source import caption_length

    size_counts = {
        p: np.zeros(len(size_edges), dtype=np.int64) for p in ("width", "height", "min_edge")
    }
    under = dict.fromkeys(size_counts, 0)
    lengths: Counter = Counter()
    have_sizes = False
    for frame in frames:
        if frame.height == 0:
            continue
        if {"original_width", "original_height"} <= set(frame.columns):
            have_sizes = True
            w = frame["original_width"].cast(pl.Float64).to_numpy()
            h = frame["original_height"].cast(pl.Float64).to_numpy()
            for panel, vals in (("width", w), ("height", h), ("min_edge", np.fmin(w, h))):
                left, _, counts = histogram(vals, size_edges)
                if math.isinf(left[0]):
                    under[panel] += counts[0]
                    counts = counts[1:]
                size_counts[panel] += np.asarray(counts, dtype=np.int64)
        if "alt_text" in frame.columns:
            lengths.update(
                caption_length(t, [], "characters")
                for t in frame["alt_text"].drop_nulls().to_list()
            )
    parts, notes = [], []
    if have_sizes:
        for panel, counts in size_counts.items():
            left, right = list(size_edges), list(size_edges[1:]) + [math.inf]
            counts = counts.tolist()
            if under[panel]:
                left, right, counts = (
                    [-math.inf] + left,
                    [size_edges[0]] + right,
                    [under[panel]] + counts,
                )
            parts.append(hist_frame(left, right, counts, panel=panel))
    else:
        notes.append(
            "Image width/height/min-edge panels not available: no images were "
            "downloaded in this run (text-only; no original_width/original_height)."
        )
    if lengths:
        lo, hi = min(lengths), max(lengths)
        parts.append(
            hist_frame(
                list(range(lo, hi + 1)),
                list(range(lo + 1, hi + 2)),
                [lengths.get(k, 0) for k in range(lo, hi + 1)],
                panel="caption_words",
            )
        )
    else:
        notes.append("Caption length panel not available: the shards hold no captions.")
    if not parts:
        raise FigureDataMissing(" ".join(notes))
    return pl.concat(parts, how="vertical"), notes


def plot_fig2(
    numbers: pl.DataFrame, out: str | os.PathLike, notes: Sequence[str] = (), name: str = "DanQing"
) -> None:
    plt = pyplot()
    titles = {
        "width": "图像宽度 Width (px)",
        "height": "图像高度 Height (px)",
        "min_edge": "最短边 Min edge (px)",
        "caption_words": "文本长度 Caption length (characters)",
    }
    panels = [p for p in titles if p in set(numbers["panel"])]
    rows = 2 if len(panels) == 4 else 1
    cols = len(panels) // rows
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.1 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=True):
        sub = numbers.filter(pl.col("panel") == panel)
        if panel == "caption_words":
            ax.bar(
                sub["bin_left"].to_numpy(),
                sub["share"].to_numpy() * 100,
                width=0.9,
                color=OURS_COLOUR,
            )
            ax.set_xlabel("字数 characters per caption")
        else:
            labels = [
                bin_label(a, b) for a, b in zip(sub["bin_left"], sub["bin_right"], strict=True)
            ]
            ax.bar(range(sub.height), sub["share"].to_numpy() * 100, color=OURS_COLOUR)
            ax.set_xticks(range(sub.height), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(titles[panel])
        ax.set_ylabel("占比 share of pairs (%)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{name}: 数据特征 data characteristics (Fig. 2), {_n_pairs(numbers)}")
    save_figure(fig, out, notes)


def _n_pairs(numbers: pl.DataFrame) -> str:
    panel = numbers["panel"][0]
    return f"{numbers.filter(pl.col('panel') == panel)['count'].sum():,} pairs"


def build_fig2(shards, png, csv, cfg) -> pl.DataFrame:
    numbers, notes = fig2_numbers(
        iter_columns(shards, ["original_width", "original_height", "alt_text"]), cfg["size_bins"]
    )
    write_csv(numbers, csv)
    plot_fig2(numbers, png, notes, name=cfg["name"])
    return numbers
