"""The benchmark entry command's quick smoke mode (the benchmarks themselves are not run in CI).

`python -m benchmarks.run --quick` must run every stage benchmark, print for each a ratio to its
ceiling, the targets with PASS/BELOW, and write the raw measurements, the projection and the
peak-memory table. Its numbers are not checked (a smoke run on a shared machine measures nothing).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from danqing.steps import STEPS

ROOT = Path(__file__).resolve().parent.parent
STAGES = {
    "text",
    "image_metrics",
    "embeddings",
    "image_safety",
    "dedup",
    "scaling",
    "dag",
    "download",
}


def stage_blocks(stdout: str) -> dict[str, str]:
    """'[stage] ...' blocks of the output, each up to the next block or blank line."""
    parts = re.split(r"^\[(\w+)\]", stdout, flags=re.M)
    return {
        name: body.split("\n\n")[0] for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


@pytest.mark.e2e  # runs every benchmark, the DAG-scale and dedup-jobs ones through Snakemake
def test_quick_run_reports_every_stage(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    blocks = stage_blocks(proc.stdout)
    assert set(blocks) == STAGES
    for name, body in blocks.items():
        assert re.search(r"ratio \d+\.\d+", body), f"[{name}] printed no ratio:\n{body}"
    assert re.search(
        r"jieba segmentation alone .* ratio [\d.]+ \(target >= 0\.75\) "
        r"(PASS|BELOW)",
        blocks["text"],
    )
    assert "fastText predict alone" in blocks["text"] and "OpenCC alone" in blocks["text"]
    assert re.search(
        r"pure decode .* ratio [\d.]+ \(target >= 0\.80\) (PASS|BELOW)", blocks["image_metrics"]
    )
    assert re.search(
        r"recall [\d.]+ \(target recall >= 0\.99 at >= 20x\) (PASS|BELOW)", blocks["dedup"]
    )
    assert "server raw rate" in blocks["download"]
    assert "efficientnet-lite0" in blocks["embeddings"]
    assert "no GPU here" in blocks["embeddings"] or "/s on " in blocks["embeddings"]
    assert "ceiling ONNX forward alone" in blocks["image_safety"]
    assert "GFLOP/s/core" in blocks["embeddings"]
    for stage in ("text", "image_metrics", "nsfw", "embeddings", "warc", "dedup"):
        assert re.search(rf"^  {stage} .* ratio [\d.]+ \(target >= 1\.7\)", blocks["scaling"], re.M)

    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["shard_size"] > 0 and results["meta"]["quick"] is True
    for stage in STAGES - {"dedup"}:
        assert results[stage]["_peak_rss_mib"] > 0, stage
    assert all(run["_peak_rss_mib"] > 0 for run in results["dedup"]["runs"])
    text_memory = next(m for m in results["memory"] if m["stage"].startswith("text"))
    assert text_memory["at_shard_mib"] > 0

    rows = {r["stage"]: r for r in results["projection"]["rows"]}
    for step in STEPS[:4]:  # the first text steps: rows from Table 6, rates measured here
        assert rows[step.name]["per_core_per_s"] > 0
        assert rows[step.name]["core_hours"] > 0
    assert rows["language_control"]["rows"] == 1_047_085_609
    assert rows["text_safety"]["rows"] == STEPS[0].paper_left
    assert results["projection"]["total_core_hours"]["efficientnet-lite0"] > 0
    assert rows["image_safety (open_nsfw scores)"]["core_hours"] > 0

    projection = (out / "projection.md").read_text()
    for step in STEPS:
        assert f"| {step.name} |" in projection, step.name
    assert "Peak memory" in projection and "GPU-hours" in projection
    assert (out / "summary.txt").read_text().count("ratio") >= len(STAGES)


def test_gpu_benchmark_code_path_runs_on_the_cpu_and_refuses_without_a_gpu(tmp_path):
    """`--gpu` needs a CUDA GPU (a clear refusal, not CPU numbers); `--gpu-smoke` runs the same
    code on the CPU at toy sizes, so the prepared GPU command is known to work before a GPU is
    lent."""
    import torch

    run = [sys.executable, "-m", "benchmarks.run", "--out", str(tmp_path)]
    if not torch.cuda.is_available():
        refused = subprocess.run([*run, "--gpu"], cwd=ROOT, capture_output=True, text=True)
        assert refused.returncode == 2 and "no CUDA GPU" in refused.stderr
    smoke = subprocess.run(
        [*run, "--gpu-smoke"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    assert re.search(r"Chinese-CLIP RN50 .* ratio [\d.]+ of the ceiling", smoke.stdout)
    for part in ("efficientnet-lite0: ", "nsfw: ", "dedup: "):
        assert part in smoke.stdout
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["clip"]["gflop_per_image"] > 1 and result["dedup"]["pairs"] > 0


@pytest.mark.e2e
def test_the_dedup_jobs_benchmark_runs_the_partitioned_rules(tmp_path):
    """benchmarks/dedup_jobs.py --quick: the workflow's four partitioned rules run as Snakemake
    jobs, each job's peak RSS is read from its benchmark file, recall and the exact estimate are
    reported."""
    out = tmp_path / "dedup_jobs.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.dedup_jobs",
            "--quick",
            "--cores",
            "2",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    from benchmarks.dedup_jobs import RULES

    assert {row["rule"] for row in result["by_rule"]} == set(RULES)
    assert result["jobs"] == 1 + 4 + 4 + 1  # centroids, 4 shards, 4 search jobs, merge
    assert all(row["max_rss_mib"] > 0 for row in result["by_rule"])
    assert result["pair_recall"] is not None and result["exact_core_s_estimate"] > 0
    assert "within budget" in proc.stdout


@pytest.mark.e2e
def test_the_merge_memory_benchmark_measures_a_cost_per_linked_vector():
    """benchmarks/dedup_merge.py at two small sizes: every run's peak is its own (not the
    parent's), the linked counts follow the paper's removal share, and a cost is projected."""
    from benchmarks.dedup_merge import LINKED_SHARE, run

    result = run([6_000, 24_000], file_rows=5_000)
    ceiling, small, large = result["runs"]
    assert ceiling["linked"] == 0 and ceiling["removed"] == 0
    assert abs(large["linked"] / large["rows"] - LINKED_SHARE) < 0.01
    assert large["removed"] == large["linked"] * 2 // 3
    assert 0 < ceiling["peak_mib"] < 2048 and math.isfinite(result["paper_batch_mib"])
