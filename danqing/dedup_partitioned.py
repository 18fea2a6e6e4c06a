"""Semantic dedup spread over many jobs, each bounded in memory, with no pair within beta missed.

The single-job path (danqing/dedup.py) holds a batch's embeddings in one process: ~70 GB for the
paper's 45M images per batch. Here the work is split the way a cluster wants it:

1. `train_centroids`: k-means centroids of a sample of the batch (the coarse partition).
2. `assign_shard`, one job per embedding shard: each vector goes to its nearest centroid's
   partition (its *primary* partition) and is also copied to every other partition whose cell it
   could have a neighbour in: a pair within cosine distance beta lies within L2 distance
   eps = sqrt(2 beta) (unit vectors), and the cell of centroid c can only hold a point within eps
   of x if x lies within eps of the bisector of x's centroid p and c, that is
   (|x - c|^2 - |x - p|^2) / (2 |c - p|) <= eps. So every pair (x, y) is found in y's primary
   partition, where x is present: the search is exact, at any partition count. In high
   dimensions at beta 0.1 that bound copies a vector to most partitions (~10-20 on clustered
   768-d vectors), so `partition_copies` can cap the copies at the nearest bisectors: an
   approximate search whose pair recall is measured (below) and written with the results.
3. `partition_pairs`, one job per group of partitions: exact inner-product range search inside
   each partition, keeping the pairs with at least one primary member.
4. `merge`, one job: union-find over the uids that the pairs link (memory ~ those, not every
   vector: the other rows are sets of one, written as their files stream through), the member
   nearest each set's centroid kept, with the same tie-breaks as the single-job path, so both
   paths give the same decisions (tests/test_dedup_partitioned.py). The pair recall against brute
   force on sampled queries (straddling pairs included) is measured and written with the result.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from danqing.decisions import DecisionsWriter
from danqing.dedup import (
    CLUSTERS_SCHEMA,
    DedupSettings,
    nearest_members,
    normalise,
    union_find,
)
from danqing.io import (
    npz_memmap,
    shard_row_count,
    shard_uids,
    write_npz,
    write_parquet,
)

log = logging.getLogger("danqing")

# Floats per block of the assignment's distance matrix (rows x partitions): 64 MiB of float32.
ASSIGN_BLOCK_FLOATS = 16 * 2**20
# Rows of a shard compared with the recall queries at a time.
RECALL_CHUNK = 8_192
# Set members whose vectors the representatives' passes hold at a time (float64: 6 MiB per 1,024
# at 768 dimensions).
MEMBER_CHUNK = 4_096


def _assign_rows(centroids: np.ndarray) -> int:
    return max(256, ASSIGN_BLOCK_FLOATS // max(1, len(centroids)))


# Slack on the bisector test for float16 storage of the vectors.
EPS_MARGIN = 1.02
# Centroid sums of the near-duplicate sets held at once by the merge (float64).
SET_BLOCK_BYTES = 256 * 2**20


def sample_vectors(
    shards: Sequence[str], embeddings: Sequence[str], size: int, seed: int
) -> np.ndarray:
    """A uniform sample of about `size` of the vectors of the shards' rows (`embeddings[k]`
    holds shard k's), one shard at a time: memory ~ one shard and the sample."""
    from danqing.embed import read_embeddings

    if len(shards) != len(embeddings):
        raise ValueError(f"{len(shards)} shards for {len(embeddings)} embedding files")
    rng = np.random.default_rng(seed)
    share = min(1.0, size / max(1, shard_row_count(shards)))
    parts = []
    for shard, path in zip(shards, embeddings, strict=True):
        keep = shard_uids([shard])
        emb = read_embeddings(path)
        rows = np.fromiter((k for k, u in enumerate(emb.uids) if u in keep), np.int64)
        if len(rows):
            parts.append(np.asarray(emb.image[rows[rng.random(len(rows)) < share]]))
    x = np.concatenate(parts) if parts else np.zeros((0, 1), np.float16)
    return normalise(x) if len(x) else x


