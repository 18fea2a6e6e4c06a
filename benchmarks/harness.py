"""The parent side of `python -m benchmarks.run`: each stage benchmark run in a child process (its
peak memory from `os.wait4`), its ratio to its ceiling checked against the target and printed."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "text": 0.75,
    "image_metrics": 0.80,
    "scaling": 1.7,
    "dedup_recall": 0.99,
    "dedup_speedup": 20.0,
}


# Parent side.


def run_child(stage: str, params: dict, logs: Path, tag: str | None = None) -> dict:
    """Run one stage in a child process; its result plus peak RSS (MiB) and CPU seconds."""
    tag = tag or stage
    logs.mkdir(parents=True, exist_ok=True)
    result_path = logs / f"{tag}.json"
    result_path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--child",
        stage,
        "--params",
        json.dumps(params),
        "--result",
        str(result_path),
    ]
    env = dict(
        os.environ,
        NO_ALBUMENTATIONS_UPDATE="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    started = time.perf_counter()
    with open(logs / f"{tag}.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not result_path.is_file():
        tail = (logs / f"{tag}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"benchmark child {tag} failed ({proc.returncode}):\n{tail}")
    result = json.loads(result_path.read_text())
    # The child's own measure (peak_rss_mib); wait4's ru_maxrss counts this process's pages.
    result["_peak_rss_mib"] = result.pop("_own_peak_rss_mib", usage.ru_maxrss / 1024)
    result["_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["_wall_s"] = wall
    return result


def peak_rss_mib() -> float:
    """This process's peak RSS since its exec (VmHWM), or its largest child's if larger.

    Not ru_maxrss: Linux hands a spawned child the high-water mark of the parent it was forked
    (or vforked) from, so a parent that once held 1.5 GiB made every child report 1.5 GiB."""
    import resource

    own = None
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


class Later:
    """Memory-only child runs: inline in a full run. In --quick (a smoke test, not a
    measurement) they and the download stage, whose img2dataset start-up takes ~20 s, run on two
    background threads alongside the other stages, so its rates are only indicative."""

    def __init__(self, background: bool) -> None:
        self.pool = ThreadPoolExecutor(2) if background else None

    def __call__(self, fn, *args) -> Future:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        done: Future = Future()
        done.set_result(fn(*args))
        return done


LATER = Later(False)


def resolve(value):
    """`value` with every Future in it (nested lists and dicts) replaced by its result."""
    if isinstance(value, Future):
        return resolve(value.result())
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW"


def shard_size() -> int:
    from danqing.config import load

    return int(load()["partition"]["shard_size"])


def linear(n1: int, y1: float, n2: int, y2: float, at: int) -> tuple[float, float]:
    """(value at `at`, slope per row) of the line through (n1, y1), (n2, y2)."""
    slope = (y2 - y1) / (n2 - n1)
    return y1 + slope * (at - n1), slope


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def bench_text(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    from benchmarks.text_stages import CHAIN_STAGE, make_frame

    r = run_child("text", {"rows": sizes["text_rows"]}, logs)
    rows = {x["stage"]: x for x in r["results"] if x["ratio"] is not None}
    chain, cn, cc = rows[CHAIN_STAGE], rows["cn_detect"], rows["font_conversion"]
    say(f"[text] {r['rows']:,} demo captions, one process (= per core)")
    say(
        f"  12-step text chain      {chain['value']:>10,.0f} rows/s/core | ceiling jieba "
        f"segmentation alone {chain['ceiling_value']:>9,.0f} | ratio {chain['ratio']:.2f} "
        f"(target >= {TARGETS['text']:.2f}) {verdict(chain['ratio'] >= TARGETS['text'])}"
    )
    say(
        f"  cn_detect               {cn['value']:>10,.0f} rows/s/core | ceiling fastText "
        f"predict alone   {cn['ceiling_value']:>9,.0f} | ratio {cn['ratio']:.2f}"
    )
    say(
        f"  font_conversion         {cc['value']:>10,.0f} rows/s/core | ceiling OpenCC alone  "
        f"          {cc['ceiling_value']:>9,.0f} | ratio {cc['ratio']:.2f}"
    )
    distinct = next(x for x in r["results"] if x["stage"] == "distinct captions")
    say(
        f"  distinct captions: {distinct['value']:.0%} of each chunk (the chain segments each "
        "distinct caption once, the ceiling every caption)"
    )
    say(
        f"  chain vs fastText alone ratio {chain['value'] / cn['ceiling_value']:.2f}, vs OpenCC "
        f"alone ratio {chain['value'] / cc['ceiling_value']:.2f} (whole chain / one library)"
    )

    # Memory: the chain over a Parquet shard at two sizes, extrapolated to the default shard.
    def shard_run(n: int) -> dict:
        with tempfile.TemporaryDirectory(prefix="dq-bench-text-") as tmp:
            path = Path(tmp) / f"shard{n}.parquet"
            make_frame(n).write_parquet(path)
            return run_child("text_shard", {"path": str(path)}, logs, f"text_shard_{n}")

    r["memory"] = [LATER(shard_run, n) for n in sizes["text_mem_rows"]]
    return r


def bench_image_metrics(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    r = run_child("image_metrics", {"images": sizes["images"]}, logs)
    rows = {x["stage"]: x for x in r["results"]}
    pil = rows["pure JPEG decode, Pillow RGB"]["value"]
    cv = rows["pure JPEG decode, OpenCV BGR"]["value"]
    stage = rows["metric stage (decode + std, blur, entropy)"]
    parallel = next(x for k, x in rows.items() if k.endswith("processes (total)"))
    steady = next(x for k, x in rows.items() if k.endswith("steady state (total)"))
    ratio = stage["ratio"]
    r.update(
        stage_per_s=stage["value"],
        ceiling_per_s=max(pil, cv),
        ratio=ratio,
        scaling=steady["ratio"],
        startup_s=steady["startup_s"],
    )
    say(f"[image_metrics] {r['images']} stored-size JPEGs (q90, longer edge 384..1024 px)")
    say(
        f"  metric stage            {stage['value']:>10,.1f} images/s/core | ceiling pure decode "
        f"(faster of Pillow RGB {pil:,.1f}, OpenCV BGR {cv:,.1f}) | ratio {ratio:.2f} "
        f"(target >= {TARGETS['image_metrics']:.2f}) {verdict(ratio >= TARGETS['image_metrics'])}"
    )
    say(
        f"  {parallel['stage']}: {parallel['value']:,.1f} images/s (per core / ceiling "
        f"{parallel['ratio']:.2f}; includes worker start-up)"
    )
    say(
        f"  {steady['stage']}: {steady['value']:,.1f} images/s = {steady['ratio']:.2f}x one core "
        f"(target >= {TARGETS['scaling']:.2f}) {verdict(steady['ratio'] >= TARGETS['scaling'])}; "
        f"start-up to the first result {steady['startup_s']:.1f} s"
    )
    real = LATER(
        run_child,
        "metrics_shard",
        {"images": sizes["mem_real_images"], "tiny": False},
        logs,
        "metrics_shard_real",
    )
    tiny = [
        LATER(
            run_child, "metrics_shard", {"images": n, "tiny": True}, logs, f"metrics_shard_tiny_{n}"
        )
        for n in sizes["mem_tiny_images"]
    ]
    r["memory"] = {"real": real, "tiny": tiny}
    return r


def download_params(sizes: dict) -> dict:
    return {"images": sizes["download_images"], "processes": sizes["download_processes"]}


def bench_download(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    pending = done.pop("_download", None)  # --quick starts it first, in the background
    r = resolve(pending) if pending else run_child("download", download_params(sizes), logs)
    ratio = r["stage_steady_per_s"] / r["ceiling_per_s"]
    r["ratio"] = ratio
    say(
        f"[download] {r['images']:,} photos from the demo server on 127.0.0.1, img2dataset "
        f"{r['processes']} process(es) x {r['threads']} threads, {r['cores']} cores shared"
    )
    say(
        f"  stage (steady)          {r['stage_steady_per_s']:>10,.1f} images/s "
        f"({r['stage_steady_per_s'] / r['processes']:,.1f}/process core) | ceiling server raw "
        f"rate {r['ceiling_per_s']:,.1f} images/s | ratio {ratio:.2f} (wall incl. start-up: "
        f"{r['stage_per_s']:,.1f} images/s, ratio {r['stage_per_s'] / r['ceiling_per_s']:.2f})"
    )
    return r


def bench_embeddings(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    r = run_child(
        "embeddings",
        {
            "images": sizes["embed_images"],
            "clip_images": sizes["clip_images"],
            "clip_texts": sizes["clip_texts"],
        },
        logs,
    )
    say(
        "[embeddings] torch CPU threads = 1 (per core); ceiling = the network's forward pass "
        "alone on the preprocessed batch"
    )
    for key, label in (
        ("efficientnet-lite0", "efficientnet-lite0 (configured)"),
        ("chinese-clip-ViT-L-14", "Chinese-CLIP ViT-L/14, random init"),
    ):
        for device in ("cpu", "cuda"):
            m = r.get(f"{key}/{device}")
            if m is None:
                continue
            m["ratio"] = m["images_per_s"] / m["forward_per_s"]
            unit = "images/s/core" if device == "cpu" else f"images/s on {r['gpu_name']}"
            text = f", text tower {m['texts_per_s']:,.1f} texts/s" if "texts_per_s" in m else ""
            say(
                f"  {label} {device}: {m['images_per_s']:,.2f} {unit} | ceiling forward alone "
                f"{m['forward_per_s']:,.2f} | ratio {m['ratio']:.2f}{text}"
            )
    lite0, dense = r["efficientnet-lite0/cpu"], r["dense_ceiling/cpu"]
    lite0["of_dense_ceiling"] = lite0["forward_gflops"] / dense["gflops"]
    say(
        f"  efficientnet-lite0 ({lite0['runtime']}) {lite0['gflop_per_image']:.2f} GFLOP/image: "
        f"forward {lite0['forward_gflops']:,.1f} GFLOP/s/core, whole stage "
        f"{lite0['gflops']:,.1f} | ceiling {dense['network']} (onnxruntime, 1 thread) "
        f"{dense['gflops']:,.1f} GFLOP/s/core | forward {lite0['of_dense_ceiling']:.2f} of the "
        f"ceiling (target >= 0.50) {verdict(lite0['of_dense_ceiling'] >= 0.5)}"
    )
    if "chinese-clip-ViT-L-14/cpu" not in r:
        say("  Chinese-CLIP ViT-L/14: skipped (--quick or --clip-images 0)")
    if not r["cuda"]:
        say("  GPU: no GPU here (torch.cuda.is_available() is False); GPU rates not measured")
    return r


def bench_image_safety(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    r = run_child("image_safety", {"images": sizes["nsfw_images"]}, logs)
    r["ratio"] = r["images_per_s"] / r["forward_per_s"]
    say(
        f"[image_safety] open_nsfw (ONNX, onnxruntime CPU, 1 thread) on {r['images']} stored-size "
        f"JPEGs, batches of {r['batch']}"
    )
    say(
        f"  NSFW scoring            {r['images_per_s']:>10,.1f} images/s/core | ceiling ONNX "
        f"forward alone {r['forward_per_s']:,.1f} | ratio {r['ratio']:.2f} (decode + open_nsfw "
        f"preprocessing alone {r['preprocess_per_s']:,.1f} images/s)"
    )
    return r


def bench_dedup(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    runs = []
    say(
        f"[dedup] clustered unit vectors, dim {sizes['dedup_dim']}, FAISS IVF (all cores) vs "
        "exact search (BLAS, from sampled queries)"
    )
    for n in sizes["dedup_sizes"]:
        d = run_child(
            "dedup",
            {"n": n, "dim": sizes["dedup_dim"], "sample": sizes["dedup_sample"]},
            logs,
            f"dedup_{n}",
        )
        runs.append(d)
        ok = d["recall"] >= TARGETS["dedup_recall"] and d["speedup"] >= TARGETS["dedup_speedup"]
        note = "" if n >= 1_000_000 else f" (target is for 1M vectors; this is {n:,})"
        say(
            f"  N={n:>9,}  IVF {d['ivf_total_s']:.1f} s ({d['ivf_cpu_s']:.1f} core-s), exact "
            f"~{d['exact_estimate_s']:.1f} s | speed-up ratio {d['speedup']:.1f}x, pair recall "
            f"{d['recall']:.4f} (target recall >= {TARGETS['dedup_recall']} at >= "
            f"{TARGETS['dedup_speedup']:.0f}x) {verdict(ok)}{note}; peak RSS "
            f"{d['_peak_rss_mib'] / 1024:.2f} GiB (vectors {d['vectors_gib']:.2f} GiB)"
        )
    return {"runs": runs}


def bench_scaling(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    from benchmarks.scaling import lines

    r = run_child("scaling", {"quick": sizes["scaling_quick"]}, logs)
    say(
        f"[scaling] steady-state rate on {r['cores']} cores / on one core, start-up apart "
        "(per-shard stages: single-threaded jobs side by side; ratio = the scaling)"
    )
    for line in lines(r, TARGETS["scaling"]):
        say(line)
    return r


def bench_dag(sizes: dict, logs: Path, say: Report, done: dict) -> dict:
    params = (
        {"jobs": sizes["dag_jobs"]}
        if sizes["dag_jobs"]
        else {"shards": [sizes["dag_quick_shards"]]}
    )
    r = run_child("dag", params, logs)
    say(
        "[dag] snakemake -n (DAG build + scheduling, slurm profile) on a finished-looking partition"
    )
    for row in r["runs"]:
        per_shard_jobs = row["per_shard_steps"] * row["shards"]
        say(
            f"  {per_shard_jobs:>7,} per-shard jobs ({row['shards']:,} shards x "
            f"{row['per_shard_steps']}; {row['jobs']:,} jobs in all): {row['seconds']:.1f} s wall,"
            f" {row['cpu_seconds']:.1f} s CPU, {row['ms_per_job']:.2f} ms/job, "
            f"{row['max_rss_mb']:,} MB"
        )
    last = r["runs"][-1]
    if "text" in done:  # scheduling overhead next to the work of one per-shard text job
        from benchmarks.text_stages import CHAIN_STAGE, TEXT_STEPS

        chain = next(x for x in done["text"]["results"] if x["stage"] == CHAIN_STAGE)
        job_s = shard_size() / chain["value"] / len(TEXT_STEPS)
        r["ratio"] = last["cpu_seconds"] / last["jobs"] / job_s
        say(
            f"  overhead ratio {r['ratio']:.5f}: snakemake CPU per job / core-seconds of a mean "
            f"text-step job on a {shard_size():,}-row shard ({job_s:.1f} s, measured above)"
        )
    return r
