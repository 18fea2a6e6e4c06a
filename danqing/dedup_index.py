"""A release's dedup index, and the search of a later run's images against it.

A release keeps its images' embeddings (float16) partitioned by k-means centroids, so that a later
run can drop the new pairs whose image is within beta of an image already released, without the
old pairs' embeddings being recomputed or searched against each other again. The index is a folder
(`results/release/dedup_index/` of the run that released):

- `index.json`: format, embedding model and dimension, vectors, partitions, groups, group files;
- `centroids.npy`: float32 [partitions, dim], trained on a sample of the released vectors;
- `group-{g}.npz`: the released vectors of the partitions p with p % groups == g, each vector in
  its nearest centroid's partition only (uids, vectors, parts, sorted by partition).

Writing it is per-shard jobs (`write_index_assignment`: each released vector's partition) and one
job per group (`write_index_group`). Searching it reuses the partitioned dedup's assignment
(danqing/dedup_partitioned.py): each new vector is copied to every partition whose cell could hold
a vector within beta of it, so a released vector within beta is always in a partition the new
vector is compared in (exact, at any partition count); one job per group compares its new copies
with its group file (`released_pairs`). A job holds one group file and its share of the new
vectors, never the whole index.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from danqing.dedup import CLUSTERS_SCHEMA, DedupSettings, normalise
from danqing.dedup_partitioned import (
    group_copies,
    nearest_centroids,
    primary_count,
    sample_queries,
    sample_vectors,
    train_centroids,
    write_assignment,
)
from danqing.embed import embedding_model, read_embeddings, read_shard_embeddings
from danqing.io import (
    read_json,
    shard_row_count,
    write_json,
    write_npy,
    write_npz,
    write_parquet,
)

INDEX_FORMAT = 1
RELEASED_SCHEMA = {"uid": pl.String, "released_uid": pl.String, "similarity": pl.Float32}
# Released vectors compared with one block of new vectors at a time (block x rows floats).
SEARCH_CHUNK = 65_536


def partitions_for(vectors: int, vectors_per_partition: int) -> int:
    """Partitions of an index of `vectors` vectors (at least one)."""
    return max(1, math.ceil(vectors / vectors_per_partition))


def group_file(group: int) -> str:
    return f"group-{group}.npz"


def write_index_assignment(
    path: str | os.PathLike, uids: Sequence[str], vectors: np.ndarray, centroids: np.ndarray
) -> int:
    """One released shard's vectors (as stored, float16) with their partition."""
    stored = np.asarray(vectors, dtype=np.float16)
    parts = (
        nearest_centroids(normalise(stored), centroids) if len(stored) else np.zeros(0, np.int32)
    )
    write_npz(path, uids=np.array(list(uids), dtype=np.str_), vectors=stored, parts=parts)
    return len(stored)


def write_index_group(
    path: str | os.PathLike, assignments: Sequence[str], group: int, groups: int
) -> int:
    """The released vectors of the group's partitions, from every shard's assignment."""
    uids, vectors, parts = [], [], []
    for assignment in assignments:
        with np.load(assignment) as data:
            mine = data["parts"] % groups == group
            uids.append(data["uids"][mine])
            vectors.append(data["vectors"][mine])
            parts.append(data["parts"][mine])
    dim = next((v.shape[1] for v in vectors if v.ndim == 2), 0)
    uids_all = np.concatenate(uids) if uids else np.zeros(0, np.str_)
    vectors_all = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float16)
    parts_all = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    order = np.argsort(parts_all, kind="stable")
    write_npz(path, uids=uids_all[order], vectors=vectors_all[order], parts=parts_all[order])
    return len(order)


def write_index_manifest(
    path: str | os.PathLike, centroids: np.ndarray, group_counts: Sequence[int], model: str | None
) -> dict:
    """index.json beside the centroids and group files."""
    manifest = {
        "format": INDEX_FORMAT,
        "model": model,
        "dim": int(centroids.shape[1]),
        "partitions": int(centroids.shape[0]),
        "groups": len(group_counts),
        "vectors": int(sum(group_counts)),
        "group_vectors": [int(n) for n in group_counts],
        "centroids": "centroids.npy",
        "group_files": [group_file(g) for g in range(len(group_counts))],
    }
    write_json(manifest, path)
    return manifest


