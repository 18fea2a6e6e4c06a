"""Perceptual and semantic redundancy removal (paper Sec. 3.2, step 3, and cross-batch removal).

Images whose embeddings are closer than cosine distance beta (0.1) are linked; the linked pairs
are merged into sets with union-find, and each set keeps only the image nearest to the set's
centroid (ties broken by the smaller uid). The same function serves the per-batch step and the
cross-batch step (over all batches' surviving vectors).

Neighbours are found on L2-normalised vectors (inner product = cosine similarity, so distance
< beta is similarity > 1 - beta):

- up to `exact_max` vectors: exact FAISS `IndexFlatIP` range search (BLAS); on a GPU (faiss
  built with GPU support and torch.cuda available) the flat index moves to the GPU, whose
  indexes have no range search: k-NN search with k doubled until the k-th neighbour is outside
  the radius gives the same pairs (`knn_range_pairs`);
- above: an inverted-file (IVF) self-join. FAISS k-means (spherical, inner product) makes
  `nlist` (default 2 sqrt(N)) lists; every vector is stored in the list of its nearest centroid and
  probes its `nprobe` nearest lists, exactly what `IndexIVFFlat` search with that nprobe
  compares. Instead of scanning list by list per query (measured: ~1 GMAC/s), the join
  multiplies, per list, all the vectors probing it with all its members in one matrix product
  (BLAS, or torch on the GPU when torch.cuda is available): the same pairs ~10x faster. The work
  is N * nprobe * N / nlist instead of N^2. The recall of its pairs against exact search is
  measured on sampled queries (`pair_recall`) and reported with the results.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from danqing.schema import schema_defaults
from danqing.vectors import l2_normalise

log = logging.getLogger("danqing")

CLUSTERS_SCHEMA = {
    "uid": pl.String,
    "cluster_id": pl.Int64,
    "cluster_size": pl.Int64,
    "keep": pl.Boolean,
    "representative_uid": pl.String,
    "distance_to_centroid": pl.Float32,
}
GPU_MAX_K = 2048  # faiss GPU k-selection limit


# The beta each embedder's scale calls for, used where the config leaves beta null. 0.1 is the
# paper's, for Chinese-CLIP ViT-L/14; the offline EfficientNet-Lite0's is calibrated on real
# images and their web copies (python -m danqing.evaluation.dedup_beta, docs/calibration.md).
MODEL_BETA = {"chinese-clip": 0.1, "efficientnet-lite0": 0.02}


def beta_for(configured: float | None, model: str) -> float:
    """The configured beta, or the embedding model's calibrated one (MODEL_BETA)."""
    if configured is not None:
        return float(configured)
    if model not in MODEL_BETA:
        raise ValueError(
            f"no calibrated beta for embedding model {model!r}: set "
            f"filters.semantic_dedup.beta (known: {sorted(MODEL_BETA)})"
        )
    return MODEL_BETA[model]


# The configurable settings' defaults, read from the schema ($defs/dedup): written once.
_DEFAULTS = schema_defaults("$defs", "dedup")


