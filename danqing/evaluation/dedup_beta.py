"""Calibrating the near-duplicate threshold beta of an image embedder on real images.

    python -m danqing.evaluation.dedup_beta

Real images: DanQing's own kept images (shared/data/real/danqing_examples: product photos, designs,
screenshots, posters) and the photographs that ship in wheels (scikit-image, scikit-learn,
matplotlib). Near duplicates are made from each the way the web copies images: re-encoded,
resized, cropped, watermarked, brightened. A beta separates them when every near duplicate is
closer than beta and every pair of distinct images farther; the margin between the two says how
safe the choice is. The paper's beta = 0.1 is for Chinese-CLIP ViT-L/14; each embedder has its
own scale (MODEL_BETA in danqing.dedup).
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from danqing.evaluation.real_sets import shared_data
from danqing.evaluation.wheel_photos import PHOTOS, load_photo


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _crop(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * share), int(h * share)
    return img.crop((dx, dy, w - dx, h - dy))


def _watermark(img: Image.Image) -> Image.Image:
    """A semi-transparent site mark in a corner, as image hosts stamp re-posted pictures."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = base.size
    box = (int(w * 0.62), int(h * 0.86), int(w * 0.97), int(h * 0.97))
    draw.rectangle(box, fill=(255, 255, 255, 110))
    draw.text((box[0] + 4, box[1] + 2), "@weibo.com/photo", fill=(40, 40, 40, 200))
    return Image.alpha_composite(base, layer).convert("RGB")


VARIANTS: dict[str, Callable[[Image.Image], bytes]] = {
    "re-encoded JPEG q60": lambda im: _jpeg(im, 60),
    "re-encoded JPEG q40": lambda im: _jpeg(im, 40),
    "resized to 0.7, q88": lambda im: _jpeg(
        im.resize((max(1, int(im.width * 0.7)), max(1, int(im.height * 0.7)))), 88
    ),
    "resized to 0.5, q60": lambda im: _jpeg(
        im.resize((max(1, im.width // 2), max(1, im.height // 2))), 60
    ),
    "cropped 5% per side, q88": lambda im: _jpeg(_crop(im, 0.05), 88),
    "watermarked corner, q85": lambda im: _jpeg(_watermark(im), 85),
    "brighter and more saturated, q90": lambda im: _jpeg(
        ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(1.15)).enhance(1.2), 90
    ),
}
# Not duplicates at any beta a user would choose; reported to show where the scale lies.
REPORTED_ONLY = {"cropped 10% per side, q88": lambda im: _jpeg(_crop(im, 0.10), 88)}


def real_images() -> dict[str, Image.Image]:
    """name -> RGB image: the DanQing examples and the wheel photographs."""
    images = {}
    for path in sorted((shared_data() / "real" / "danqing_examples").glob("*.jpg")):
        images[f"danqing:{path.stem}"] = Image.open(path).convert("RGB")
    for name in PHOTOS:
        images[f"photo:{name}"] = load_photo(name).convert("RGB")
    return images


def distances(embed: Callable[[list[bytes]], np.ndarray]) -> dict[str, np.ndarray]:
    """Cosine distances: `distinct` (every pair of different images) and, per variant, each
    image to its own variant."""
    images = real_images()
    originals = [_jpeg(im, 95) for im in images.values()]
    base = embed(originals)
    out = {
        "distinct": np.array(
            [1.0 - float(base[i] @ base[j]) for i, j in itertools.combinations(range(len(base)), 2)]
        )
    }
    for name, make in {**VARIANTS, **REPORTED_ONLY}.items():
        copies = embed([make(im) for im in images.values()])
        out[name] = 1.0 - np.einsum("ij,ij->i", base, copies)
    return out


def separating_beta(found: dict[str, np.ndarray]) -> tuple[float, float]:
    """(largest near-duplicate distance, smallest distinct distance)."""
    near = max(float(found[name].max()) for name in VARIANTS)
    return near, float(found["distinct"].min())


def main() -> int:
    from danqing.dedup import MODEL_BETA
    from danqing.embed.efficientnet_lite import EfficientNetLite0Embedder

    embedder = EfficientNetLite0Embedder(device="cpu")
    found = distances(embedder.embed_images)
    print(f"{len(real_images())} real images; cosine distances under {embedder.name}\n")
    print("| pairs | n | min | median | max |\n|---|---:|---:|---:|---:|")
    for name, values in found.items():
        print(
            f"| {name} | {len(values)} | {values.min():.3f} | {np.median(values):.3f} | "
            f"{values.max():.3f} |"
        )
    near, distinct = separating_beta(found)
    beta = MODEL_BETA[embedder.name]
    print(f"\nnear duplicates <= {near:.3f} < beta {beta} < {distinct:.3f} <= distinct pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
