"""GPU rates against the GPU's own dense ceiling: `python -m benchmarks.run --gpu` (< 8 minutes).

Measured, each on the first CUDA device, each against what bounds it:

- the dense ceiling: an 8192^3 fp16 and bf16 matrix product (TFLOP/s, the faster of the two);
- Chinese-CLIP ViT-L/14 (random weights, cn_clip's own architecture and its fp16 conversion, as
  the image_embeddings rule loads a real checkpoint on a GPU): image and text towers, network
  alone on prepared batches, FLOPs per item counted by torch's FlopCounterMode on the same model
  (~162 GFLOP per 224 px image), so the ratio is achieved TFLOP/s / ceiling (target >= 0.40);
- EfficientNet-Lite0 on the GPU (torch), network alone;
- NSFW scores: the open_nsfw ONNX model under onnxruntime's CUDA provider, where installed;
- the dedup pair search of 1M x 768 vectors on the GPU (danqing.dedup.neighbour_pairs with
  use_gpu always), where FAISS has GPU support.

A part whose package is missing is reported as not measured with the reason; nothing is
substituted. `--smoke` runs the same code on the CPU at toy sizes (tests/test_benchmarks.py):
it checks the code path, its numbers mean nothing.
"""

from __future__ import annotations

import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn, device, items: int, repeats: int) -> float:
    """items/s of fn() over `repeats` calls after two warm-up calls."""
    fn(), fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return items * repeats / (time.perf_counter() - start)


def dense_ceiling(device, size: int, repeats: int) -> dict:
    import torch

    out = {}
    for dtype in (torch.float16, torch.bfloat16):
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        per_s = _rate(lambda a=a, b=b: a @ b, device, 1, repeats)
        out[str(dtype).removeprefix("torch.")] = 2 * size**3 * per_s / 1e12
    out["tflops"] = max(out.values())
    return out


def _flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def clip_rates(device, batch: int, repeats: int, architecture: str, ceiling: float) -> dict:
    import torch

    from danqing.cnclip import module
    from danqing.embed.chinese_clip import build_model, model_info, tokenize
    from danqing.embed.preprocess import CLIP_MEAN

    torch.manual_seed(0)
    info = model_info(architecture)
    model = build_model(info)
    if device.type == "cuda":
        module("model").convert_weights(model)  # cn_clip's fp16 conversion, as on a GPU
    else:
        model = model.float()
    model = model.to(device).eval()
    size = int(info["image_resolution"])
    dtype = next(model.visual.parameters()).dtype
    pixels = torch.full((batch, 3, size, size), float(CLIP_MEAN[0]), device=device, dtype=dtype)
    pixels += 0.1 * torch.randn_like(pixels)
    tokens = tokenize(["丹青：中文图文预训练数据集的一条演示标题"] * batch).to(device)
    with torch.inference_mode():
        image_flops = _flops(lambda: model.encode_image(pixels[:1]))
        text_flops = _flops(lambda: model.encode_text(tokens[:1]))
        images = _rate(lambda: model.encode_image(pixels), device, batch, repeats)
        texts = _rate(lambda: model.encode_text(tokens), device, batch, repeats)
    image_tflops = images * image_flops / 1e12
    return {
        "architecture": architecture,
        "dtype": str(dtype).removeprefix("torch."),
        "batch": batch,
        "gflop_per_image": image_flops / 1e9,
        "gflop_per_text": text_flops / 1e9,
        "images_per_s": images,
        "texts_per_s": texts,
        "image_tflops": image_tflops,
        "of_ceiling": image_tflops / ceiling,
    }


def lite0_rate(device, batch: int, repeats: int) -> dict:
    import torch

    from danqing.embed.efficientnet_lite import INPUT_SIZE, load_model

    model = load_model().to(device).eval()
    x = torch.randn(batch, 3, INPUT_SIZE, INPUT_SIZE, device=device)
    with torch.inference_mode():
        return {"images_per_s": _rate(lambda: model.features(x), device, batch, repeats)}


