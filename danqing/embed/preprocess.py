"""Image preprocessing of the embedders, in Pillow and NumPy (torchvision is not a dependency).

`clip_batch` reproduces Chinese-CLIP's `cn_clip.clip.utils.image_transform(res)`:

    Resize((res, res), interpolation=BICUBIC) -> convert("RGB") -> ToTensor -> Normalize(mean, std)

torchvision's Resize on a PIL image calls `PIL.Image.resize` with the same filter, ToTensor
divides by 255 into CHW float32, and Normalize subtracts and divides per channel, so the steps
below give the same tensors (up to float rounding).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def squash_rgb(data: bytes, size: int) -> np.ndarray:
    """Resize to size x size (bicubic, aspect not kept), then RGB: uint8 [size, size, 3].

    The order (resize, then convert) is cn_clip's: it matters for palette images.
    """
    image = open_image(data).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image.convert("RGB"))


def clip_pixels(data: bytes, size: int) -> np.ndarray:
    """One image as cn_clip's image_transform gives it: float32 [3, size, size]."""
    pixels = squash_rgb(data, size).astype(np.float32) / 255.0
    return ((pixels - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


def clip_batch(images: Sequence[bytes], size: int) -> np.ndarray:
    return np.ascontiguousarray(np.stack([clip_pixels(data, size) for data in images]))
