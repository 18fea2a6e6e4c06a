"""Partitioned semantic dedup through Snakemake jobs, each within a memory budget.

Writes N clustered unit vectors (benchmarks/dedup.py's generator: topics, photos, 20% near
duplicates spread over cosine distance 0.005..0.15) as one batch of embedding shards, with a
partition checkpoint that looks done (benchmarks/dag_scale.py), and runs the workflow's own
partitioned dedup rules on them (`--allowed-rules`: dedup_centroids, dedup_assign,
dedup_partition_pairs, semantic_dedup_clusters; the shards and embeddings stand in for the steps
before). Reports every job's peak RSS (Snakemake's benchmark files) against the budget, the wall
time, the pair recall the merge measured against brute force on sampled queries, and the speed-up
over exact search (brute force on a sample of queries, extrapolated to all N, as core-seconds
against the jobs' summed CPU seconds).

    python -m benchmarks.dedup_jobs                    # 2,000,000 x 768, budget 1.5 GiB
    python -m benchmarks.dedup_jobs --vectors 200000   # smaller
    python -m benchmarks.dedup_jobs --quick            # 20,000 (tests/test_benchmarks.py)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from benchmarks.dag_scale import ROOT, make_workdir
from benchmarks.dedup import clustered_embeddings
from danqing.dedup import exact_pairs
from danqing.embed import Embeddings, write_embeddings
from danqing.io import write_parquet

RULES = ("dedup_centroids", "dedup_assign", "dedup_partition_pairs", "semantic_dedup_clusters")
BETA = 0.1
SHARD_VECTORS = 50_000
# Vectors per partition (the search job's matrix products are partitions of this size).
PARTITION_VECTORS = 2_000


def write_inputs(workdir: Path, n: int, dim: int, shard_vectors: int) -> np.ndarray:
    """The embedding shards (and their step shards) of one batch; returns a sample of queries'
    vectors for the exact estimate (every 1 in 1,000 vectors)."""
    shards = max(1, -(-n // shard_vectors))
    make_workdir(workdir, shards, shard_vectors, batches=1)
    x = clustered_embeddings(n, dim)
    old = time.time() - 1800
    for k in range(shards):
        rows = slice(k * shard_vectors, min(n, (k + 1) * shard_vectors))
        uids = [f"v{r:019d}" for r in range(rows.start, rows.stop)]
        shard = workdir / f"results/steps/download_images/b1/s{k:05d}.parquet"
        write_parquet(pl.DataFrame({"uid": uids, "batch": ["b1"] * len(uids)}), shard)
        emb = workdir / f"results/embeddings/b1/s{k:05d}.npz"
        write_embeddings(Embeddings(uids, x[rows].astype(np.float16), None, "bench"), emb)
        for path in (shard, emb):
            os.utime(path, (old, old))
    return x


def bench_config(workdir: Path, partitions: int, jobs: int, copies: int | None) -> Path:
    config = yaml.safe_load((workdir / "config" / "bench.yaml").read_text())
    config["steps"] = ["download_images", "semantic_dedup"]
    config["filters"]["semantic_dedup"].update(
        {
            "beta": BETA,
            "partitions": partitions,
            "partition_jobs": jobs,
            "partition_copies": copies,
            "train_sample": 100_000,
            "recall_sample": 2_000,
            "use_gpu": "never",
        }
    )
    path = workdir / "config" / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_jobs(workdir: Path, config: Path, cores: int) -> float:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(cores),
        "--allowed-rules",
        *RULES,
        "--directory",
        str(workdir),
        "--snakefile",
        str(workdir / "Snakefile"),
        "results/dedup/semantic/b1.parquet",
        "--configfile",
        str(config),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return time.perf_counter() - started


def job_table(workdir: Path) -> pl.DataFrame:
    """rule, job, peak RSS (MiB) and CPU seconds of every job (Snakemake's benchmark files)."""
    rows = []
    for path in sorted(glob.glob(str(workdir / "results/benchmarks/**/*.tsv"), recursive=True)):
        rule = Path(path).relative_to(workdir / "results/benchmarks").parts[0]
        if rule not in RULES:
            continue
        table = pl.read_csv(path, separator="\t")
        rows.append(
            {
                "rule": rule,
                "job": Path(path).stem,
                "max_rss_mib": float(table["max_rss"][0]),
                "cpu_s": float(table["cpu_time"][0]),
                "wall_s": float(table["s"][0]),
            }
        )
    return pl.DataFrame(rows)


def exact_core_seconds(x: np.ndarray, sample: int = 1_000) -> float:
    """Brute-force range search of `sample` queries against all, single-threaded (BLAS pinned
    to one thread), extrapolated to every vector: core-seconds of an exact run."""
    from threadpoolctl import threadpool_limits

    queries = np.arange(0, len(x), max(1, len(x) // sample))[:sample]
    with threadpool_limits(1):
        started = time.process_time()
        exact_pairs(x, queries, 1.0 - BETA)
        seconds = time.process_time() - started
    return seconds * len(x) / len(queries)


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="dq-dedup-jobs-") as tmp:
        workdir = Path(args.out or tmp) / "wf"
        x = write_inputs(workdir, args.vectors, args.dim, args.shard_vectors)
        partitions = args.partitions or max(2, args.vectors // PARTITION_VECTORS)
        config = bench_config(workdir, partitions, args.jobs, args.copies)
        wall = run_jobs(workdir, config, args.cores)
        jobs = job_table(workdir)
        stats = json.loads((workdir / "results/dedup/semantic/b1.json").read_text())
        exact = exact_core_seconds(x)
    budget_mib = args.budget_gib * 1024
    largest = jobs.sort("max_rss_mib", descending=True).row(0, named=True)
    cpu = float(jobs["cpu_s"].sum())
    result = {
        "vectors": args.vectors,
        "dim": args.dim,
        "partitions": partitions,
        "partition_jobs": args.jobs,
        "partition_copies": args.copies,
        "copies_per_vector": stats.get("copies_per_vector"),
        "jobs": jobs.height,
        "wall_s": round(wall, 1),
        "jobs_cpu_s": round(cpu, 1),
        "exact_core_s_estimate": round(exact, 1),
        "speedup_over_exact": round(exact / cpu, 1) if cpu else None,
        "pair_recall": (stats.get("recall") or {}).get("recall"),
        "recall_exact_pairs": (stats.get("recall") or {}).get("exact_pairs"),
        "removed": stats["removed"],
        "linked": stats.get("linked"),
        "largest_job": f"{largest['rule']}/{largest['job']}",
        "largest_rss_mib": largest["max_rss_mib"],
        "budget_mib": budget_mib,
        "within_budget": bool((jobs["max_rss_mib"] <= budget_mib).all()),
        "by_rule": jobs.group_by("rule", maintain_order=True)
        .agg(
            pl.len().alias("jobs"),
            pl.col("max_rss_mib").max().alias("max_rss_mib"),
            pl.col("cpu_s").sum().round(1).alias("cpu_s"),
        )
        .to_dicts(),
    }
    print_result(result)
    return result


def print_result(r: dict) -> None:
    print(
        f"{r['vectors']:,} x {r['dim']}: {r['partitions']} partitions, {r['partition_jobs']} "
        f"search jobs, copies {r['partition_copies'] or 'exact'} ({r['copies_per_vector']} per "
        f"vector); {r['jobs']} jobs in {r['wall_s']} s wall, {r['jobs_cpu_s']} CPU s",
        flush=True,
    )
    for row in r["by_rule"]:
        print(
            f"  {row['rule']:<24} {row['jobs']:>3} jobs  peak RSS {row['max_rss_mib']:>7.0f} MiB"
            f"  CPU {row['cpu_s']:>7.1f} s"
        )
    print(
        f"largest job {r['largest_job']}: {r['largest_rss_mib']:.0f} MiB of a "
        f"{r['budget_mib']:.0f} MiB budget ({r['largest_rss_mib'] / r['budget_mib']:.2f}): "
        f"{'within' if r['within_budget'] else 'OVER'} budget; pair recall {r['pair_recall']} on "
        f"{r['recall_exact_pairs']} exact pairs; exact search ~{r['exact_core_s_estimate']:.0f} "
        f"core-s -> speed-up {r['speedup_over_exact']}x; removed {r['removed']:,} "
        f"({r['linked']:,} vectors in sets, which the merge holds)",
        flush=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--shard-vectors", type=int, default=SHARD_VECTORS)
    parser.add_argument("--partitions", type=int, default=None, help="default: N / 2,000")
    parser.add_argument("--jobs", type=int, default=40, help="partition search jobs")
    parser.add_argument("--copies", type=int, default=3, help="partition_copies (0: exact)")
    parser.add_argument("--budget-gib", type=float, default=1.5)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", help="keep the working directory here")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--quick", action="store_true", help="20,000 vectors, 4 search jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.vectors, args.shard_vectors, args.jobs = 20_000, 5_000, 4
    args.copies = args.copies or None
    result = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
