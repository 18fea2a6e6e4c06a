"""Every stage benchmark in one run: rates per core, their ceilings, peak memory, and the cost of the
paper's 1B-pair run.

    python -m benchmarks.run                      # full run (about 10-15 minutes on 2 cores)
    python -m benchmarks.run --quick              # smoke test (well under a minute)
    python -m benchmarks.run --out results/benchmarks --text-rows 50000 --dedup-sizes 100000 1000000

Each stage runs in its own child process (`--child STAGE`), which generates its inputs and measures
the stage and the ceiling it is bounded by on the same inputs, in the same process; the parent
reads the child's peak resident memory from `os.wait4` (ru_maxrss, the largest process of the
child's tree). The stage benchmarks are the modules next to this one, imported, not copied:

    text            benchmarks.text_stages      12 text steps vs jieba / fastText / OpenCC alone
    image_metrics   benchmarks.image_metrics    decode + std/blur/entropy vs pure JPEG decode
    download        benchmarks.download         img2dataset vs the demo server's raw serving rate
    embeddings      danqing.embed               full embed_images vs the network's forward alone
    image_safety    danqing.images.nsfw         open_nsfw scoring vs the ONNX forward pass alone
    dedup           benchmarks.dedup            FAISS IVF vs exact search: speed-up, pair recall
    dag             benchmarks.dag_scale        snakemake -n for N per-shard jobs

Memory for a shard of the default size (config partition.shard_size) is extrapolated linearly
from two measured sizes where the stage holds per-row state (text, image metrics); see the
printed notes. The projection (core-hours, GPU-hours per stage at Table 6's row counts) uses only
rates measured in this run. Writes <out>/results.json, <out>/projection.md and <out>/logs/.
"""

from __future__ import annotations

import argparse
import io
import json
import math
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
STAGES = (
    "text",
    "image_metrics",
    "embeddings",
    "image_safety",
    "dedup",
    "scaling",
    "dag",
    "download",
)

QUICK = {
    "text_rows": 1_000,
    "text_mem_rows": [1_000, 3_000],
    "images": 30,
    "mem_real_images": 30,
    "mem_tiny_images": [2_000, 6_000],
    "download_images": 30,
    "download_processes": 1,
    "embed_images": 4,
    "nsfw_images": 8,
    "clip_images": 0,
    "clip_texts": 0,
    "dedup_sizes": [5_000, 20_000],
    "dedup_dim": 64,
    "dedup_sample": 500,
    "dag_jobs": [],
    "dag_quick_shards": 2,
    "scaling_quick": True,
}
FULL = {
    "text_rows": 50_000,
    "text_mem_rows": [10_000, 40_000],
    "images": 400,
    "mem_real_images": 200,
    "mem_tiny_images": [10_000, 40_000],
    "download_images": 1_000,
    "download_processes": None,
    "embed_images": 128,
    "nsfw_images": 128,
    "clip_images": 8,
    "clip_texts": 64,
    "dedup_sizes": [100_000, 1_000_000],
    "dedup_dim": 768,
    "dedup_sample": 2_000,
    "dag_jobs": [1_000, 10_000],
    "scaling_quick": False,
    "dag_quick_shards": 0,
}


# --------------------------------------------------------------------------------------------
# Child side: one stage per process.


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child_text(p: dict) -> dict:
    from benchmarks import text_stages

    return {"rows": p["rows"], "results": text_stages.run(p["rows"])}


def child_text_shard(p: dict) -> dict:
    """The 12 text steps over one shard read from Parquet, as the per-shard jobs run them."""
    import polars as pl

    from benchmarks.text_stages import TEXT_STEPS
    from danqing import config
    from danqing.filters import registry

    cfg, funcs = config.load(), registry()
    frame = pl.read_parquet(p["path"])
    rows = frame.height
    started = time.perf_counter()
    for step in TEXT_STEPS:
        frame = funcs[step](frame, cfg["filters"][step]).kept
    return {"rows": rows, "kept": frame.height, "seconds": time.perf_counter() - started}


def child_image_metrics(p: dict) -> dict:
    from benchmarks import image_metrics

    return {"images": p["images"], "results": image_metrics.run(p["images"])}