def train_centroids(
    x_sample: np.ndarray, partitions: int, seed: int = 1234, iterations: int = 20
) -> np.ndarray:
    """Spherical k-means centroids (float32 [partitions, dim], unit rows) of a sample of unit
    vectors. Any centroids keep the search exact; unit ones avoid a centroid near the origin,
    which (measured on clustered 768-d vectors, 100 partitions) lies within beta's reach of most
    vectors' cells and drew 74% of the copies under partition_copies: 0.68 of exact search's work
    instead of 0.03."""
    import faiss

    k = max(1, min(partitions, len(x_sample)))
    kmeans = faiss.Kmeans(
        x_sample.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=1 << 30,
    )
    kmeans.train(np.ascontiguousarray(x_sample, dtype=np.float32))
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def centroid_distances(block: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared L2 distances [rows, partitions] of a block of rows to every centroid."""
    c_norm = (centroids**2).sum(axis=1)
    return (block**2).sum(axis=1, keepdims=True) - 2.0 * block @ centroids.T + c_norm


def nearest_centroids(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The primary partition (nearest centroid) of every row of `x`, as `assign` finds it."""
    parts = [
        centroid_distances(x[start : start + step], centroids).argmin(axis=1)
        for step in [_assign_rows(centroids)]
        for start in range(0, len(x), step)
    ]
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)


def assign(
    x: np.ndarray, centroids: np.ndarray, beta: float, max_copies: int | None = None
) -> tuple[np.ndarray, ...]:
    """(row, partition, is_primary) of every copy of every row of `x`.

    `max_copies`: at most this many partitions per row (its primary and the nearest bisectors
    within eps): an approximate search whose pair recall is measured (`sampled_recall`); None:
    every partition the row could have a neighbour in (exact)."""
    eps = np.sqrt(2.0 * beta) * EPS_MARGIN
    c_norm = (centroids**2).sum(axis=1)
    # |c_i - c_j| for every pair of centroids, computed once.
    between = np.sqrt(
        np.maximum(c_norm[:, None] + c_norm[None, :] - 2.0 * centroids @ centroids.T, 0.0)
    )
    rows, parts, primary = [], [], []
    step = _assign_rows(centroids)
    for start in range(0, len(x), step):
        block = x[start : start + step]
        d = centroid_distances(block, centroids)
        p = d.argmin(axis=1)
        gap = between[p]
        with np.errstate(divide="ignore", invalid="ignore"):
            bisector = (d - d[np.arange(len(p)), p][:, None]) / (2.0 * gap)
        own = np.arange(len(centroids))[None, :] == p[:, None]
        near = (bisector <= eps) | own
        if max_copies is not None and max_copies < len(centroids):
            # Rank the partitions by bisector distance, the primary first; keep the nearest.
            rank = np.where(own, -np.inf, np.where(near, bisector, np.inf))
            nearest = np.argpartition(rank, max_copies - 1, axis=1)[:, :max_copies]
            kept = np.zeros_like(near)
            np.put_along_axis(kept, nearest, True, axis=1)
            near &= kept
        r, c = np.nonzero(near)
        rows.append(r.astype(np.int64) + start)
        parts.append(c.astype(np.int32))
        primary.append(c == p[r])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, bool)
    return np.concatenate(rows), np.concatenate(parts), np.concatenate(primary)


def write_assignment(
    path: str,
    uids: list[str],
    vectors: np.ndarray,
    centroids: np.ndarray,
    beta: float,
    max_copies: int | None = None,
) -> dict:
    """The partitions of one shard's vectors, with the vectors as stored (float16)."""
    stored = np.asarray(vectors, dtype=np.float16)
    x = normalise(stored) if len(stored) else stored
    rows, parts, primary = assign(x, centroids, beta, max_copies)
    uids = np.array(uids, dtype=np.str_)
    write_npz(path, uids=uids, vectors=stored, rows=rows, parts=parts, primary=primary)
    return {"rows": len(uids), "copies": int(len(rows))}