@dataclass(frozen=True)
class ReleaseIndex:
    """An earlier release's dedup index, opened from its folder (index.json checked)."""

    folder: Path
    model: str | None
    dim: int
    partitions: int
    groups: int
    vectors: int

    @classmethod
    def open(cls, folder: str | os.PathLike) -> ReleaseIndex:
        folder = Path(folder)
        manifest_path = folder / "index.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{folder}: no dedup index here (index.json missing); an index is written by a "
                "run with release.dedup_index.write: true, as results/release/dedup_index"
            )
        manifest = read_json(manifest_path)
        if manifest.get("format") != INDEX_FORMAT:
            raise ValueError(
                f"{manifest_path}: index format {manifest.get('format')!r}, this workflow reads "
                f"format {INDEX_FORMAT}"
            )
        return cls(
            folder,
            manifest["model"],
            int(manifest["dim"]),
            int(manifest["partitions"]),
            int(manifest["groups"]),
            int(manifest["vectors"]),
        )

    def files(self) -> list[str]:
        """Every file of the index (a job that reads it declares these as inputs)."""
        names = ["index.json", "centroids.npy", *(group_file(g) for g in range(self.groups))]
        return [str(self.folder / name) for name in names]

    def centroids(self) -> np.ndarray:
        return np.load(self.folder / "centroids.npy")

    def check_compatible(self, model: str | None, dim: int) -> None:
        """New embeddings must come from the index's model, at its dimension."""
        if model != self.model or dim != self.dim:
            raise ValueError(
                f"{self.folder}: the index holds {self.model!r} embeddings of dimension "
                f"{self.dim}; this run's are {model!r} of dimension {dim}: images embedded by "
                "different models cannot be compared"
            )


def released_pairs(
    assignments: Sequence[str], index: ReleaseIndex, group: int, beta: float
) -> pl.DataFrame:
    """For every new vector with a released vector of the group's partitions within beta: the
    most similar one (RELEASED_SCHEMA; ties: the smaller released uid)."""
    with np.load(index.folder / group_file(group)) as data:
        released_uids, released, released_parts = data["uids"], data["vectors"], data["parts"]
    copies = group_copies(assignments, group, index.groups)
    if copies is None or not len(copies[0]) or not len(released_uids):
        return pl.DataFrame(schema=RELEASED_SCHEMA)
    new_uids, new_vectors, new_parts, _ = copies
    new = normalise(new_vectors)
    if new.shape[1] != index.dim:
        raise ValueError(f"new embeddings of dimension {new.shape[1]}, the index's {index.dim}")
    threshold = 1.0 - beta
    out_new, out_released, out_sim = [], [], []
    for part in np.unique(new_parts):
        lo, hi = np.searchsorted(released_parts, [part, part + 1])
        if lo == hi:
            continue
        members = normalise(released[lo:hi])
        queries = np.flatnonzero(new_parts == part)
        for start in range(0, len(queries), SEARCH_CHUNK):
            block = queries[start : start + SEARCH_CHUNK]
            sims = new[block] @ members.T
            q, r = np.nonzero(sims > threshold)
            out_new.append(new_uids[block[q]])
            out_released.append(released_uids[lo + r])
            out_sim.append(sims[q, r])
    if not out_new:
        return pl.DataFrame(schema=RELEASED_SCHEMA)
    frame = pl.DataFrame(
        {
            "uid": np.concatenate(out_new).astype(str),
            "released_uid": np.concatenate(out_released).astype(str),
            "similarity": np.concatenate(out_sim).astype(np.float32),
        },
        schema=RELEASED_SCHEMA,
    )
    return best_released(frame)


def released_recall(
    assignments: Sequence[str],
    index: ReleaseIndex,
    group: int,
    found: pl.DataFrame,
    settings: DedupSettings,
) -> dict:
    """The search's recall in one group, measured: of `recall_sample` new vectors (sampled
    among the assignment files' rows, the same in every group's job), those with a released
    vector of the group within beta by brute force over the whole group file, and how many of
    them the partitioned search (`found`) matched. Memory: the queries and one block."""
    queries = sample_queries(
        assignments, primary_count(assignments), settings.recall_sample, settings.seed + 2
    )
    n_queries = 0 if queries is None else len(queries[0])
    out = {"queries": n_queries, "exact_matches": 0, "found_matches": 0}
    if queries is None:
        return out
    q_uids, q_vectors = queries
    with np.load(index.folder / group_file(group)) as data:
        released = data["vectors"]
    q = normalise(q_vectors)
    matched = np.zeros(len(q), bool)
    for start in range(0, len(released), SEARCH_CHUNK):
        block = normalise(released[start : start + SEARCH_CHUNK])
        matched |= (q @ block.T > 1.0 - settings.beta).any(axis=1)
    exact = set(q_uids[matched].tolist())
    out["exact_matches"] = len(exact)
    out["found_matches"] = len(exact & set(found["uid"].to_list()))
    return out


def released_recall_summary(stat_files: Sequence[str]) -> dict | None:
    """The recall of every group's search together (None without an earlier index)."""
    if not stat_files:
        return None
    groups = [read_json(path) for path in stat_files]
    exact = sum(g["exact_matches"] for g in groups)
    found = sum(g["found_matches"] for g in groups)
    return {
        "queries": max(g["queries"] for g in groups),
        "exact_matches": exact,
        "found_matches": found,
        "recall": found / exact if exact else None,
    }


