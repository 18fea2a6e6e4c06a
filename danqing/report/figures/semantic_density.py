"""Fig. 4a: semantic-word density (nouns, verbs, adjectives by jieba POS) of sampled captions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from danqing.report.figures.plotting import colour, hist_frame, pyplot, save_figure, write_csv
from danqing.report.figures.sampling import compare_frame, sample_frame

POS_CLASSES = {"noun": "n", "verb": "v", "adjective": "a"}


# Fig. 4a: semantic-word density


def pos_class_counts(texts: Sequence[str]) -> np.ndarray:
    """Per caption: [word tokens, nouns, verbs, adjectives] under jieba's POS tagger.

    A word's class is the first letter of its ICTCLAS tag (n* nouns incl. nr/ns/nz, v* verbs
    incl. vn/vd, a* adjectives incl. ad/an), as the paper counts "nouns, verbs and adjectives"."""
    from danqing.chinese_text import pos_tag

    out = np.zeros((len(texts), 4), dtype=np.int64)
    for i, text in enumerate(texts):
        for _, flag in pos_tag(text or ""):
            out[i, 0] += 1
            for j, letter in enumerate(POS_CLASSES.values(), start=1):
                if flag.startswith(letter):
                    out[i, j] += 1
    return out


def fig4a_numbers(counts: dict[str, np.ndarray], bins: int = 10) -> pl.DataFrame:
    """Per dataset: the histogram of per-caption semantic-word density (nouns + verbs +
    adjectives over words; panel `density`, bins of width 1/bins, the last closed at 1) and the
    mean per-caption share of each class (panel `pos_share`; `count` = the class's tokens)."""
    parts = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, c in counts.items():
        c = c[c[:, 0] > 0]
        shares = c[:, 1:] / c[:, :1]
        density = shares.sum(axis=1)
        idx = np.minimum(np.searchsorted(edges, density, side="right") - 1, bins - 1)
        hist = np.bincount(idx, minlength=bins).tolist()
        parts.append(
            hist_frame(
                edges[:-1],
                edges[1:],
                hist,
                panel="density",
                dataset=name,
                category="noun+verb+adjective",
            )
        )
        parts.append(
            pl.DataFrame(
                {
                    "panel": ["pos_share"] * 4,
                    "dataset": [name] * 4,
                    "category": [*POS_CLASSES, "noun+verb+adjective"],
                    "bin_left": [None] * 4,
                    "bin_right": [None] * 4,
                    "count": [int(x) for x in c[:, 1:].sum(axis=0)] + [int(c[:, 1:].sum())],
                    "share": [float(x) if len(c) else 0.0 for x in shares.mean(axis=0)]
                    + [float(density.mean()) if len(c) else 0.0],
                },
                schema_overrides={
                    "bin_left": pl.Float64,
                    "bin_right": pl.Float64,
                    "count": pl.Int64,
                },
            )
        )
    return pl.concat(parts, how="diagonal_relaxed").select(
        "panel", "dataset", "category", "bin_left", "bin_right", "count", "share"
    )


def plot_fig4a(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = pyplot()
    names = list(dict.fromkeys(numbers["dataset"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        sub = numbers.filter((pl.col("dataset") == name) & (pl.col("panel") == "density"))
        centres = (sub["bin_left"].to_numpy() + sub["bin_right"].to_numpy()) / 2
        step = float(sub["bin_right"][0] - sub["bin_left"][0])
        ax1.bar(
            centres + (k - (len(names) - 1) / 2) * width * step,
            sub["share"].to_numpy() * 100,
            width=width * step,
            color=colour(k),
            label=f"{name} (n={sub['count'].sum():,})",
        )
        pos = numbers.filter(
            (pl.col("dataset") == name)
            & (pl.col("panel") == "pos_share")
            & (pl.col("category") != "noun+verb+adjective")
        )
        ax2.bar(
            np.arange(pos.height) + (k - (len(names) - 1) / 2) * width,
            pos["share"].to_numpy() * 100,
            width=width,
            color=colour(k),
            label=name,
        )
        ax2.set_xticks(range(pos.height), ["名词 nouns", "动词 verbs", "形容词 adjectives"])
    ax1.set_xlabel("语义词密度 semantic-word density (nouns+verbs+adjectives / words)")
    ax1.set_ylabel("占比 share of captions (%)")
    ax1.set_title("(a) 语义词密度分布 density distribution")
    ax2.set_ylabel("平均占比 mean share of words (%)")
    ax2.set_title("词性占比 share by part of speech")
    for ax in (ax1, ax2):
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("文本质量 Text quality: semantic-word density (Fig. 4a, jieba POS)")
    save_figure(fig, out, notes)


def build_fig4a(shards, png, csv, cfg) -> pl.DataFrame:
    ours = sample_frame(shards, ["alt_text"], cfg["sample_rows"], cfg["seed"])
    counts = {cfg["name"]: pos_class_counts(ours["alt_text"].to_list())}
    other = compare_frame(cfg, ["alt_text"])
    if other:
        counts[other[0]] = pos_class_counts(other[1]["alt_text"].to_list())
    numbers = fig4a_numbers(counts, cfg["density_bins"])
    write_csv(numbers, csv)
    plot_fig4a(numbers, png)
    return numbers
