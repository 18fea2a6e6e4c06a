"""What every figure shares: colours, histogram bins, saving a PNG atomically, the CSV of its
numbers, and the figure that says why its data is missing."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

log = logging.getLogger("danqing.figures")

OURS_COLOUR = "#b03a2e"  # 丹, cinnabar
OTHER_COLOUR = "#2e86ab"  # 青, azure
# The report shows a PNG at its natural size: at 110 dpi the figures fit a laptop screen.
DPI = 110


class FigureDataMissing(RuntimeError):
    """The data a figure needs is not in this run's outputs (the message says which and why)."""


# Histograms


def histogram(
    values: np.ndarray, edges: Sequence[float]
) -> tuple[list[float], list[float], list[int]]:
    """Counts in bins [e_i, e_i+1) and a last open bin [e_n, inf); values below e_0 get an
    underflow bin (-inf, e_0) of their own. NaN is not counted."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    edges = [float(e) for e in edges]
    left = list(edges)
    right = edges[1:] + [math.inf]
    idx = np.searchsorted(np.asarray(edges), values, side="right") - 1
    counts = np.bincount(idx[idx >= 0], minlength=len(edges)).tolist()
    under = int((idx < 0).sum())
    if under:
        left, right, counts = [-math.inf] + left, [edges[0]] + right, [under] + counts
    return left, right, counts


def hist_frame(left, right, counts, **labels) -> pl.DataFrame:
    total = sum(counts)
    data = {k: [v] * len(counts) for k, v in labels.items()}
    data.update(
        {
            "bin_left": [float(x) for x in left],
            "bin_right": [float(x) for x in right],
            "count": [int(c) for c in counts],
            "share": [c / total if total else 0.0 for c in counts],
        }
    )
    return pl.DataFrame(data, schema_overrides={"count": pl.Int64})


def bin_label(left: float, right: float, integer: bool = True) -> str:
    fmt = (lambda v: f"{v:,.0f}") if integer else (lambda v: f"{v:g}")
    if math.isinf(right):
        return f"≥{fmt(left)}"
    if math.isinf(left):
        return f"<{fmt(right)}"
    return f"{fmt(left)}–{fmt(right)}"


# Fig. 4b: pseudo-perplexity under a Chinese masked LM


class PerplexityModelMissing(FigureDataMissing):
    pass


def pyplot():
    from danqing.report.fonts import use_cjk_font

    use_cjk_font()
    import matplotlib.pyplot as plt

    return plt


def colour(k: int) -> str:
    return [OURS_COLOUR, OTHER_COLOUR, "#6c757d", "#e9a23b"][k % 4]


def save_figure(fig, out, notes: Sequence[str] = ()) -> None:
    from danqing.io import atomic_path

    if notes:
        fig.text(0.01, 0.005, "\n".join(notes), fontsize=8, color="#555", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.04 * len(notes) + 0.02, 1, 1))
    else:
        fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_note(out, title: str, note: str) -> None:
    """A figure that says why it has no data (the rule ran, but the input was not there)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.axis("off")
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=13, weight="bold")
    ax.text(
        0.5,
        0.3,
        "Not available: " + note,
        ha="center",
        va="center",
        fontsize=10,
        wrap=True,
        color="#555",
    )
    save_figure(fig, out)


# Building each figure from a rule's inputs (the scripts/figure_*.py entry points call these)


def write_csv(frame: pl.DataFrame, path) -> None:
    from danqing.io import write_text

    write_text(frame.write_csv(), path)


def run_or_note(build, png, csv, title: str, *args, **kwargs):
    """Run a figure builder; where its data is not in this run, draw a figure that says so and
    write the reason as the CSV (a `note` column), instead of failing the workflow."""
    try:
        return build(*args, png=png, csv=csv, **kwargs)
    except FigureDataMissing as exc:
        if isinstance(exc, PerplexityModelMissing):
            raise
        log.warning("%s not available: %s", title, exc)
        write_csv(pl.DataFrame({"note": [f"not available: {exc}"]}), csv)
        plot_note(png, title, str(exc))
        return None