def _tiny_jpeg() -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def child_metrics_shard(p: dict) -> dict:
    """metrics_frame over a stream of `images` items in this process (as one worker): the real
    benchmark JPEGs (cycled) or one tiny JPEG, to measure the per-row growth cheaply."""
    import cv2

    from benchmarks.image_metrics import benchmark_images
    from danqing.images.metrics import MetricSettings, metrics_frame

    cv2.setNumThreads(1)
    pool = [_tiny_jpeg()] if p["tiny"] else benchmark_images(min(p["images"], 50))
    stream = ((f"u{i:08d}", pool[i % len(pool)]) for i in range(p["images"]))
    started = time.perf_counter()
    table = metrics_frame(stream, MetricSettings(), processes=1)
    return {"images": table.height, "seconds": time.perf_counter() - started}


def child_download(p: dict) -> dict:
    from benchmarks import download

    processes = p["processes"] or os.cpu_count() or 1
    per_tar = max(25, -(-p["images"] // (2 * processes)))
    result = download.run(p["images"], processes, 32, 32, per_tar)
    print(download.report(result), flush=True)
    return result


def _embed_rates(embedder, forward, images: list[bytes], texts: list[str] | None) -> dict:
    """images/s of embed_images (decode + preprocess + network) and of the network's forward
    pass alone on the already preprocessed batches (the ceiling), texts/s when given."""
    embedder.embed_images(images[:2])  # warm-up
    full_s = _timed(lambda: embedder.embed_images(images))
    forward_s = forward(images)
    out = {
        "images": len(images),
        "images_per_s": len(images) / full_s,
        "forward_per_s": len(images) / forward_s,
    }
    if texts:
        embedder.embed_texts(texts[:2])
        out["texts"] = len(texts)
        out["texts_per_s"] = len(texts) / _timed(lambda: embedder.embed_texts(texts))
    return out


def _effnet(device: str, images: list[bytes], batch: int) -> dict:
    from benchmarks.flops import macs_per_image
    from danqing.embed import load_embedder
    from danqing.embed.efficientnet_lite import EMBED_BLUR_SIGMA, pixels
    from danqing.embed.efficientnet_onnx import to_onnx

    embedder = load_embedder(
        {"model": "efficientnet-lite0", "batch_size": batch, "runtime": "auto"},
        device=device,
        threads=1,
    )
    forward = _network_timer(
        lambda imgs: pixels(imgs, EMBED_BLUR_SIGMA),
        lambda x: embedder._network(x, "features"),
        batch,
    )
    out = _embed_rates(embedder, forward, images, None)
    out["runtime"] = embedder.runtime
    out["gflop_per_image"] = 2 * macs_per_image(to_onnx(embedder.model)) / 1e9
    out["forward_gflops"] = out["forward_per_s"] * out["gflop_per_image"]
    out["gflops"] = out["images_per_s"] * out["gflop_per_image"]
    return out


def _nsfw_forward_seconds(arrays: list, batch: int) -> float:
    """Seconds of open_nsfw's ONNX forward pass alone (onnxruntime, one thread) over already
    preprocessed images, in batches of `batch`, after one warm-up batch."""
    import numpy as np

    from danqing.images import nsfw

    session = nsfw.load_session(str(nsfw.default_model_path()), 1)
    name = session.get_inputs()[0].name
    batches = [np.stack(arrays[s : s + batch]) for s in range(0, len(arrays), batch)]
    session.run(None, {name: batches[0]})
    return _timed(lambda: [session.run(None, {name: x}) for x in batches])


def _dense_ceiling(images: list[bytes]) -> dict:
    """GFLOP/s of a dense network on this core: open_nsfw's ResNet-50 (the NSFW step's ONNX
    model) under onnxruntime with one thread, forward pass alone on preprocessed batches."""
    from benchmarks.flops import macs_per_image
    from danqing.images import nsfw

    seconds = _nsfw_forward_seconds([nsfw.preprocess(data) for data in images], 8)
    gflop = 2 * macs_per_image(str(nsfw.default_model_path())) / 1e9
    return {
        "network": "open_nsfw ResNet-50",
        "gflop_per_image": gflop,
        "gflops": len(images) / seconds * gflop,
    }


def _network_timer(prepare, network, batch: int):
    """forward(images) -> seconds spent in `network` alone, on batches prepared beforehand
    (`network` returns its output on the host, so a GPU's work is finished when it returns)."""
    import torch

    def forward(imgs: list[bytes]) -> float:
        batches = [prepare(imgs[s : s + batch]) for s in range(0, len(imgs), batch)]
        with torch.inference_mode():
            start = time.perf_counter()
            for x in batches:
                network(x)
            return time.perf_counter() - start

    return forward


def random_clip_checkpoint(path: Path, architecture: str = "ViT-L-14") -> Path:
    """A cn_clip-format checkpoint of a randomly initialised Chinese-CLIP (cn_clip's own CLIP
    class and model config): the real network's speed without downloading weights."""
    import torch

    from danqing.embed.chinese_clip import build_model, model_info

    torch.manual_seed(0)
    model = build_model(model_info(architecture))
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


def _clip(device: str, images: list[bytes], texts: list[str], batch: int, checkpoint) -> dict:
    import torch

    from danqing.embed.chinese_clip import ChineseClipEmbedder
    from danqing.embed.preprocess import clip_batch

    embedder = ChineseClipEmbedder(checkpoint, "ViT-L-14", device=device, batch_size=batch)
    forward = _network_timer(
        lambda imgs: torch.from_numpy(clip_batch(imgs, embedder.resolution)).to(embedder.device),
        lambda x: embedder.model.encode_image(x).float().cpu(),
        batch,
    )
    return _embed_rates(embedder, forward, images, texts)


def child_embeddings(p: dict) -> dict:
    """Per-core CPU rates (torch threads = 1) of the configured default model, of a random
    full-size Chinese-CLIP ViT-L/14, and the same on a GPU when torch sees one."""
    import gc

    import torch

    from benchmarks.image_metrics import benchmark_images
    from benchmarks.text_stages import make_frame

    torch.set_num_threads(1)
    images = benchmark_images(max(p["images"], p["clip_images"]))
    out: dict = {"cuda": torch.cuda.is_available()}
    out["efficientnet-lite0/cpu"] = _effnet("cpu", images[: p["images"]], min(64, p["images"]))
    out["dense_ceiling/cpu"] = _dense_ceiling(images[: min(64, p["images"])])
    if out["cuda"]:
        out["gpu_name"] = torch.cuda.get_device_name(0)
        out["efficientnet-lite0/cuda"] = _effnet("cuda", benchmark_images(512), 64)
    if p["clip_images"]:
        texts = make_frame(max(p["clip_texts"], 2))["alt_text"].to_list()[: p["clip_texts"]]
        with tempfile.TemporaryDirectory(prefix="dq-bench-clip-") as tmp:
            checkpoint = random_clip_checkpoint(Path(tmp) / "random-vit-l-14.pt")
            gc.collect()
            clip_images = images[: p["clip_images"]]
            out["chinese-clip-ViT-L-14/cpu"] = _clip(
                "cpu", clip_images, texts, min(8, len(clip_images)), checkpoint
            )
            if out["cuda"]:
                out["chinese-clip-ViT-L-14/cuda"] = _clip(
                    "cuda", benchmark_images(256), texts * 4, 64, checkpoint
                )
    return out


def child_image_safety(p: dict) -> dict:
    """Per-core rates (onnxruntime intra-op threads = 1) of the NSFW scoring the nsfw_scores
    rule runs (decode + open_nsfw preprocessing + ONNX forward, batches of 32), of the forward
    pass alone on the already preprocessed batches (the ceiling) and of the preprocessing alone."""
    from benchmarks.image_metrics import benchmark_images
    from danqing.images import nsfw

    batch = 32
    images = benchmark_images(p["images"])
    items = [(str(i), data) for i, data in enumerate(images)]
    nsfw.score_images(items[:2], batch_size=batch, threads=1)  # warm-up
    stage_s = _timed(lambda: nsfw.score_images(items, batch_size=batch, threads=1))
    arrays: list = []
    preprocess_s = _timed(lambda: arrays.extend(nsfw.preprocess(data) for data in images))
    forward_s = _nsfw_forward_seconds(arrays, batch)
    n = len(images)
    return {
        "images": n,
        "batch": batch,
        "images_per_s": n / stage_s,
        "forward_per_s": n / forward_s,
        "preprocess_per_s": n / preprocess_s,
    }


def child_scaling(p: dict) -> dict:
    from benchmarks import scaling

    return scaling.run(p["quick"])


def child_dedup(p: dict) -> dict:
    from benchmarks.dedup import run_size
    from danqing.config import load
    from danqing.dedup import default_nlist

    nprobe = int(load()["filters"]["semantic_dedup"]["nprobe"])
    return run_size(p["n"], p["dim"], nprobe, p["sample"], nlist=default_nlist(p["n"]))


def child_dag(p: dict) -> dict:
    """snakemake -n for `jobs` per-shard jobs each (shards = jobs / per-shard steps, from a
    small probe run), or for `shards` shards directly."""
    from benchmarks import dag_scale

    if p.get("shards"):
        return {"runs": dag_scale.run(p["shards"], 1_000_000, "slurm")}
    probe = dag_scale.run([4], 1_000_000, "slurm")[0]
    per_shard = probe["per_shard_steps"]
    shards = [math.ceil(jobs / per_shard) for jobs in p["jobs"]]
    return {"probe": probe, "runs": dag_scale.run(shards, 1_000_000, "slurm")}


CHILDREN = {
    "text": child_text,
    "text_shard": child_text_shard,
    "image_metrics": child_image_metrics,
    "metrics_shard": child_metrics_shard,
    "download": child_download,
    "embeddings": child_embeddings,
    "image_safety": child_image_safety,
    "dedup": child_dedup,
    "scaling": child_scaling,
    "dag": child_dag,
}


# --------------------------------------------------------------------------------------------
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
    result["_peak_rss_mib"] = usage.ru_maxrss / 1024
    result["_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["_wall_s"] = wall
    return result


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
    from benchmarks.text_stages import make_frame

    r = run_child("text", {"rows": sizes["text_rows"]}, logs)
    rows = {x["stage"]: x for x in r["results"] if x["ratio"] is not None}
    chain, cn, cc = rows["text (all 12 steps)"], rows["cn_detect"], rows["font_conversion"]
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
        chain = next(x for x in done["text"]["results"] if x["stage"] == "text (all 12 steps)")
        job_s = shard_size() / chain["value"] / 12
        r["ratio"] = last["cpu_seconds"] / last["jobs"] / job_s
        say(
            f"  overhead ratio {r['ratio']:.5f}: snakemake CPU per job / core-seconds of a mean "
            f"text-step job on a {shard_size():,}-row shard ({job_s:.1f} s, measured above)"
        )
    return r


# --------------------------------------------------------------------------------------------
# Memory and projection.


def memory_table(res: dict, shard: int) -> list[dict]:
    rows = []
    text_mem = res["text"]["memory"]
    (a, b) = text_mem[0], text_mem[-1]
    at, slope = linear(a["rows"], a["_peak_rss_mib"], b["rows"], b["_peak_rss_mib"], shard)
    rows.append(
        {
            "stage": "text steps (12, one process)",
            "measured": ", ".join(
                f"{m['_peak_rss_mib']:,.0f} MiB at {m['rows']:,} rows" for m in text_mem
            ),
            "at_shard_mib": at,
            "how": f"linear through the two sizes ({slope * 1024:.2f} KiB/row)",
        }
    )
    mm = res["image_metrics"]["memory"]
    t1, t2 = mm["tiny"][0], mm["tiny"][-1]
    _, slope = linear(t1["images"], t1["_peak_rss_mib"], t2["images"], t2["_peak_rss_mib"], 0)
    real = mm["real"]
    rows.append(
        {
            "stage": "image metrics (per worker process)",
            "measured": f"{real['_peak_rss_mib']:,.0f} MiB at {real['images']:,} images; "
            + ", ".join(
                f"{t['_peak_rss_mib']:,.0f} MiB at {t['images']:,} tiny" for t in mm["tiny"]
            ),
            "at_shard_mib": real["_peak_rss_mib"] + slope * (shard - real["images"]),
            "how": f"real-image peak + per-row growth from tiny-JPEG runs "
            f"({slope * 1024:.2f} KiB/row)",
        }
    )
    d = res["download"]
    rows.append(
        {
            "stage": "download (largest process)",
            "measured": f"{d['_peak_rss_mib']:,.0f} MiB at {d['images']:,} images",
            "at_shard_mib": None,
            "how": "not extrapolated (img2dataset streams tars)",
        }
    )
    e = res["embeddings"]
    dims = {"efficientnet-lite0": (1280, 1), "chinese-clip-ViT-L-14": (768, 2)}
    rows.append(
        {
            "stage": "embeddings (models in one process)",
            "measured": f"{e['_peak_rss_mib']:,.0f} MiB",
            "at_shard_mib": e["_peak_rss_mib"]
            + max(
                dim * towers * 2 * shard / 2**20
                for key, (dim, towers) in dims.items()
                if f"{key}/cpu" in e
            ),
            "how": "measured peak + the shard's float16 outputs (computed: rows x dim x 2 B"
            " per tower)",
        }
    )
    s = res["image_safety"]
    rows.append(
        {
            "stage": "image_safety (NSFW scores)",
            "measured": f"{s['_peak_rss_mib']:,.0f} MiB at {s['images']:,} images",
            "at_shard_mib": None,
            "how": "not extrapolated (batches streamed; per row only the uid and score are kept)",
        }
    )
    for dd in res["dedup"]["runs"]:
        rows.append(
            {
                "stage": f"dedup N={dd['n']:,} dim {dd['dim']}",
                "measured": f"{dd['_peak_rss_mib']:,.0f} MiB",
                "at_shard_mib": None,
                "how": "per batch / global, not per shard",
            }
        )
    for run in res["dag"]["runs"]:
        rows.append(
            {
                "stage": f"snakemake -n, {run['jobs']:,} jobs",
                "measured": f"{run['max_rss_mb']:,} MB",
                "at_shard_mib": None,
                "how": "",
            }
        )
    return rows


def projection(res: dict) -> dict:
    """Core-hours (and GPU-hours) per stage at Table 6's input rows, from measured rates."""
    from danqing.steps import PAPER_COLLECTED, STEPS

    inputs, previous = {}, PAPER_COLLECTED
    for step in STEPS:
        inputs[step.name] = previous
        previous = step.paper_left
    rows: list[dict] = []

    def add(
        stage: str,
        step: str,
        rows_in: int,
        per_core: float | None,
        note: str = "",
        core_s: float | None = None,
        gpu_per_s: float | None = None,
    ) -> None:
        if core_s is None and per_core:
            core_s = rows_in / per_core
        rows.append(
            {
                "stage": stage,
                "step": step,
                "rows": rows_in,
                "per_core_per_s": per_core,
                "core_hours": None if core_s is None else core_s / 3600,
                "gpu_hours": None if not gpu_per_s else rows_in / gpu_per_s / 3600,
                "note": note,
            }
        )

    text = {x["stage"]: x for x in res["text"]["results"] if x["ceiling"] == ""}
    for step in STEPS:
        if step.name in text:
            add(step.name, step.name, inputs[step.name], text[step.name]["value"])
        elif step.name == "download_images":
            d = res["download"]
            add(
                "download_images",
                step.name,
                inputs[step.name],
                d["stage_steady_per_s"] / d["processes"],
                "img2dataset per process core, steady, local server (network-bound in reality)",
            )
        elif step.name == "image_geometry":
            add(
                "image metrics (decode once)",
                step.name,
                inputs[step.name],
                res["image_metrics"]["stage_per_s"],
                "feeds image_geometry, low_textual_images, blurry_images, image_entropy",
            )
        elif step.name in ("low_textual_images", "blurry_images", "image_entropy"):
            add(
                step.name,
                step.name,
                inputs[step.name],
                None,
                "threshold on the metrics table (not measured; no decoding)",
            )
        elif step.name == "exact_dedup":
            add(
                step.name,
                step.name,
                inputs[step.name],
                None,
                "grouping of the batch's image sha256s (not measured; no decoding)",
            )
        elif step.name == "semantic_dedup":
            e = res["embeddings"]
            for key, label in (
                ("efficientnet-lite0", "embeddings, efficientnet-lite0"),
                ("chinese-clip-ViT-L-14", "embeddings, Chinese-CLIP ViT-L/14"),
            ):
                m = e.get(f"{key}/cpu")
                if m is None:
                    continue
                per_row = 1 / m["images_per_s"] + (
                    1 / m["texts_per_s"] if "texts_per_s" in m else 0
                )
                g = e.get(f"{key}/cuda")
                gpu = (
                    None
                    if g is None
                    else 1
                    / (1 / g["images_per_s"] + (1 / g["texts_per_s"] if "texts_per_s" in g else 0))
                )
                add(
                    label,
                    step.name,
                    inputs[step.name],
                    1 / per_row,
                    "image + caption per row" if "texts_per_s" in m else "image only",
                    gpu_per_s=gpu,
                )
            add(
                "semantic_dedup (FAISS IVF)",
                step.name,
                inputs[step.name],
                None,
                *dedup_cost(res, inputs[step.name], batches=7),
            )
        elif step.name == "image_safety":
            add(
                "image_safety (open_nsfw scores)",
                step.name,
                inputs[step.name],
                res["image_safety"]["images_per_s"],
                "decode + preprocessing + ONNX ResNet-50 on the CPU; onnxruntime-gpu not measured",
            )
        elif step.name == "cross_modal_alignment":
            add(
                step.name,
                step.name,
                inputs[step.name],
                None,
                "distances come with the embeddings (not measured)",
            )
        elif step.name == "cross_batch_dedup":
            add(
                "cross_batch_dedup (FAISS IVF)",
                step.name,
                inputs[step.name],
                None,
                *dedup_cost(res, inputs[step.name], batches=1),
            )
    dag = res["dag"]["runs"][-1]
    per_shard = dag["per_shard_steps"]
    shards = math.ceil(PAPER_COLLECTED / res["meta"]["shard_size"])
    jobs = shards * per_shard + (dag["jobs"] - dag["shards"] * per_shard)
    add(
        "snakemake DAG build (snakemake -n)",
        "",
        jobs,
        None,
        f"{shards:,} shards x {per_shard} + {dag['jobs'] - dag['shards'] * per_shard} jobs at "
        f"{dag['ms_per_job']:.2f} ms/job ({dag['jobs']:,}-job run, linear)",
        core_s=jobs * dag["cpu_seconds"] / dag["jobs"],
    )
    configured = [r for r in rows if "Chinese-CLIP" not in r["stage"]]
    paper_model = [r for r in rows if "efficientnet" not in r["stage"]]
    total = {
        name: sum(r["core_hours"] or 0 for r in subset)
        if any(key in r["stage"] for r in subset)
        else None
        for name, subset, key in (
            ("efficientnet-lite0", configured, "efficientnet"),
            ("chinese-clip", paper_model, "Chinese-CLIP"),
        )
    }
    gpu_any = any(r["gpu_hours"] for r in rows)
    return {"rows": rows, "total_core_hours": total, "gpu_measured": gpu_any}


def dedup_cost(res: dict, rows_in: int, batches: int) -> tuple[str, float | None]:
    """(note, core-seconds) of IVF dedup over `rows_in` vectors in `batches` equal batches,
    from the two largest measured sizes: cost = c * N^e, e fitted to them."""
    runs = sorted(res["dedup"]["runs"], key=lambda d: d["n"])
    if len(runs) < 2:
        return "needs two dedup sizes", None
    a, b = runs[-2], runs[-1]
    e = math.log(b["ivf_cpu_s"] / a["ivf_cpu_s"]) / math.log(b["n"] / a["n"])
    per_batch = rows_in / batches
    core_s = batches * b["ivf_cpu_s"] * (per_batch / b["n"]) ** e
    return (
        f"{batches} x {per_batch:,.0f} vectors, cost ~ N^{e:.2f} fitted to N={a['n']:,} and "
        f"{b['n']:,} (dim {b['dim']})"
    ), core_s


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def projection_markdown(proj: dict, memory: list[dict], meta: dict) -> str:
    lines = [
        "# Projected cost of the paper's run",
        "",
        f"Measured {meta['when']} on {meta['cores']} cores ({meta['machine']}), "
        f"`{meta['command']}`. Input rows per stage: Table 6's Left Data Num of the previous "
        "step (`danqing.steps.STEPS`), 1,047,085,609 for the first. Rates: rows (or images) per "
        "second per core, measured in this run.",
        "",
        "| stage | step | input rows | per core /s | core-hours | GPU-hours | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in proj["rows"]:
        lines.append(
            f"| {r['stage']} | {r['step']} | {r['rows']:,} | "
            f"{fmt(r['per_core_per_s'], ',.1f')} | {fmt(r['core_hours'], ',.1f')} | "
            f"{fmt(r['gpu_hours'], ',.1f')} | {r['note']} |"
        )
    t = proj["total_core_hours"]
    lines += [
        "",
        f"Total core-hours (measured stages): {fmt(t['efficientnet-lite0'])} with the configured "
        f"efficientnet-lite0 embedder, {fmt(t['chinese-clip'])} with Chinese-CLIP ViT-L/14 on CPU "
        "(the paper's model).",
        "GPU-hours: "
        + (
            "see the table."
            if proj["gpu_measured"]
            else "not measured (no GPU here; `python -m benchmarks.run --gpu` on a GPU machine "
            "fills the column)."
        ),
        "",
        f"## Peak memory (default shard: {meta['shard_size']:,} rows)",
        "",
        "| stage | measured peak RSS | at the default shard | how |",
        "|---|---|---:|---|",
    ]
    for m in memory:
        at = "n/a" if m["at_shard_mib"] is None else f"{m['at_shard_mib'] / 1024:,.2f} GiB"
        lines.append(f"| {m['stage']} | {m['measured']} | {at} | {m['how']} |")
    return "\n".join(lines) + "\n"


def print_projection(proj: dict, say: Report) -> None:
    say("")
    say("Projection at the paper's row counts (Table 6), from the per-core rates above:")
    say(
        f"  {'stage':42s} {'input rows':>15s} {'per core/s':>11s} {'core-hours':>11s} "
        f"{'GPU-hours':>9s}"
    )
    for r in proj["rows"]:
        say(
            f"  {r['stage'][:42]:42s} {r['rows']:>15,} {fmt(r['per_core_per_s'], ',.1f'):>11s} "
            f"{fmt(r['core_hours'], ',.1f'):>11s} {fmt(r['gpu_hours'], ',.1f'):>9s}"
        )
    t = proj["total_core_hours"]
    say(
        f"  total core-hours: {fmt(t['efficientnet-lite0'])} (efficientnet-lite0 embedder), "
        f"{fmt(t['chinese-clip'])} (Chinese-CLIP ViT-L/14 on CPU); GPU-hours: "
        + ("measured" if proj["gpu_measured"] else "not measured (no GPU here)")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=list(STAGES), help=argparse.SUPPRESS
    )
    parser.add_argument("--text-rows", type=int)
    parser.add_argument("--images", type=int, help="image-metric benchmark JPEGs")
    parser.add_argument("--download-images", type=int)
    parser.add_argument("--embed-images", type=int)
    parser.add_argument("--nsfw-images", type=int)
    parser.add_argument("--clip-images", type=int, help="0 skips Chinese-CLIP ViT-L/14")
    parser.add_argument("--dedup-sizes", type=int, nargs="+")
    parser.add_argument("--dedup-dim", type=int)
    parser.add_argument("--dag-jobs", type=int, nargs="+", help="per-shard job counts")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="GPU rates against the GPU's dense ceiling (benchmarks/gpu.py); fills the projection's "
        "GPU-hours column when a CPU run's results.json is in --out",
    )
    parser.add_argument("--gpu-smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](json.loads(args.params))
        args.result.write_text(json.dumps(result, indent=1))
        return 0

    if args.gpu or args.gpu_smoke:
        return gpu_main(args.out, smoke=args.gpu_smoke)
    sizes = dict(QUICK if args.quick else FULL)
    for key in (
        "text_rows",
        "images",
        "download_images",
        "embed_images",
        "nsfw_images",
        "clip_images",
        "dedup_sizes",
        "dedup_dim",
        "dag_jobs",
    ):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    out: Path = args.out
    logs = out / "logs"
    out.mkdir(parents=True, exist_ok=True)
    say = Report()
    global LATER
    LATER = Later(background=args.quick)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes,
        "shard_size": shard_size(),
        "python": sys.version.split()[0],
        "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
    }
    say(
        f"DanQing benchmarks ({'quick' if args.quick else 'full'}), {meta['cores']} cores, "
        f"{meta['machine']}; default shard size {meta['shard_size']:,} rows "
        "(config partition.shard_size)"
    )
    benches = {
        "text": bench_text,
        "image_metrics": bench_image_metrics,
        "download": bench_download,
        "embeddings": bench_embeddings,
        "image_safety": bench_image_safety,
        "dedup": bench_dedup,
        "scaling": bench_scaling,
        "dag": bench_dag,
    }
    results: dict = {"meta": meta}
    started = time.perf_counter()
    if args.quick and "download" in args.stages:
        results["_download"] = LATER(run_child, "download", download_params(sizes), logs)
    for stage in STAGES:
        if stage in args.stages:
            results[stage] = benches[stage](sizes, logs, say, results)
    results = resolve(results)
    if set(STAGES) <= set(results):
        memory = memory_table(results, meta["shard_size"])
        say("")
        say(
            f"Peak memory (ru_maxrss of each stage's child process); default shard "
            f"{meta['shard_size']:,} rows:"
        )
        for m in memory:
            at = (
                ""
                if m["at_shard_mib"] is None
                else f" -> {m['at_shard_mib'] / 1024:,.2f} GiB at {meta['shard_size']:,} rows"
            )
            say(f"  {m['stage']:36s} {m['measured']}{at}  [{m['how']}]")
        proj = projection(results)
        print_projection(proj, say)
        results["memory"] = memory
        results["projection"] = proj
        (out / "projection.md").write_text(projection_markdown(proj, memory, meta))
    results["meta"]["seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "summary.txt").write_text("\n".join(say.lines) + "\n")
    say(
        f"\nwrote {out / 'results.json'}, {out / 'projection.md'} in "
        f"{results['meta']['seconds']:.0f} s"
    )
    return 0


def gpu_main(out: Path, smoke: bool) -> int:
    """`--gpu`: benchmarks/gpu.py's measurements, written to gpu.json and printed; merged into
    an earlier full run's results.json (same --out) to give the projection its GPU-hours."""
    from benchmarks import gpu

    out.mkdir(parents=True, exist_ok=True)
    try:
        r = gpu.run(smoke)
    except SystemExit as stop:
        print(f"benchmarks.run --gpu: {stop}", file=sys.stderr)
        return 2
    say = Report()
    for line in gpu.lines(r):
        say(line)
    (out / "gpu.json").write_text(json.dumps(r, indent=1))
    earlier = out / "results.json"
    if earlier.is_file() and not smoke:
        results = json.loads(earlier.read_text())
        clip = r["clip"]
        if "skipped" not in clip:
            results["embeddings"]["chinese-clip-ViT-L-14/cuda"] = clip
        if "skipped" not in r["efficientnet-lite0"]:
            results["embeddings"]["efficientnet-lite0/cuda"] = r["efficientnet-lite0"]
        results["embeddings"]["gpu_name"] = r["device"]
        results["gpu"] = r
        proj = projection(results)
        results["projection"] = proj
        memory = results.get("memory") or []
        (out / "projection.md").write_text(projection_markdown(proj, memory, results["meta"]))
        earlier.write_text(json.dumps(results, indent=1, default=str))
        say(f"GPU-hours added to {out / 'projection.md'}")
    return 0


def machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


# img2dataset's worker processes are spawned and import the main module again.
if __name__ == "__main__":
    sys.exit(main())