def _range_pairs(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of rows of `x` with inner product > threshold (FAISS flat range search:
    memory ~ the rows and the pairs found, not rows squared)."""
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, _, ids = index.range_search(x, threshold)
    i = np.repeat(np.arange(len(x)), np.diff(lims).astype(np.int64))
    j = ids.astype(np.int64)
    upper = i < j
    return i[upper], j[upper]


def group_copies(assignments: Sequence[str], group: int, groups: int):
    """(uids, vectors as stored, partition, is_primary) of every copy in the partitions p with
    p % groups == group, from every assignment file; None without files."""
    uids, vectors, parts, primary = [], [], [], []
    for path in assignments:
        with np.load(path) as data:
            mine = data["parts"] % groups == group
            rows = data["rows"][mine]
            uids.append(data["uids"][rows])
            vectors.append(data["vectors"][rows])
            parts.append(data["parts"][mine])
            primary.append(data["primary"][mine])
    if not uids:
        return None
    return tuple(np.concatenate(a) for a in (uids, vectors, parts, primary))


def partition_pairs(
    assignments: Sequence[str], group: int, groups: int, beta: float
) -> pl.DataFrame:
    """Pairs (uid_a < uid_b) within beta found in the partitions p with p % groups == group."""
    copies = group_copies(assignments, group, groups)
    if copies is None:
        return pl.DataFrame(schema={"uid_a": pl.String, "uid_b": pl.String})
    uids_all, x_all, parts_all, primary_all = copies
    # Held as stored (float16), sorted by partition; one partition at a time is normalised.
    order = np.argsort(parts_all, kind="stable")
    parts_all, uids_all, x_all = parts_all[order], uids_all[order], x_all[order]
    primary_all = primary_all[order]
    threshold = 1.0 - beta
    out_a, out_b = [], []
    starts = np.flatnonzero(np.r_[True, parts_all[1:] != parts_all[:-1]]) if len(order) else []
    for start, end in zip(starts, [*starts[1:], len(order)], strict=True):
        members = np.arange(start, end)
        i, j = _range_pairs(normalise(x_all[start:end]), threshold)
        useful = primary_all[members[i]] | primary_all[members[j]]
        a, b = uids_all[members[i[useful]]], uids_all[members[j[useful]]]
        swap = a > b
        out_a.append(np.where(swap, b, a))
        out_b.append(np.where(swap, a, b))
    if not out_a:
        return pl.DataFrame(schema={"uid_a": pl.String, "uid_b": pl.String})
    frame = pl.DataFrame(
        {"uid_a": np.concatenate(out_a).astype(str), "uid_b": np.concatenate(out_b).astype(str)},
        schema={"uid_a": pl.String, "uid_b": pl.String},
    )
    return frame.filter(pl.col("uid_a") != pl.col("uid_b")).unique(maintain_order=True)


def _uid_positions(sorted_uids: pl.Series, uids: np.ndarray) -> np.ndarray:
    """Per uid, its index in the sorted unique `sorted_uids`, -1 where absent."""
    if not sorted_uids.len() or not len(uids):
        return np.full(len(uids), -1, np.int64)
    wanted = pl.Series(uids, dtype=pl.String)
    pos = sorted_uids.search_sorted(wanted, side="left").cast(pl.Int64).to_numpy()
    pos = np.minimum(pos, sorted_uids.len() - 1)
    return np.where((sorted_uids.gather(pos) == wanted).to_numpy(), pos, -1)


def linked_pairs(pair_files: Sequence[str]) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """(the sorted uids that some pair holds, each distinct pair's two indices into them).

    The uids stay an Arrow string column (~28 bytes each; a NumPy unicode array of the
    workflow's 20-character uids takes 80), found by binary search, and repeated pairs are
    removed as integer keys: measured, half the peak of NumPy strings and a string unique()."""
    if not pair_files:
        return pl.Series("uid", [], pl.String), np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = pl.concat([pl.read_parquet(path, columns=["uid_a", "uid_b"]) for path in pair_files])
    linked = pl.concat([pairs["uid_a"], pairs["uid_b"]]).unique().sort().alias("uid")
    i = linked.search_sorted(pairs["uid_a"], side="left").cast(pl.Int64).to_numpy()
    j = linked.search_sorted(pairs["uid_b"], side="left").cast(pl.Int64).to_numpy()
    del pairs
    key = np.unique(i * linked.len() + j)
    return linked, key // linked.len(), key % linked.len()


def merge(
    assignments: Sequence[str],
    pair_files: Sequence[str],
    settings: DedupSettings,
    out: str,
    owners: Sequence[str | None] | None = None,
    extra_rows: pl.DataFrame | None = None,
) -> dict:
    """The dedup decisions (CLUSTERS_SCHEMA, the assignment files' primary rows in order, then
    `extra_rows`) from every partition's pairs, written to `out`; the run statistics.

    Memory ~ the uids that some pair links (union-find and representatives run over them only)
    and one assignment file: every other row is a set of its own, decided as its file streams
    into `out`. With `owners` (one per assignment file), an `owner_batch` column holds it."""
    started = time.perf_counter()
    linked, i, j = linked_pairs(pair_files)
    n_linked, n_pairs = linked.len(), len(i)
    n_rows = primary_count(assignments)
    recall = None
    if settings.recall_sample and n_rows:
        recall = sampled_recall(assignments, n_rows, linked, i, j, settings)
    labels = union_find(n_linked, i, j)
    del i, j  # the merge's largest arrays after the uids
    _, compact, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    del labels
    representative = np.arange(n_linked, dtype=np.int64)
    distance = np.zeros(n_linked, dtype=np.float64)
    if n_linked:
        # Spilled member vectors go beside the output: where the embeddings already fit.
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        representative, distance = streamed_representatives(
            assignments, linked, np.arange(n_linked), compact, spill_dir=str(Path(out).parent)
        )
    n_sets = len(sizes)
    seen = np.zeros(n_linked, np.int64)
    n = copies = kept = singles_before = 0
    extra = [
        c
        for c in (extra_rows.columns if extra_rows is not None else ())
        if c not in CLUSTERS_SCHEMA
    ]
    if owners is not None and "owner_batch" not in extra:
        extra.append("owner_batch")
    schema = {**CLUSTERS_SCHEMA, **dict.fromkeys(extra, pl.String)}
    with DecisionsWriter(out, schema) as writer:
        for k, path in enumerate(assignments):
            with np.load(path) as data:
                copies += len(data["rows"])
                uids = data["uids"][data["rows"][data["primary"]]].astype(str)
            if len(np.unique(uids)) != len(uids):
                raise ValueError(f"{path}: duplicate uids in the dedup input")
            pos = _uid_positions(linked, uids)
            member = pos >= 0
            np.add.at(seen, pos[member], 1)
            # Every row outside the sets is a set of its own, numbered after the linked sets.
            singles = n_sets + singles_before + np.cumsum(~member) - 1
            singles_before += int((~member).sum())
            if member.any():
                p = np.where(member, pos, 0)
                columns = {
                    "cluster_id": np.where(member, compact[p], singles),
                    "cluster_size": np.where(member, sizes[compact[p]], 1),
                    "keep": ~member | (representative[p] == p),
                    "representative_uid": np.where(
                        member, linked.gather(representative[p]).to_numpy(), uids
                    ),
                    "distance_to_centroid": np.where(member, distance[p], 0.0),
                }
            else:  # no row of the file is linked (none is when no pair was found at all)
                columns = {
                    "cluster_id": singles,
                    "cluster_size": np.ones(len(uids), np.int64),
                    "keep": np.ones(len(uids), bool),
                    "representative_uid": uids,
                    "distance_to_centroid": np.zeros(len(uids)),
                }
            frame = pl.DataFrame({"uid": uids, **columns})
            if owners is not None:
                frame = frame.with_columns(pl.lit(owners[k], dtype=pl.String).alias("owner_batch"))
            writer.write(frame)
            n += len(uids)
            kept += int(frame["keep"].sum())
        if (seen > 1).any():
            raise ValueError("duplicate uids in the dedup input (in two assignment files)")
        if (seen == 0).any():
            raise ValueError(
                f"{int((seen == 0).sum())} uids of the pairs are in no assignment file "
                "(pairs of another run?)"
            )
        if extra_rows is not None and extra_rows.height:
            writer.write(extra_rows, part=False)
    stats = {
        "input": n,
        "kept": kept,
        "removed": n - kept,
        "pairs": int(n_pairs),
        "linked": int(n_linked),
        "sets": int(n_sets),
        "beta": settings.beta,
        "index": "partitioned-flat",
        "copies_per_vector": round(copies / n, 3) if n else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if recall is not None:
        stats["recall"] = recall
    return stats


def _member_rows(
    assignments: Sequence[str], sorted_uids: pl.Series, member_of: np.ndarray, raw: bool = False
):
    """(member index, its vector normalised, float64; as stored with `raw`) of the set members
    among each assignment file's primary rows, MEMBER_CHUNK members at a time (the file's vectors
    are mapped, not loaded: a shard of a million rows would otherwise cost gigabytes here)."""
    for path in assignments:
        with np.load(path) as data:
            rows = data["rows"][data["primary"]]
            uids = data["uids"][rows].astype(str) if len(rows) else None
        if uids is None:
            continue
        pos = _uid_positions(sorted_uids, uids)
        found = np.where(pos >= 0, member_of[np.maximum(pos, 0)], -1)
        mine = np.flatnonzero(found >= 0)
        if not len(mine):
            continue
        vectors = npz_memmap(path, "vectors")
        for start in range(0, len(mine), MEMBER_CHUNK):
            chunk = mine[start : start + MEMBER_CHUNK]
            x = np.asarray(vectors[rows[chunk]])
            yield found[chunk], x if raw else normalise(x).astype(np.float64)


def streamed_representatives(
    assignments: Sequence[str],
    sorted_uids: pl.Series,
    members: np.ndarray,
    compact: np.ndarray,
    block_bytes: int | None = None,
    spill_dir: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`danqing.dedup.choose_representatives` of the set members (`members`: rows of
    `sorted_uids`, `compact`: their set 0..S-1), reading the vectors file by file instead of every
    member's at once: the centroid sums of a block of sets at a time (block_bytes of float64,
    default SET_BLOCK_BYTES). When the sets fill one block, two passes over the files; when they
    fill several, one pass copies each member's stored vector to its block's spill file (in
    `spill_dir`, default the system's temporary folder), and each block is then read from its own
    file: I/O ~ the members, not the blocks times the files. Returns (representative member,
    distance to the set's centroid) per member."""
    block_bytes = block_bytes or SET_BLOCK_BYTES
    member_of = np.full(sorted_uids.len(), -1, np.int64)
    member_of[members] = np.arange(len(members))
    n_sets = int(compact.max()) + 1 if len(compact) else 0
    dist = np.zeros(len(members), np.float64)
    if n_sets:
        dim = next(npz_memmap(path, "vectors").shape[1] for path in assignments)
        per_block = max(1, block_bytes // (dim * 8))
        if n_sets <= per_block:
            _block_distances(
                lambda: _member_rows(assignments, sorted_uids, member_of), compact, 0, n_sets, dist
            )
        else:
            with tempfile.TemporaryDirectory(prefix=".dedup-merge-", dir=spill_dir) as folder:
                spills = _spill_by_block(
                    _member_rows(assignments, sorted_uids, member_of, raw=True),
                    compact,
                    per_block,
                    Path(folder),
                )
                for block, (ids_path, vectors_path, dtype) in sorted(spills.items()):
                    lo, hi = block * per_block, min(n_sets, (block + 1) * per_block)
                    _block_distances(
                        lambda ids=ids_path, v=vectors_path, t=dtype: _spilled_rows(ids, v, t, dim),
                        compact,
                        lo,
                        hi,
                        dist,
                    )
    # `sorted_uids` is sorted: a member's row in it orders the ties as its uid would.
    return nearest_members(compact, dist, members), np.maximum(dist, 0.0)


def _block_distances(rows, compact: np.ndarray, lo: int, hi: int, dist: np.ndarray) -> None:
    """Fill `dist` for the members of sets lo..hi-1 from two passes over `rows()` (chunks of
    (member index, normalised float64 vector)): the sets' centroid sums, then each member's
    cosine distance to its set's normalised centroid."""
    sums = None
    for m, x in rows():
        if sums is None:
            sums = np.zeros((hi - lo, x.shape[1]), np.float64)
        inside = np.flatnonzero((compact[m] >= lo) & (compact[m] < hi))
        if not len(inside):
            continue
        sets = compact[m[inside]] - lo
        by_set = np.argsort(sets, kind="stable")
        sets = sets[by_set]
        starts = np.flatnonzero(np.r_[True, sets[1:] != sets[:-1]])
        sums[sets[starts]] += np.add.reduceat(x[inside[by_set]], starts, axis=0)
    if sums is None:
        return
    # In place: the block is the merge's largest array.
    sums /= np.linalg.norm(sums, axis=1, keepdims=True)
    for m, x in rows():
        inside = (compact[m] >= lo) & (compact[m] < hi)
        c = sums[compact[m[inside]] - lo]
        dist[m[inside]] = 1.0 - np.einsum("ij,ij->i", x[inside], c)


def _spill_by_block(chunks, compact: np.ndarray, per_block: int, folder: Path) -> dict:
    """Append each chunk's member indices and stored vectors to the files of their sets' blocks;
    {block: (indices file, vectors file, vector dtype)}."""
    spills: dict[int, tuple[Path, Path, np.dtype]] = {}
    for m, x in chunks:
        block = compact[m] // per_block
        order = np.argsort(block, kind="stable")
        block, m, x = block[order], m[order], x[order]
        starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
        for start, end in zip(starts, [*starts[1:], len(block)], strict=True):
            b = int(block[start])
            ids_path, vectors_path, _ = spills.setdefault(
                b, (folder / f"{b}.ids", folder / f"{b}.vectors", x.dtype)
            )
            with open(ids_path, "ab") as ids, open(vectors_path, "ab") as vectors:
                ids.write(m[start:end].astype(np.int64).tobytes())
                vectors.write(np.ascontiguousarray(x[start:end]).tobytes())
    return spills


def _spilled_rows(ids_path: Path, vectors_path: Path, dtype: np.dtype, dim: int):
    """(member index, normalised float64 vector) chunks of one block's spill files."""
    ids = np.fromfile(ids_path, np.int64)
    vectors = np.memmap(vectors_path, dtype, "r", shape=(len(ids), dim))
    for start in range(0, len(ids), MEMBER_CHUNK):
        chunk = np.asarray(vectors[start : start + MEMBER_CHUNK])
        yield ids[start : start + MEMBER_CHUNK], normalise(chunk).astype(np.float64)


def primary_count(assignments: Sequence[str]) -> int:
    """The rows of the assignment files (each vector once, in its own partition)."""
    total = 0
    for path in assignments:
        with np.load(path) as data:
            total += int(data["primary"].sum())
    return total


def query_rows(assignments: Sequence[str], picks: np.ndarray):
    """(uids, vectors) of the primary rows at positions `picks` (sorted) of the files' order."""
    uids, vectors, offset = [], [], 0
    for path in assignments:
        with np.load(path) as data:
            rows = data["rows"][data["primary"]]
            lo, hi = np.searchsorted(picks, [offset, offset + len(rows)])
            mine = rows[picks[lo:hi] - offset]
            if len(mine):
                uids.append(data["uids"][mine].astype(str))
                vectors.append(data["vectors"][mine])
            offset += len(rows)
    return np.concatenate(uids), np.concatenate(vectors)


def sample_queries(assignments: Sequence[str], n: int, size: int, seed: int):
    """(uids, vectors) of `size` primary rows (of the files' n) drawn with `seed`, the queries
    of a recall measurement; None when there are none."""
    picks = np.sort(np.random.default_rng(seed).choice(n, min(n, size), replace=False))
    return query_rows(assignments, picks) if len(picks) else None


def sampled_recall(
    assignments: Sequence[str],
    n: int,
    linked: pl.Series,
    i: np.ndarray,
    j: np.ndarray,
    settings: DedupSettings,
) -> dict:
    """Pair recall of the partitioned search against brute force on sampled queries (of the n
    primary rows), reading the vectors shard by shard (memory: the queries and one shard)."""
    q_uids, q_vectors = sample_queries(assignments, n, settings.recall_sample, settings.seed + 1)
    q = normalise(q_vectors)
    threshold = 1.0 - settings.beta
    exact = set()
    for path in assignments:
        with np.load(path) as data:
            rows = data["rows"][data["primary"]]
            u = data["uids"][rows].astype(str)
        vectors = npz_memmap(path, "vectors") if len(rows) else None
        for start in range(0, len(rows), RECALL_CHUNK):
            x = normalise(vectors[rows[start : start + RECALL_CHUNK]])
            a, b = np.nonzero(q @ x.T > threshold)
            b += start
            for qa, xb in zip(q_uids[a].tolist(), u[b].tolist(), strict=True):
                if qa != xb:
                    exact.add((min(qa, xb), max(qa, xb)))
    asked = np.unique(_uid_positions(linked, q_uids))
    near = np.isin(i, asked) | np.isin(j, asked)
    found_pairs = set(
        zip(
            linked.gather(i[near]).to_list(),
            linked.gather(j[near]).to_list(),
            strict=True,
        )
    )
    found = len(exact & found_pairs)
    return {
        "queries": int(len(q_uids)),
        "exact_pairs": len(exact),
        "found_pairs": found,
        "recall": found / len(exact) if exact else None,
    }


def dedup_partitioned(
    uids,
    vectors: np.ndarray,
    settings: DedupSettings,
    partitions: int,
    groups: int,
    workdir: str,
    max_copies: int | None = None,
) -> tuple[pl.DataFrame, dict]:
    """All four stages in one process, through the same files the jobs write (for tests and
    small inputs); `vectors` split into 3 "shards"."""
    uids = list(uids)
    stored = np.asarray(vectors, dtype=np.float16)
    centroids = train_centroids(normalise(stored), partitions, settings.seed)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    assignments = []
    for k, part in enumerate(np.array_split(np.arange(len(uids)), 3)):
        path = str(work / f"assign-{k}.npz")
        rows = [uids[r] for r in part]
        write_assignment(path, rows, stored[part], centroids, settings.beta, max_copies)
        assignments.append(path)
    pair_files = []
    for group in range(groups):
        path = str(work / f"pairs-{group}.parquet")
        write_parquet(partition_pairs(assignments, group, groups, settings.beta), path)
        pair_files.append(path)
    out = str(work / "clusters.parquet")
    stats = merge(assignments, pair_files, settings, out)
    return pl.read_parquet(out), stats