@dataclass(frozen=True)
class DedupSettings:
    """Config `filters.semantic_dedup` / `filters.cross_batch_dedup` (config/schema.yaml, which
    holds every default) that the search reads."""

    beta: float = MODEL_BETA["chinese-clip"]  # the paper's; a null in config: the model's
    exact_max: int = _DEFAULTS["exact_max"]
    nlist: int | None = _DEFAULTS["nlist"]  # None: 2 * sqrt(N)
    nprobe: int = _DEFAULTS["nprobe"]
    train_per_list: int = _DEFAULTS["train_per_list"]
    kmeans_iterations: int = _DEFAULTS["kmeans_iterations"]
    use_gpu: str = _DEFAULTS["use_gpu"]  # auto | never | always
    recall_sample: int = _DEFAULTS["recall_sample"]
    threads: int = _DEFAULTS["threads"]  # 0: faiss default (all cores)
    seed: int = _DEFAULTS["seed"]
    query_chunk: int = _DEFAULTS["query_chunk"]

    @classmethod
    def from_config(cls, cfg: dict | None, model: str | None = None) -> DedupSettings:
        """Settings from config; a null `beta` is the embedding `model`'s (MODEL_BETA)."""
        cfg = dict(cfg or {})
        known = {f: cfg[f] for f in cls.__dataclass_fields__ if f in cfg}
        if "beta" in known and known["beta"] is None:
            known["beta"] = beta_for(None, model) if model else cls.beta
        return cls(**known)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, unit rows (float16 storage is renormalised)."""
    x = l2_normalise(vectors)
    zero = ~x.any(axis=1)
    if zero.any():
        raise ValueError(f"{int(zero.sum())} all-zero embeddings cannot be compared")
    return x


# --- neighbours -----------------------------------------------------------------------------


def gpu_available(settings: DedupSettings) -> bool:
    if settings.use_gpu == "never":
        return False
    import faiss

    has_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if has_gpu:
        try:
            import torch

            has_gpu = torch.cuda.is_available()
        except ImportError:
            pass
    if settings.use_gpu == "always" and not has_gpu:
        raise RuntimeError("filters.*_dedup.use_gpu is 'always' but faiss sees no GPU")
    return has_gpu


def _to_gpu(index):
    import faiss

    resources = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(resources, 0, index)
    gpu_index.resources = resources  # keep them alive as long as the index
    return gpu_index


def default_nlist(n: int) -> int:
    """2 sqrt(N) lists (at least 39 training points each, FAISS's minimum).

    Measured on 1M clustered 768-d vectors, nprobe 8, one core (benchmarks/dedup.py): nlist 4000
    (4 sqrt(N)) took 368 s (k-means 207 s), nlist 2000 took 208 s (65 s), both with pair recall
    1.0; exact search would take ~24,000-30,000 s. k-means grows with nlist^2, the join only
    slowly with list size (larger matrix products run closer to peak).
    """
    return max(1, min(round(2 * math.sqrt(n)), n // 39))


def flat_index(x: np.ndarray, settings: DedupSettings, gpu: bool = False):
    """An exact inner-product FAISS index over `x` (unit rows), on the GPU if asked."""
    import faiss

    if settings.threads:
        faiss.omp_set_num_threads(settings.threads)
    index = faiss.IndexFlatIP(x.shape[1])
    if gpu:
        index = _to_gpu(index)
    index.add(x)
    return index


@dataclass
class InvertedLists:
    """An IVF partition of the rows of x: centroids, each row's list, and the probe width."""

    centroids: np.ndarray
    nprobe: int
    members: np.ndarray  # row ids sorted by list
    bounds: np.ndarray  # members[bounds[l]:bounds[l + 1]] are list l's rows

    @property
    def nlist(self) -> int:
        return len(self.centroids)


def train_lists(x: np.ndarray, settings: DedupSettings, gpu: bool = False) -> InvertedLists:
    """Spherical k-means centroids (FAISS) on a sample, and every row put in its nearest list."""
    import faiss

    if settings.threads:
        faiss.omp_set_num_threads(settings.threads)
    n, d = x.shape
    nlist = min(settings.nlist or default_nlist(n), n)
    rng = np.random.default_rng(settings.seed)
    n_train = min(n, nlist * settings.train_per_list)
    sample = x if n_train == n else x[np.sort(rng.choice(n, n_train, replace=False))]
    kmeans = faiss.Kmeans(
        d,
        nlist,
        niter=settings.kmeans_iterations,
        spherical=True,
        seed=settings.seed,
        gpu=gpu,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=settings.train_per_list,
    )
    kmeans.train(np.ascontiguousarray(sample))
    centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    nearest = probe_lists(x, centroids, 1, settings)[:, 0]
    members = np.argsort(nearest, kind="stable")
    bounds = np.searchsorted(nearest[members], np.arange(nlist + 1))
    return InvertedLists(centroids, min(settings.nprobe, nlist), members, bounds)


def probe_lists(
    x: np.ndarray, centroids: np.ndarray, nprobe: int, settings: DedupSettings
) -> np.ndarray:
    """The `nprobe` nearest centroids (inner product) of each row: int64 [N, nprobe]."""
    quantizer = flat_index(centroids, settings)
    out = np.empty((x.shape[0], nprobe), dtype=np.int64)
    for start in range(0, x.shape[0], settings.query_chunk):
        _, ids = quantizer.search(x[start : start + settings.query_chunk], nprobe)
        out[start : start + len(ids)] = ids
    return out


def _matmul_backend(gpu: bool):
    if gpu:
        import torch

        def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            ta = torch.from_numpy(a).cuda()
            tb = torch.from_numpy(b).cuda()
            return (ta @ tb.T).cpu().numpy()

        return product
    return lambda a, b: a @ b.T


def ivf_join(
    x: np.ndarray,
    lists: InvertedLists,
    threshold: float,
    settings: DedupSettings,
    query_ids: np.ndarray | None = None,
    gpu: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (query, member) with inner product > threshold among the lists each query probes.

    Per list: (queries probing it) x (its members) as one matrix product, in row blocks of at
    most ~16M similarities.
    """
    query_ids = np.arange(x.shape[0], dtype=np.int64) if query_ids is None else query_ids
    probes = probe_lists(x[query_ids], lists.centroids, lists.nprobe, settings).ravel()
    by_list = np.argsort(probes, kind="stable")
    query_bounds = np.searchsorted(probes[by_list], np.arange(lists.nlist + 1))
    query_rows = query_ids[by_list // lists.nprobe]
    product = _matmul_backend(gpu)

    def join_list(list_id: int) -> tuple[np.ndarray, np.ndarray]:
        members = lists.members[lists.bounds[list_id] : lists.bounds[list_id + 1]]
        queries = query_rows[query_bounds[list_id] : query_bounds[list_id + 1]]
        if not len(members) or not len(queries):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        database = x[members]
        block = max(1, (1 << 24) // len(members))
        found_i, found_j = [], []
        for start in range(0, len(queries), block):
            rows = queries[start : start + block]
            hit_q, hit_m = np.nonzero(product(x[rows], database) > threshold)
            found_i.append(rows[hit_q])
            found_j.append(members[hit_m].astype(np.int64))
        return np.concatenate(found_i), np.concatenate(found_j)

    # One list per thread, each with a single-threaded BLAS: the gathers, comparisons and
    # nonzero around the product are single-threaded, so a multi-threaded BLAS inside one list
    # left the other cores idle most of the time (1.17x on 2 cores, benchmarks/scaling.py).
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    threads = 1 if gpu else settings.threads or os.cpu_count() or 1
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        joined = list(pool.map(join_list, range(lists.nlist)))
    out_i = [np.zeros(0, np.int64), *(i for i, _ in joined)]
    out_j = [np.zeros(0, np.int64), *(j for _, j in joined)]
    return np.concatenate(out_i), np.concatenate(out_j)


def range_pairs(
    index, queries: np.ndarray, query_ids: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (query id, neighbour id) with inner product > threshold, by range search."""
    lims, _, ids = index.range_search(queries, threshold)
    counts = np.diff(lims).astype(np.int64)
    return np.repeat(query_ids, counts), ids.astype(np.int64)


def knn_range_pairs(
    index,
    queries: np.ndarray,
    query_ids: np.ndarray,
    threshold: float,
    k0: int = 32,
    k_max: int = GPU_MAX_K,
    fallback=None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of a range search, from k-NN searches (GPU indexes have no range search).

    A query whose k-th neighbour is still inside the radius is searched again with 2k; past
    `k_max` (the GPU limit) it goes to `fallback` (a CPU index with range search).
    """
    ntotal = index.ntotal
    out_i, out_j = [], []
    pending = np.arange(len(queries))
    k = min(k0, ntotal)
    while len(pending):
        sims, ids = index.search(queries[pending], k)
        full = (sims[:, -1] > threshold) & (ids[:, -1] >= 0) & (k < ntotal)
        done = ~full
        mask = (sims[done] > threshold) & (ids[done] >= 0)
        rows = np.repeat(query_ids[pending[done]], mask.sum(axis=1))
        out_i.append(rows)
        out_j.append(ids[done][mask].astype(np.int64))
        pending = pending[full]
        if not len(pending):
            break
        if 2 * k > k_max:
            if fallback is None:
                raise RuntimeError(
                    f"{len(pending)} queries have more than {k_max} neighbours "
                    "and no index with range search was given"
                )
            i, j = range_pairs(fallback, queries[pending], query_ids[pending], threshold)
            out_i.append(i)
            out_j.append(j)
            break
        k = min(2 * k, ntotal)
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_i), np.concatenate(out_j)


def neighbour_pairs(
    x: np.ndarray, settings: DedupSettings, exact: bool | None = None
) -> tuple[np.ndarray, np.ndarray, dict, InvertedLists | None]:
    """All pairs i < j of unit rows with cosine distance < beta.

    Returns (i, j, search description, the inverted lists when IVF was used).
    """
    n = x.shape[0]
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), {"index": "none"}, None
    exact = n <= settings.exact_max if exact is None else exact
    gpu = gpu_available(settings)
    threshold = 1.0 - settings.beta
    lists = None
    if exact:
        index = flat_index(x, settings, gpu)
        cpu_fallback = flat_index(x, settings) if gpu else None
        parts_i, parts_j = [], []
        for start in range(0, n, settings.query_chunk):
            ids = np.arange(start, min(n, start + settings.query_chunk), dtype=np.int64)
            queries = x[start : start + len(ids)]
            if gpu:
                i, j = knn_range_pairs(index, queries, ids, threshold, fallback=cpu_fallback)
            else:
                i, j = range_pairs(index, queries, ids, threshold)
            parts_i.append(i)
            parts_j.append(j)
        i, j = np.concatenate(parts_i), np.concatenate(parts_j)
        info = {"index": "flat-" + ("gpu" if gpu else "cpu")}
    else:
        started = time.perf_counter()
        lists = train_lists(x, settings, gpu)
        trained = time.perf_counter() - started
        i, j = ivf_join(x, lists, threshold, settings, gpu=gpu)
        info = {
            "index": "ivf-" + ("gpu" if gpu else "cpu"),
            "nlist": lists.nlist,
            "nprobe": lists.nprobe,
            "train_seconds": round(trained, 3),
            "join_seconds": round(time.perf_counter() - started - trained, 3),
        }
    # Each pair once as (smaller, larger), without self pairs: the IVF join may find a pair
    # from either end (or only one), exact search always finds it from both.
    distinct = i != j
    lo, hi = np.minimum(i, j)[distinct], np.maximum(i, j)[distinct]
    key = np.unique(lo * n + hi)
    return key // n, key % n, info, lists


# --- sets -----------------------------------------------------------------------------------


def union_find(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Set label (the smallest member index) of each of n items, given linked pairs (i, j).

    Union-find with union by minimum and full path compression, vectorised over all pairs at
    once: each round hooks every pair's larger root under the smaller root, then compresses
    every path to its root; rounds repeat until no pair spans two roots (O(log n) rounds).
    """
    parent = np.arange(n, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    while True:
        ri, rj = parent[i], parent[j]
        differ = ri != rj
        if not differ.any():
            return parent
        lo, hi = np.minimum(ri, rj)[differ], np.maximum(ri, rj)[differ]
        np.minimum.at(parent, hi, lo)  # union: hook the larger root under the smaller
        while True:  # find with full path compression
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def choose_representatives(
    x: np.ndarray, labels: np.ndarray, uids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per set, the member nearest to the set's centroid (ties: smaller uid).

    Returns (representative row of each item's set, cosine distance of each item to its set's
    normalised centroid; 0 for singletons).
    """
    n = len(labels)
    distance = np.zeros(n, dtype=np.float64)
    representative = np.arange(n, dtype=np.int64)
    sizes = np.bincount(labels, minlength=n)
    members = np.flatnonzero(sizes[labels] > 1)
    if not len(members):
        return representative, distance
    order = members[np.argsort(labels[members], kind="stable")]
    set_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, set_labels[1:] != set_labels[:-1]])
    sums = np.add.reduceat(x[order].astype(np.float64), starts, axis=0)
    centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    set_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
    dist = 1.0 - np.einsum("ij,ij->i", x[order].astype(np.float64), centroids[set_of])
    distance[order] = np.maximum(dist, 0.0)
    representative[order] = order[nearest_members(set_of, dist, uids[order])]
    return representative, distance


def nearest_members(sets: np.ndarray, dist: np.ndarray, uids: np.ndarray) -> np.ndarray:
    """Per member (of sets 0..S-1, each present), the member of its set first by (distance to
    the centroid, uid): its set's representative."""
    rank = np.lexsort((uids, dist, sets))
    firsts = rank[np.r_[True, sets[rank][1:] != sets[rank][:-1]]]
    return firsts[sets]


def decisions_frame(
    sorted_uids: np.ndarray,
    labels: np.ndarray,
    sizes: np.ndarray,
    representative: np.ndarray,
    distance: np.ndarray,
    order: np.ndarray,
) -> pl.DataFrame:
    """The decisions (CLUSTERS_SCHEMA) of rows decided in uid order (`order` sorts the input),
    returned in input order."""
    frame = pl.DataFrame(
        {
            "uid": sorted_uids.tolist(),
            "cluster_id": labels,
            "cluster_size": sizes,
            "keep": representative == np.arange(len(labels)),
            "representative_uid": sorted_uids[representative].tolist(),
            "distance_to_centroid": distance.astype(np.float32),
        },
        schema=CLUSTERS_SCHEMA,
    )
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return frame.select(pl.all().gather(inverse))


def dedup(
    uids, vectors: np.ndarray, settings: DedupSettings = DedupSettings(), exact: bool | None = None
) -> tuple[pl.DataFrame, dict]:
    """Decide which rows to keep: a frame (CLUSTERS_SCHEMA, input order) and run statistics."""
    started = time.perf_counter()
    uids = np.asarray(list(uids), dtype=object)
    if len(uids) != len(vectors):
        raise ValueError(f"{len(uids)} uids for {len(vectors)} embeddings")
    if len(set(uids.tolist())) != len(uids):
        raise ValueError("duplicate uids in the dedup input")
    n = len(uids)
    if n == 0:
        return pl.DataFrame(schema=CLUSTERS_SCHEMA), {
            "input": 0,
            "kept": 0,
            "removed": 0,
            "pairs": 0,
            "sets": 0,
            "index": "none",
        }
    # Decide on the rows in uid order, so that the decisions (cluster ids, the IVF training sample)
    # do not depend on the order the images arrived in; the frame is returned in input order.
    order = np.argsort(uids.astype(str), kind="stable")
    uids = uids[order]
    x = normalise(np.asarray(vectors)[order])
    i, j, info, lists = neighbour_pairs(x, settings, exact)
    labels = union_find(n, i, j)
    representative, distance = choose_representatives(x, labels, uids.astype(str))
    sizes = np.bincount(labels, minlength=n)[labels]
    keep = representative == np.arange(n)
    frame = decisions_frame(uids, labels, sizes, representative, distance, order)
    stats = {
        "input": n,
        "kept": int(keep.sum()),
        "removed": int(n - keep.sum()),
        "pairs": int(len(i)),
        "sets": int((np.bincount(labels, minlength=n) > 1).sum()),
        "beta": settings.beta,
        **info,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if lists is not None and settings.recall_sample:
        stats["recall"] = pair_recall(x, lists, settings)
    return frame, stats


def pair_recall(
    x: np.ndarray, lists: InvertedLists, settings: DedupSettings, sample: int | None = None
) -> dict:
    """Recall of the IVF join's pairs against exact search, on uniformly sampled queries.

    For each sampled query, the exact pairs (against all rows, brute force) and the IVF pairs
    found from that query (its probed lists) are compared: a lower bound of the join's recall,
    which also finds a pair from its other end. Reported with the number of exact pairs it rests on and both
    query times (the exact time extrapolates to an exact run over all rows).
    """
    n = x.shape[0]
    sample = min(n, sample or settings.recall_sample)
    rng = np.random.default_rng(settings.seed + 1)
    query_ids = np.sort(rng.choice(n, sample, replace=False)).astype(np.int64)
    threshold = 1.0 - settings.beta
    started = time.perf_counter()
    exact_i, exact_j = exact_pairs(x, query_ids, threshold)
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    approx_i, approx_j = ivf_join(x, lists, threshold, settings, query_ids=query_ids)
    approx_s = time.perf_counter() - started
    exact_set = {(a, b) for a, b in zip(exact_i.tolist(), exact_j.tolist(), strict=True) if a != b}
    approx_set = {
        (a, b) for a, b in zip(approx_i.tolist(), approx_j.tolist(), strict=True) if a != b
    }
    found = len(exact_set & approx_set)
    return {
        "queries": int(sample),
        "exact_pairs": len(exact_set),
        "found_pairs": found,
        "recall": found / len(exact_set) if exact_set else None,
        "exact_query_seconds": round(exact_s, 4),
        "ivf_query_seconds": round(approx_s, 4),
    }


def exact_pairs(
    x: np.ndarray, query_ids: np.ndarray, threshold: float, chunk: int = 131_072
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force (BLAS) pairs of the queries with inner product > threshold, without copying
    `x` into an index."""
    queries = x[query_ids]
    out_i, out_j = [], []
    for start in range(0, x.shape[0], chunk):
        sims = queries @ x[start : start + chunk].T
        rows, cols = np.nonzero(sims > threshold)
        out_i.append(query_ids[rows])
        out_j.append(cols.astype(np.int64) + start)
    return np.concatenate(out_i), np.concatenate(out_j)


def collect_embeddings(paths, keep=None) -> tuple[list[str], np.ndarray, str | None]:
    """The image embeddings of several shard files (danqing.embed.write_embeddings), restricted
    to the uids in `keep` when given (e.g. the rows that survived the steps before), as
    (uids, float16 [N, D], the embedding model's name) ready for `dedup`."""
    from danqing.embed import read_embeddings

    keep = None if keep is None else set(keep)
    uids: list[str] = []
    parts: list[np.ndarray] = []
    models: set[str] = set()
    seen: set[str] = set()
    for path in paths:
        emb = read_embeddings(path)
        models.add(emb.model)
        # A uid that two batches hold (the same pair crawled twice) is taken once, from the
        # first file that has it.
        rows = np.fromiter(
            (k for k, u in enumerate(emb.uids) if (keep is None or u in keep) and u not in seen),
            dtype=np.int64,
        )
        seen.update(emb.uids[k] for k in rows.tolist())
        uids.extend(emb.uids[k] for k in rows.tolist())
        parts.append(np.asarray(emb.image[rows], dtype=np.float16))
    if keep is not None and len(uids) != len(keep):
        missing = sorted(keep - set(uids))
        raise KeyError(f"no embedding for {len(missing)} of the kept uids, e.g. {missing[:3]}")
    if len(models) > 1:
        raise ValueError(f"embeddings of different models cannot be compared: {sorted(models)}")
    dim = parts[0].shape[1] if parts else 0
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float16)
    return uids, vectors, next(iter(models), None)


def settings_dict(settings: DedupSettings) -> dict:
    return asdict(settings)
