"""Reading the final shards for a figure: columns shard by shard, seeded samples taken from every
shard in proportion to its rows, the final pairs' embeddings; the comparison dataset likewise."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import polars as pl

from danqing.vectors import l2_normalise

# Reading the shards


def iter_columns(paths: Sequence[str], columns: Sequence[str]) -> Iterator[pl.DataFrame]:
    """Each shard's `columns` that it has (a shard lacking all of them yields an empty frame)."""
    for path in paths:
        have = [c for c in columns if c in pl.read_parquet_schema(path)]
        yield pl.read_parquet(path, columns=have) if have else pl.DataFrame()


def shard_rows(paths: Sequence[str]) -> list[int]:
    return [pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths]


def sample_counts(rows: Sequence[int], n: int) -> list[int]:
    """How many rows to take from each shard: in proportion to its rows, summing to min(n, total)
    exactly (largest remainders get the leftover rows)."""
    total = sum(rows)
    if total <= n:
        return list(rows)
    exact = [r * n / total for r in rows]
    take = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(rows)), key=lambda i: (take[i] - exact[i], i))
    for i in order[: n - sum(take)]:
        take[i] += 1
    return take


def sample_frame(paths: Sequence[str], columns: Sequence[str], n: int, seed: int) -> pl.DataFrame:
    """A seeded random sample of at most `n` rows over all shards (shard order kept)."""
    rows = shard_rows(paths)
    rng = np.random.default_rng(seed)
    parts = []
    for path, r, k in zip(paths, rows, sample_counts(rows, n), strict=True):
        if k == 0:
            continue
        have = [c for c in columns if c in pl.read_parquet_schema(path)]
        frame = pl.read_parquet(path, columns=have)
        if k < r:
            frame = frame[np.sort(rng.choice(r, size=k, replace=False)).tolist()]
        parts.append(frame)
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    return pl.concat(parts, how="diagonal_relaxed")


def sample_rows_of(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    if frame.height <= n:
        return frame
    idx = np.sort(np.random.default_rng(seed).choice(frame.height, size=n, replace=False))
    return frame[idx.tolist()]


def read_compare(path: str, columns: Sequence[str] = ()) -> pl.DataFrame:
    """The comparison dataset: a Parquet file, a folder of them or a glob, with at least `url`
    and `alt_text`; `original_width/height` are accepted for `width/height`."""
    import glob

    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    else:
        files = sorted(glob.glob(path))
    if not files:
        raise FileNotFoundError(f"figures.compare.parquet: no Parquet file at {path}")
    frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    renames = {
        f"original_{c}": c
        for c in ("width", "height")
        if f"original_{c}" in frame.columns and c not in frame.columns
    }
    frame = frame.rename(renames)
    missing = [c for c in ("url", "alt_text") if c not in frame.columns]
    if missing:
        raise ValueError(f"comparison dataset {path} lacks column(s) {missing}")
    return frame.select([c for c in frame.columns if not columns or c in columns])


# Embeddings: Figs. 6 and 7, topics


def load_embeddings(
    npz_paths: Sequence[str], uids: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """uid, image (and text where stored) arrays of the per-shard .npz files, restricted to
    `uids` (the final kept pairs) and L2-normalised in float32."""
    from danqing.embed import read_embeddings

    keep = None if uids is None else set(uids)
    out: dict[str, list] = {"uid": [], "image": [], "text": []}
    has_text = True
    for path in npz_paths:
        emb = read_embeddings(path)
        uid = np.asarray(emb.uids, dtype=str)
        sel = np.ones(len(uid), dtype=bool) if keep is None else np.isin(uid, list(keep))
        out["uid"].append(uid[sel])
        out["image"].append(emb.image[sel])
        if emb.text is not None:
            out["text"].append(emb.text[sel])
        else:
            has_text = False
    if not out["uid"]:
        return {"uid": np.array([], dtype=str), "image": np.zeros((0, 0), np.float32)}
    result = {
        "uid": np.concatenate(out["uid"]),
        "image": l2_normalise(np.concatenate(out["image"])),
    }
    if has_text and out["text"]:
        result["text"] = l2_normalise(np.concatenate(out["text"]))
    return result


def embedding_matrix(frame: pl.DataFrame, column: str = "embeddings") -> np.ndarray:
    return l2_normalise(np.asarray(frame[column].to_list(), dtype=np.float32))


def compare_frame(cfg: dict, columns: Sequence[str] = ()) -> tuple[str, pl.DataFrame] | None:
    """(name, sampled frame) of `figures.compare`, or None when no comparison is configured."""
    spec = cfg["compare"]
    if not spec:
        return None
    frame = read_compare(spec["parquet"], columns)
    return spec["name"], sample_rows_of(frame, cfg["sample_rows"], cfg["seed"] + 1)


def final_uids(shards: Sequence[str]) -> list[str]:
    return [
        u for frame in iter_columns(shards, ["uid"]) if frame.height for u in frame["uid"].to_list()
    ]


def sample_matrix(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))]
