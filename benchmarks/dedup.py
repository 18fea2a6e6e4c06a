"""Near-duplicate search at scale: IVF (the dedup default above exact_max) against exact search.

Synthetic clustered embeddings (unit vectors, dim 768 by default): topics (unrelated images are
not orthogonal in real embedding spaces), photos around the topics, and for 20% of the photos
1-4 near duplicates at cosine distances spread over 0.005..0.15, so that pairs lie on both sides
of beta = 0.1. For each size it reports:

  - IVF: k-means training + list assignment ("build") and the full self-join over the probed
    lists ("search"), i.e. what `danqing.dedup.dedup` runs above exact_max;
  - exact: brute-force (BLAS) range search for a sample of queries, extrapolated to all N;
  - pair recall of IVF against exact on those sampled queries (pairs found from the query's
    side only: a lower bound), the speed-up, and memory.

    python -m benchmarks.dedup [--quick] [--sizes 100000 1000000] [--dim 768] [--nprobe 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from danqing.dedup import DedupSettings, default_nlist, exact_pairs, ivf_join, train_lists


def clustered_embeddings(
    n: int, dim: int, seed: int = 0, dup_share: float = 0.2, chunk: int = 65_536
) -> np.ndarray:
    """n unit vectors: photos around topics, plus near-duplicate groups (see module doc)."""
    rng = np.random.default_rng(seed)
    n_topics = max(64, n // 2000)
    topics = rng.standard_normal((n_topics, dim), dtype=np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    filled = 0
    while filled < n:
        m = min(chunk, n - filled)
        # Photos: cosine ~0.55 to their topic (two photos of a topic ~0.3 to each other).
        base = rng.standard_normal((m, dim), dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        base += 1.2 * topics[rng.integers(0, n_topics, m)]
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        # Near duplicates: copies of the preceding photo with noise of norm s, cosine distance
        # 1 - 1/sqrt(1 + s^2) drawn from 0.005 .. 0.15.
        is_dup = rng.random(m) < dup_share
        is_dup[0] = False
        source = np.where(is_dup, -1, np.arange(m))
        source = np.maximum.accumulate(source)  # each duplicate copies the last original
        distance = rng.uniform(0.005, 0.15, m).astype(np.float32)
        scale = np.sqrt(1.0 / (1.0 - distance) ** 2 - 1.0)
        noise = rng.standard_normal((m, dim), dtype=np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        block = np.where(is_dup[:, None], base[source] + scale[:, None] * noise, base)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[filled : filled + m] = block
        filled += m
    return out


def peak_rss_gib() -> float:
    from benchmarks.harness import peak_rss_mib

    return peak_rss_mib() / 1024


def run_size(
    n: int,
    dim: int,
    nprobe: int,
    sample: int,
    beta: float = 0.1,
    nlist: int | None = None,
    threads: int = 0,
) -> dict:
    x = clustered_embeddings(n, dim)
    threshold = 1.0 - beta
    settings = DedupSettings(
        beta=beta, nprobe=nprobe, nlist=nlist, use_gpu="never", threads=threads
    )
    rng = np.random.default_rng(1)
    queries = np.sort(rng.choice(n, min(sample, n), replace=False)).astype(np.int64)

    started = time.perf_counter()
    exact_i, exact_j = exact_pairs(x, queries, threshold)
    exact_sample_s = time.perf_counter() - started
    exact_full_s = exact_sample_s * n / len(queries)

    started, cpu_started = time.perf_counter(), time.process_time()
    lists = train_lists(x, settings)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    i, j = ivf_join(x, lists, threshold, settings)
    search_s = time.perf_counter() - started
    ivf_cpu_s = time.process_time() - cpu_started  # all FAISS threads: core-seconds
    pairs = len(np.unique(np.minimum(i, j)[i != j] * n + np.maximum(i, j)[i != j]))
    approx_i, approx_j = ivf_join(x, lists, threshold, settings, query_ids=queries)

    exact_set = {(a, b) for a, b in zip(exact_i.tolist(), exact_j.tolist(), strict=True) if a != b}
    approx_set = {
        (a, b) for a, b in zip(approx_i.tolist(), approx_j.tolist(), strict=True) if a != b
    }
    recall = len(exact_set & approx_set) / max(len(exact_set), 1)
    ivf_s = build_s + search_s
    return {
        "n": n,
        "dim": dim,
        "nlist": lists.nlist,
        "nprobe": lists.nprobe,
        "ivf_build_s": build_s,
        "ivf_search_s": search_s,
        "ivf_total_s": ivf_s,
        "ivf_cpu_s": ivf_cpu_s,
        "exact_estimate_s": exact_full_s,
        "speedup": exact_full_s / ivf_s,
        "recall": recall,
        "sample_queries": len(queries),
        "sample_exact_pairs": len(exact_set),
        "pairs_found": pairs,
        "vectors_gib": x.nbytes / 2**30,
        "peak_rss_gib": peak_rss_gib(),
    }


def print_row(r: dict) -> None:
    print(
        f"N={r['n']:>9,} dim={r['dim']} nlist={r['nlist']} nprobe={r['nprobe']}: "
        f"IVF {r['ivf_total_s']:.1f}s (build {r['ivf_build_s']:.1f}s + search "
        f"{r['ivf_search_s']:.1f}s), exact ~{r['exact_estimate_s']:.1f}s (from "
        f"{r['sample_queries']} queries) -> speed-up {r['speedup']:.1f}x; pair recall "
        f"{r['recall']:.4f} on {r['sample_exact_pairs']} exact pairs; {r['pairs_found']:,} "
        f"pairs; vectors {r['vectors_gib']:.2f} GiB, peak RSS {r['peak_rss_gib']:.2f} GiB",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[DedupSettings.nprobe])
    parser.add_argument("--nlist", type=int, default=None)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="40k vectors of dim 256 (< 30 s)")
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (0: all cores)")
    args = parser.parse_args()
    sizes, dim = ([40_000], 256) if args.quick else (args.sizes, args.dim)
    for size in sizes:
        for nprobe in args.nprobe:
            nlist = args.nlist or default_nlist(size)
            print_row(run_size(size, dim, nprobe, args.sample, nlist=nlist, threads=args.threads))