def best_released(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per new uid: its most similar released image (ties: the smaller released uid)."""
    return (
        frame.sort(["uid", "similarity", "released_uid"], descending=[False, True, False])
        .unique(subset="uid", keep="first", maintain_order=True)
        .select(list(RELEASED_SCHEMA))
    )


def read_released(pair_files: Sequence[str]) -> pl.DataFrame:
    """The released duplicates found by every search job (of every earlier index)."""
    frames = [pl.read_parquet(path) for path in pair_files]
    if not frames:
        return pl.DataFrame(schema=RELEASED_SCHEMA)
    return best_released(pl.concat(frames))


def build_index(
    folder: str | os.PathLike,
    uids: Sequence[str],
    vectors: np.ndarray,
    model: str | None,
    partitions: int,
    groups: int,
    seed: int = 1234,
) -> ReleaseIndex:
    """Every stage of writing an index in one process, through the files the jobs write (for
    tests and small releases); `vectors` split into 3 "shards"."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.asarray(vectors, dtype=np.float16)
    centroids = train_centroids(normalise(stored), partitions, seed)
    np.save(folder / "centroids.npy", centroids)
    assignments = []
    for k, rows in enumerate(np.array_split(np.arange(len(stored)), 3)):
        path = str(folder / f"assign-{k}.npz")
        write_index_assignment(path, [uids[r] for r in rows], stored[rows], centroids)
        assignments.append(path)
    counts = [
        write_index_group(folder / group_file(g), assignments, g, groups) for g in range(groups)
    ]
    for path in assignments:
        os.unlink(path)
    write_index_manifest(folder / "index.json", centroids, counts, model)
    return ReleaseIndex.open(folder)


def search_index(
    index: ReleaseIndex, uids: Sequence[str], vectors: np.ndarray, beta: float, workdir: str
) -> pl.DataFrame:
    """Every stage of searching an index in one process, through the jobs' files."""
    path = str(Path(workdir) / "released-assign.npz")
    write_assignment(path, list(uids), vectors, index.centroids(), beta)
    return best_released(
        pl.concat([released_pairs([path], index, g, beta) for g in range(index.groups)])
    )


def released_decisions(found: pl.DataFrame) -> pl.DataFrame:
    """Dedup decisions (danqing.dedup.CLUSTERS_SCHEMA plus `released_uid`) of the new rows that
    duplicate a released image: not kept, the released image as their representative."""
    return found.select(
        "uid",
        pl.lit(-1, dtype=pl.Int64).alias("cluster_id"),
        pl.lit(1, dtype=pl.Int64).alias("cluster_size"),
        pl.lit(False).alias("keep"),
        pl.col("released_uid").alias("representative_uid"),
        (1.0 - pl.col("similarity")).cast(pl.Float32).alias("distance_to_centroid"),
        "released_uid",
    ).cast({**CLUSTERS_SCHEMA, "released_uid": pl.String})


# --- the jobs of rules/dedup_index.smk ---------------------------------------------------------


def centroids_job(shards: Sequence[str], embeddings: Sequence[str], out: str, cfg: dict) -> int:
    """The index's centroids, trained on a sample of the released vectors; their number."""
    partitions = partitions_for(shard_row_count(shards), cfg["vectors_per_partition"])
    sample = sample_vectors(shards, embeddings, cfg["train_sample"], seed=cfg["seed"])
    if len(sample):
        centroids = train_centroids(sample, partitions, cfg["seed"])
    else:  # nothing released: one centroid, no vector will be in it
        dim = read_embeddings(embeddings[0]).image.shape[1] if embeddings else 1
        centroids = np.zeros((1, dim), np.float32)
    write_npy(out, centroids)
    return len(centroids)


def assign_job(shard: str, embeddings: str, centroids: str, out: str) -> int:
    """One released shard's vectors with their partition."""
    emb = read_shard_embeddings(shard, embeddings)
    return write_index_assignment(out, emb.uids, emb.image, np.load(centroids))


def manifest_job(centroids: str, group_files: Sequence[str], embeddings: Sequence[str], out: str):
    """index.json, from the centroids and the group files."""
    counts = []
    for path in group_files:
        with np.load(path) as data:
            counts.append(len(data["uids"]))
    model = embedding_model(embeddings)
    return write_index_manifest(out, np.load(centroids), counts, model)


def search_assign_job(shard: str, embeddings: str, index_folder: str, cfg: dict, out: str) -> dict:
    """A new shard's vectors assigned to the earlier index's partitions (boundary copies
    included, at most the cross-batch `partition_copies`), at the cross-batch beta."""
    index = ReleaseIndex.open(index_folder)
    emb = read_shard_embeddings(shard, embeddings)
    index.check_compatible(emb.model, emb.image.shape[1])
    beta = DedupSettings.from_config(cfg, emb.model).beta
    return write_assignment(
        out, emb.uids, emb.image, index.centroids(), beta, cfg["partition_copies"]
    )


def search_job(
    assignments: Sequence[str],
    embeddings: Sequence[str],
    index_folder: str,
    group: int,
    cfg: dict,
    pairs_out: str,
    stats_out: str,
) -> dict:
    """The released duplicates of the new vectors in one group of the index's partitions, and
    the search's measured recall in that group."""
    settings = DedupSettings.from_config(cfg, embedding_model(embeddings))
    index = ReleaseIndex.open(index_folder)
    found = released_pairs(assignments, index, group, settings.beta)
    stats = released_recall(assignments, index, group, found, settings)
    write_parquet(found, pairs_out)
    write_json(stats, stats_out)
    return stats
