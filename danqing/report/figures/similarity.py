"""Fig. 7: image-text similarity of the final pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from danqing.report.figures.plotting import (
    FigureDataMissing,
    colour,
    hist_frame,
    pyplot,
    save_figure,
    write_csv,
)
from danqing.report.figures.sampling import (
    compare_frame,
    final_uids,
    iter_columns,
    load_embeddings,
    sample_matrix,
)
from danqing.vectors import l2_normalise


def cosine_similarity(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", l2_normalise(image), l2_normalise(text))


def similarity_from_distance(distance: np.ndarray) -> np.ndarray:
    """cos = 1 - d^2 / 2 for the L2 distance d of two unit vectors (the alignment step's value)."""
    d = np.asarray(distance, dtype=np.float64)
    return 1.0 - d * d / 2.0


def fig7_numbers(sims: dict[str, np.ndarray], bin_width: float = 0.01) -> pl.DataFrame:
    """Histogram of cosine similarity per dataset on common bins of `bin_width`."""
    allv = np.concatenate([np.asarray(v, dtype=np.float64) for v in sims.values()])
    allv = allv[~np.isnan(allv)]
    if allv.size == 0:
        raise FigureDataMissing("no image-text similarities")
    lo = math.floor(allv.min() / bin_width) * bin_width
    hi = math.ceil(allv.max() / bin_width + 1e-9) * bin_width
    edges = np.round(np.arange(lo, hi + bin_width / 2, bin_width), 10)
    parts = []
    for name, v in sims.items():
        v = np.asarray(v, dtype=np.float64)
        v = v[~np.isnan(v)]
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(idx, minlength=len(edges) - 1).tolist()
        parts.append(hist_frame(edges[:-1], edges[1:], counts, dataset=name))
    return pl.concat(parts, how="vertical")


def plot_fig7(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for k, name in enumerate(dict.fromkeys(numbers["dataset"])):
        sub = numbers.filter(pl.col("dataset") == name)
        ax.stairs(
            sub["share"].to_numpy() * 100,
            np.append(sub["bin_left"].to_numpy(), sub["bin_right"][-1]),
            color=colour(k),
            fill=True,
            alpha=0.45,
            label=f"{name} (n={sub['count'].sum():,})",
        )
    ax.set_xlabel("图文相似度 image-text cosine similarity")
    ax.set_ylabel("占比 share of pairs (%)")
    ax.set_title("图文相似度分布 Image-text similarity (Fig. 7)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out, notes)


def build_fig7(shards, npz_paths, png, csv, cfg) -> pl.DataFrame:
    uids = final_uids(shards)
    emb = load_embeddings(npz_paths, uids) if npz_paths else {}
    notes = []
    if "text" in emb and len(emb["uid"]):
        sims = cosine_similarity(emb["image"], emb["text"])
        notes.append("Cosine similarity of the embedding step's image and text vectors.")
    else:
        dist = [
            f["alignment_distance"]
            for f in iter_columns(shards, ["alignment_distance"])
            if "alignment_distance" in f.columns
        ]
        d = pl.concat(dist).drop_nulls().to_numpy() if dist else np.array([])
        if d.size == 0:
            raise FigureDataMissing(
                "the embedding model has no text tower (the embeddings hold no `text` array) and "
                "no alignment distance was recorded, so there is no image-text similarity"
            )
        sims = similarity_from_distance(d)
        notes.append("cos = 1 - d²/2 from the cross-modal alignment step's L2 distance d.")
    values = {cfg["name"]: sample_matrix(np.asarray(sims), cfg["sample_rows"], cfg["seed"])}
    other = compare_frame(cfg)
    if other and "similarity" in other[1].columns:
        values[other[0]] = other[1]["similarity"].drop_nulls().cast(pl.Float64).to_numpy()
        notes.append(
            f"{other[0]}: its `similarity` column (comparable only if made by the same model)."
        )
    elif other:
        notes.append(f"{other[0]}: no `similarity` column, so only {cfg['name']} is drawn.")
    numbers = fig7_numbers(values, cfg["similarity_bin_width"])
    write_csv(numbers, csv)
    plot_fig7(numbers, png, notes)
    return numbers
