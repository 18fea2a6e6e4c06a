"""How long Snakemake takes to build and schedule the DAG of a run with many shards.

Generates, in a temporary working directory, a partition that looks finished (manifest.json, one
empty file per shard, the partition's drops and counts, an input older than all of them), so that
`snakemake -n` resolves the partition checkpoint and plans every per-shard step job of every shard,
then the reports. Times that dry run (DAG build + scheduling, one process, no job runs) per shard
count and prints jobs, shards and seconds.

    python -m benchmarks.dag_scale                      # 1,000 and 10,000 shards
    python -m benchmarks.dag_scale --shards 770 1000    # any counts
    python -m benchmarks.dag_scale --quick              # 40 shards (tests/test_profiles.py)

"10,000 shard jobs" reads two ways: 10,000 per-shard jobs (~770 shards of 13 steps) or 10,000
shards (~130,000 jobs); the output names both numbers for every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "config", "envs", "profiles")
BATCHES = 7
QUICK_SHARDS = 40
JOB_STATS_TOTAL = re.compile(r"^total\s+(\d+)\s*$", re.M)
JOB_STATS_ROW = re.compile(r"^(\w+)\s+(\d+)\s*$", re.M)


def make_workdir(path: Path, shards: int, shard_size: int, batches: int = BATCHES) -> Path:
    """A working directory whose partition checkpoint looks done for `shards` shards (spread
    over `batches` batches)."""
    path.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        if part != "config":
            (path / part).symlink_to(ROOT / part)
    (path / "config").mkdir()
    for item in (ROOT / "config").iterdir():
        (path / "config" / item.name).symlink_to(item)
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    base["input"] = {"path": "bench/raw_pairs.parquet", "format": "parquet"}
    base["partition"]["shard_size"] = shard_size
    (path / "config" / "bench.yaml").write_text(yaml.safe_dump(base))

    raw = path / "bench" / "raw_pairs.parquet"
    raw.parent.mkdir()
    raw.write_bytes(b"")
    old = time.time() - 3600
    os.utime(raw, (old, old))
    partition = path / "results" / "partition"
    manifest: dict[str, dict[str, int]] = {}
    for index in range(shards):
        batch = f"b{index % batches + 1}"
        shard = f"s{index // batches:05d}"
        manifest.setdefault(batch, {})[shard] = shard_size
        (partition / batch).mkdir(parents=True, exist_ok=True)
        (partition / batch / f"{shard}.parquet").write_bytes(b"")
    (partition / "manifest.json").write_text(
        json.dumps({"shard_size": shard_size, "batches": manifest})
    )
    steps_dir = path / "results" / "steps" / "partition"
    steps_dir.mkdir(parents=True)
    (steps_dir / "drops.parquet").write_bytes(b"")
    (steps_dir / "counts.json").write_text("{}")
    return path


def dry_run(workdir: Path, profile: str) -> tuple[float, float, dict[str, int], str]:
    """(wall seconds, CPU seconds, job counts by rule, output) of `snakemake -n`. CPU seconds are
    the ones to compare on a shared machine, where wall time also counts waiting for a core.
    Rule "max_rss_mb" of the counts is the largest resident memory of any child so far."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--quiet",
        "rules",
        "--profile",
        str(ROOT / "profiles" / profile),
        "--directory",
        str(workdir),
        "--snakefile",
        str(workdir / "Snakefile"),
        "--configfile",
        str(workdir / "config" / "bench.yaml"),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake -n failed ({proc.returncode}):\n{out[-4000:]}")
    stats = {name: int(n) for name, n in JOB_STATS_ROW.findall(out)}
    total = JOB_STATS_TOTAL.search(out)
    if total is None:
        raise RuntimeError(f"no job stats in the dry run's output:\n{out[-4000:]}")
    stats["total"] = int(total.group(1))
    stats["max_rss_mb"] = cpu_after.ru_maxrss // 1024
    return elapsed, cpu, stats, out


def run(shard_counts: list[int], shard_size: int, profile: str) -> list[dict]:
    results = []
    for shards in shard_counts:
        with tempfile.TemporaryDirectory(prefix="dq-dag-") as tmp:
            workdir = make_workdir(Path(tmp) / "wf", shards, shard_size)
            seconds, cpu, stats, _ = dry_run(workdir, profile)
        steps = [
            name for name, n in stats.items() if name not in ("total", "max_rss_mb") and n == shards
        ]
        row = {
            "shards": shards,
            "jobs": stats["total"],
            "per_shard_steps": len(steps),
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "max_rss_mb": stats["max_rss_mb"],
            "ms_per_job": round(1000 * seconds / stats["total"], 2),
            "profile": profile,
        }
        results.append(row)
        print(
            f"{shards:>7,} shards  {stats['total']:>8,} jobs ({len(steps)} per shard)  "
            f"snakemake -n: {seconds:7.1f} s wall, {cpu:7.1f} s CPU, "
            f"{stats['max_rss_mb']:,} MB  ({row['ms_per_job']:.2f} ms/job)",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument(
        "--shard-size",
        type=int,
        default=200_000,
        help="rows per shard written to the manifest (does not change the DAG)",
    )
    parser.add_argument("--profile", default="slurm", choices=["local", "slurm"])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SHARDS} shards only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    shard_counts = [QUICK_SHARDS] if args.quick else args.shards
    results = run(shard_counts, args.shard_size, args.profile)
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(
            f"{last['jobs'] / first['jobs']:.1f}x the jobs took "
            f"{last['seconds'] / first['seconds']:.1f}x the wall time, "
            f"{last['cpu_seconds'] / first['cpu_seconds']:.1f}x the CPU time"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
