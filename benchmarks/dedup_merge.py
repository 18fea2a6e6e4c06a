"""Peak memory of the partitioned dedup's merge job per linked vector, at the paper's removal rate.

The merge (`danqing.dedup_partitioned.merge`, rule semantic_dedup_clusters) holds the uids that
some pair links and their pairs; every other row streams through. This writes N rows as
assignment files (the workflow's 20-character uids, 768-d float16 vectors: the merge reads one
file's at a time) and pair files that link a share of them into sets of three (chains: two pairs
per set), and runs the merge in a child process at two sizes. The ceiling is the child's peak RSS
with no pair at all (imports, one file, the writer), measured in the same run; the slope between
the two sizes is the cost per linked vector (both sizes hold more sets than one block of centroid
sums, a constant), and the projection extends it to a batch of the paper's run.

    python -m benchmarks.dedup_merge                      # 1,000,000 and 4,000,000 rows
    python -m benchmarks.dedup_merge --rows 200000 800000 --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

# Rows per assignment file (one per embedding shard): a million-row shard after the text and
# image steps holds a few hundred thousand images.
FILE_ROWS = 200_000
DIM = 768
# Table 6: semantic dedup removes 41.2% of a batch; in sets of three, 2/3 of each set goes, so
# 0.618 of the rows are linked.
LINKED_SHARE = 0.618
PAPER_BATCH_ROWS = 45_200_000


def write_inputs(
    folder: Path, rows: int, linked_share: float, file_rows: int = FILE_ROWS, seed: int = 5
) -> dict:
    from danqing.io import write_npz, write_parquet

    rng = np.random.default_rng(seed)
    uids = np.array([f"v{r:019d}" for r in range(rows)])
    assignments = []
    for k, start in enumerate(range(0, rows, file_rows)):
        part = uids[start : start + file_rows]
        vectors = rng.standard_normal((len(part), DIM)).astype(np.float16)
        path = folder / f"a{k:05d}.npz"
        write_npz(
            path,
            uids=part,
            vectors=vectors,
            rows=np.arange(len(part)),
            parts=np.zeros(len(part), np.int64),
            primary=np.ones(len(part), bool),
        )
        assignments.append(str(path))
    members = rng.permutation(rows)[: int(rows * linked_share) // 3 * 3].reshape(-1, 3)
    a = np.concatenate([members[:, 0], members[:, 1]])
    b = np.concatenate([members[:, 1], members[:, 2]])
    lo, hi = uids[np.minimum(a, b)], uids[np.maximum(a, b)]  # uids sort as their rows
    pair_files = []
    for k, chunk in enumerate(np.array_split(np.arange(len(lo)), max(1, len(lo) // 500_000))):
        path = folder / f"p{k:05d}.parquet"
        write_parquet(pl.DataFrame({"uid_a": lo[chunk], "uid_b": hi[chunk]}), path)
        pair_files.append(str(path))
    return {"assignments": assignments, "pairs": pair_files, "linked": int(members.size)}


def child(spec: dict) -> dict:
    """Run one merge; its peak RSS (this process's, in MiB)."""
    from danqing.dedup import DedupSettings
    from danqing.dedup_partitioned import merge

    settings = DedupSettings(beta=0.1, recall_sample=0)
    started = time.perf_counter()
    stats = merge(spec["assignments"], spec["pairs"], settings, spec["out"])
    seconds = time.perf_counter() - started
    from benchmarks.harness import peak_rss_mib

    return {
        "linked": stats["linked"],
        "removed": stats["removed"],
        "peak_mib": peak_rss_mib(),
        "seconds": seconds,
    }


def run_child(spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.dedup_merge", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"merge child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(sizes: list[int], linked_share: float = LINKED_SHARE, file_rows: int = FILE_ROWS) -> dict:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows, share in [(sizes[0], 0.0), *[(n, linked_share) for n in sizes]]:
            folder = Path(tmp) / f"{rows}-{share}"
            folder.mkdir()
            spec = write_inputs(folder, rows, share, file_rows)
            spec["out"] = str(folder / "decisions.parquet")
            measured = run_child(spec)
            results.append({"rows": rows, "linked_share": share, **measured})
    ceiling, small, large = results[0], results[1], results[-1]
    per_linked = (
        (large["peak_mib"] - small["peak_mib"]) * 2**20 / (large["linked"] - small["linked"])
    )
    paper_linked = PAPER_BATCH_ROWS * linked_share
    at_paper = large["peak_mib"] + per_linked * (paper_linked - large["linked"]) / 2**20
    return {
        "file_rows": file_rows,
        "runs": results,
        "bytes_per_linked": per_linked,
        "ceiling_mib": ceiling["peak_mib"],
        "paper_batch_mib": at_paper,
    }


def print_result(result: dict) -> None:
    print(f"assignment files of {result['file_rows']:,} rows, 768-d float16")
    for r in result["runs"]:
        print(
            f"rows {r['rows']:>10,}  linked {r['linked']:>10,}  removed {r['removed']:>10,}  "
            f"peak {r['peak_mib']:>8,.0f} MiB  {r['seconds']:>6.1f} s"
        )
    print(
        f"per linked vector {result['bytes_per_linked']:,.0f} bytes above the no-pair ceiling "
        f"of {result['ceiling_mib']:,.0f} MiB; a paper batch ({PAPER_BATCH_ROWS:,} rows, "
        f"{LINKED_SHARE:.0%} linked): {result['paper_batch_mib'] / 1024:,.1f} GiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[1_000_000, 4_000_000])
    parser.add_argument("--file-rows", type=int, default=FILE_ROWS)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
    else:
        print_result(run(args.rows, file_rows=args.file_rows))