def nsfw_rate(batch: int, repeats: int, cuda: bool) -> dict:
    import numpy as np
    import onnxruntime as ort

    from danqing.images import nsfw

    provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        return {"skipped": f"onnxruntime has no {provider} (install onnxruntime-gpu)"}
    session = ort.InferenceSession(str(nsfw.default_model_path()), providers=[provider])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((batch, 224, 224, 3), dtype=np.float32) * 255 - 120
    start = time.perf_counter()
    for _ in range(repeats + 1):
        session.run(None, {name: x})
        if _ == 0:
            start = time.perf_counter()
    return {"images_per_s": batch * repeats / (time.perf_counter() - start)}


def dedup_rate(vectors: int, dim: int, cuda: bool) -> dict:
    import faiss

    from benchmarks.dedup import clustered_embeddings
    from danqing.dedup import DedupSettings, neighbour_pairs

    if cuda and not (hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0):
        return {"skipped": "this FAISS has no GPU support (install faiss-gpu)"}
    x = clustered_embeddings(vectors, dim)
    settings = DedupSettings(beta=0.1, use_gpu="always" if cuda else "never")
    start = time.perf_counter()
    i, _, info, _ = neighbour_pairs(x, settings)
    seconds = time.perf_counter() - start
    return {"vectors": vectors, "dim": dim, "seconds": seconds, "pairs": len(i), **info}


def run(smoke: bool = False) -> dict:
    import torch

    cuda = torch.cuda.is_available() and not smoke
    if not cuda and not smoke:
        raise SystemExit("no CUDA GPU visible to torch: the GPU benchmark needs one")
    device = torch.device("cuda" if cuda else "cpu")
    out: dict = {"device": torch.cuda.get_device_name(0) if cuda else "cpu (smoke run)"}
    out["ceiling"] = dense_ceiling(device, 8192 if cuda else 256, 10 if cuda else 2)
    parts = {
        "clip": lambda: clip_rates(
            device,
            256 if cuda else 2,
            10 if cuda else 1,
            "ViT-L-14" if cuda else "RN50",
            out["ceiling"]["tflops"],
        ),
        "efficientnet-lite0": lambda: lite0_rate(device, 256 if cuda else 2, 10 if cuda else 1),
        "nsfw": lambda: nsfw_rate(256 if cuda else 2, 10 if cuda else 1, cuda),
        "dedup": lambda: dedup_rate(1_000_000 if cuda else 3_000, 768 if cuda else 32, cuda),
    }
    for name, part in parts.items():
        try:
            out[name] = part()
        except ImportError as error:
            out[name] = {"skipped": f"{type(error).__name__}: {error}"}
    return out


def lines(r: dict) -> list[str]:
    out = [
        f"[gpu] {r['device']}; dense ceiling {r['ceiling']['tflops']:,.1f} TFLOP/s "
        f"(fp16 {r['ceiling']['float16']:,.1f}, bf16 {r['ceiling']['bfloat16']:,.1f})"
    ]
    clip = r["clip"]
    if "skipped" in clip:
        out.append(f"  Chinese-CLIP: not measured: {clip['skipped']}")
    else:
        verdict = "PASS" if clip["of_ceiling"] >= 0.4 else "BELOW"
        out.append(
            f"  Chinese-CLIP {clip['architecture']} ({clip['dtype']}, batch {clip['batch']}): "
            f"{clip['images_per_s']:,.1f} images/s, {clip['gflop_per_image']:.1f} GFLOP/image = "
            f"{clip['image_tflops']:,.1f} TFLOP/s | ratio {clip['of_ceiling']:.2f} of the ceiling "
            f"(target >= 0.40) {verdict}; text tower {clip['texts_per_s']:,.1f} texts/s"
        )
    for name in ("efficientnet-lite0", "nsfw"):
        m = r[name]
        out.append(
            f"  {name}: "
            + (
                f"not measured: {m['skipped']}"
                if "skipped" in m
                else f"{m['images_per_s']:,.1f} images/s"
            )
        )
    d = r["dedup"]
    out.append(
        "  dedup: "
        + (
            f"not measured: {d['skipped']}"
            if "skipped" in d
            else f"{d['vectors']:,} x {d['dim']} in {d['seconds']:.1f} s ({d['index']}), "
            f"{d['pairs']:,} pairs"
        )
    )
    return out
