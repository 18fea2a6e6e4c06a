"""Fig. 6: FAISS k-means cluster sizes of the final pairs' image embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from danqing.report.figures.plotting import (
    FigureDataMissing,
    colour,
    pyplot,
    save_figure,
    write_csv,
)
from danqing.report.figures.sampling import (
    compare_frame,
    embedding_matrix,
    final_uids,
    load_embeddings,
    sample_matrix,
)


def cluster_sizes(
    x: np.ndarray, k: int, niter: int = 20, seed: int = 1234, min_points_per_cluster: int = 39
) -> tuple[np.ndarray, int]:
    """FAISS spherical k-means on L2-normalised vectors; cluster sizes, largest first.

    k is lowered to n / min_points_per_cluster when there are too few vectors (FAISS warns
    below 39 points per centroid); returns the sizes and the k used."""
    import faiss

    n, d = x.shape
    k_used = max(1, min(k, n // max(1, min_points_per_cluster)))
    if n == 0:
        raise FigureDataMissing("no embeddings to cluster")
    x = np.ascontiguousarray(x, dtype=np.float32)
    kmeans = faiss.Kmeans(
        d,
        k_used,
        niter=niter,
        seed=seed,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, n // k_used + 1),
    )
    kmeans.train(x)
    _, assign = kmeans.index.search(x, 1)
    sizes = np.bincount(assign[:, 0], minlength=k_used)
    return np.sort(sizes)[::-1], k_used


def fig6_numbers(sizes: dict[str, np.ndarray]) -> pl.DataFrame:
    parts = []
    for name, s in sizes.items():
        parts.append(
            pl.DataFrame(
                {
                    "dataset": [name] * len(s),
                    "rank": np.arange(1, len(s) + 1),
                    "cluster_size": s.astype(np.int64),
                    "share": s / max(1, s.sum()),
                }
            )
        )
    return pl.concat(parts, how="vertical")


def plot_fig6(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for k, name in enumerate(dict.fromkeys(numbers["dataset"])):
        sub = numbers.filter(pl.col("dataset") == name)
        ax.plot(
            sub["rank"].to_numpy(),
            sub["cluster_size"].to_numpy(),
            color=colour(k),
            lw=1.8,
            label=f"{name} ({sub['cluster_size'].sum():,} images, k={sub.height:,})",
        )
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("簇排名 cluster rank (by size)")
    ax.set_ylabel("簇大小 images per cluster (log)")
    ax.set_title("图像语义聚类分布 Image cluster sizes, FAISS k-means (Fig. 6)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, out, notes)


def build_fig6(shards, npz_paths, png, csv, cfg) -> pl.DataFrame:
    emb = load_embeddings(npz_paths, final_uids(shards))
    if len(emb["uid"]) == 0:
        raise FigureDataMissing("the final pairs have no image embeddings")
    datasets = {cfg["name"]: emb["image"]}
    notes = []
    other = compare_frame(cfg)
    if other and "embeddings" in other[1].columns:
        datasets[other[0]] = embedding_matrix(other[1].filter(pl.col("embeddings").is_not_null()))
        if datasets[other[0]].shape[1] != emb["image"].shape[1]:
            raise ValueError(
                f"{other[0]} embeddings have {datasets[other[0]].shape[1]} dimensions, "
                f"ours {emb['image'].shape[1]}: they must come from the same model"
            )
    elif other:
        notes.append(f"{other[0]}: no `embeddings` column, so only {cfg['name']} is drawn.")
    n = min(cfg["sample_rows"], *(len(x) for x in datasets.values()))
    ccfg = cfg["clusters"]
    sizes = {}
    for i, (name, x) in enumerate(datasets.items()):
        sizes[name], k_used = cluster_sizes(
            sample_matrix(x, n, cfg["seed"] + i),
            ccfg["k"],
            ccfg["niter"],
            cfg["seed"],
            ccfg["min_points_per_cluster"],
        )
    if k_used < ccfg["k"]:
        notes.append(
            f"k lowered from {ccfg['k']:,} to {k_used:,}: {n:,} images per dataset and at "
            f"least {ccfg['min_points_per_cluster']} per cluster."
        )
    numbers = fig6_numbers(sizes)
    write_csv(numbers, csv)
    plot_fig6(numbers, png, notes)
    return numbers
