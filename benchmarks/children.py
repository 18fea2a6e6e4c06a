"""The child side of `python -m benchmarks.run`: one stage benchmark per process (`--child STAGE`),
which makes its inputs and measures the stage and its ceiling on them, in the same process."""

from __future__ import annotations

import io
import math
import os
import tempfile
import time
from pathlib import Path

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
    from danqing import config
    from danqing.embed import load_embedder
    from danqing.embed.efficientnet_lite import EMBED_BLUR_SIGMA, pixels
    from danqing.embed.efficientnet_onnx import to_onnx

    embedder = load_embedder(
        config.section("embedding", {"model": "efficientnet-lite0", "batch_size": batch}),
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
