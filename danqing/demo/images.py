"""Deterministic demo images: photo-like pictures and the hard cases of `corpus.IMAGE_CASES`.

Every image is a pure function of its case and key (`render(case, key)` returns the same bytes on
every call and machine with the same Pillow), so the demo image server needs no storage and the
tests can rebuild any image the workflow downloaded.

Photos are built from real photographs that ship inside installed wheels (no download needed):

    scikit-image  skimage/data/   astronaut, coffee, chelsea, rocket, hubble_deep_field,
                                  immunohistochemistry, camera, coins (public domain or CC0),
                                  brick, grass, gravel (CC0 textures)
    scikit-learn  datasets/images china.jpg, flower.jpg (CC-BY 2.0)
    matplotlib    sample_data     grace_hopper.jpg (public domain, US Navy)

Thousands of keys must give images that an embedding model sees as different pictures (the
semantic dedup stage drops pairs closer than cosine distance 0.1), so a key picks one of several
compositions, each mixing several source photos with their own crops, scales, flips and colour
grading: mosaics of 2-9 photos, a procedural landscape whose ground and hills are textured with
photo crops, a product shot on a studio background, a framed photo on a patterned wall, and a
double exposure of two photos. Source crops are enlarged at most 1.15x (textures 1.6x) and the
result lightly sharpened, so a photo is as sharp as real web photos are: over keys 000000-000999
the 3x3 Laplacian variance of the grey image is >= 2,400 (the blur filter's threshold is 1,000),
grey-level entropy >= 4.6 bits and std >= 30. Distinct keys are distinct pictures to an ImageNet
EfficientNet-Lite0 (global-average-pooled features of 300 photos: nearest other photo at cosine
distance >= 0.128, median 0.30), while every near-duplicate variant stays within 0.1 of its
original.

Hard cases, each with the property the filter expecting it measures: `blurry` (Gaussian blur,
sigma 4-8), `flat` (one colour, std < 1), `tiny` (longest edge 40-96 px), `extreme_aspect` (4:1 to
8:1), `text_screenshot` and `posterized` (sharp, entropy < 2 bits), `huge` (6000x4000),
`truncated` (a JPEG cut inside its header, undecodable), and the duplicates of `dup_of`'s photo.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Cases whose bytes are another key's photo (duplicates) or that serve a photo after an HTTP quirk.
DUPLICATE_CASES = ("exact_dup", "near_dup", "cross_batch_dup")
PHOTO_CASES = ("photo", "redirect", "timeout")
# Served with an `X-Robots-Tag: noai` header: not a corpus case, it tests the opt-out option.
OPTED_OUT_CASE = "opted_out"


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    path: str
    licence: str
    texture: bool = False  # a surface (brick, grass) rather than a subject


SOURCES: tuple[Source, ...] = (
    Source("astronaut", "skimage", "data/astronaut.png", "public domain (NASA)"),
    Source("coffee", "skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
    Source("chelsea", "skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    Source("rocket", "skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    Source("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    Source("immunohistochemistry", "skimage", "data/ihc.png", "no known copyright restrictions"),
    Source("camera", "skimage", "data/camera.png", "CC0 (Lav Varshney)"),
    Source("coins", "skimage", "data/coins.png", "no known copyright restrictions"),
    Source("china", "sklearn", "datasets/images/china.jpg", "CC-BY 2.0"),
    Source("flower", "sklearn", "datasets/images/flower.jpg", "CC-BY 2.0"),
    Source(
        "grace_hopper",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "public domain (US Navy)",
    ),
    Source("brick", "skimage", "data/brick.png", "CC0 (CC0Textures)", texture=True),
    Source("grass", "skimage", "data/grass.png", "CC0 (CC0Textures)", texture=True),
    Source("gravel", "skimage", "data/gravel.png", "CC0 (CC0Textures)", texture=True),
)

# Typical web photo frames (width, height ratios), landscape and portrait.
ASPECTS = ((4, 3), (3, 2), (16, 9), (1, 1), (3, 4), (2, 3), (5, 4), (4, 5))


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@functools.cache
def available_sources() -> tuple[Source, ...]:
    """The sources whose files are installed (all of them with the pinned requirements)."""
    found = []
    for source in SOURCES:
        root = _package_dir(source.package)
        if root is not None and (root / source.path).is_file():
            found.append(source)
    subjects = [s for s in found if not s.texture]
    if len(subjects) < 8:
        raise RuntimeError(
            "the demo images need the sample photos of scikit-image, scikit-learn and matplotlib; "
            f"found only {[s.name for s in found]} (pip install -r requirements.txt)"
        )
    return tuple(found)


@functools.cache
def source_array(name: str) -> np.ndarray:
    """One source photo as an RGB array (loaded once per process, read-only)."""
    source = next(s for s in SOURCES if s.name == name)
    path = _package_dir(source.package) / source.path
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    arr.flags.writeable = False
    return arr


def _subjects() -> list[str]:
    return [s.name for s in available_sources() if not s.texture]


def _textures() -> list[str]:
    return [s.name for s in available_sources() if s.texture]


# --- building blocks ------------------------------------------------------------------------
# Images are RGB uint8 arrays of shape (height, width, 3); OpenCV does the pixel work, which is
# several times faster than Pillow's resampling and filters for the sizes used here.


def key_rng(*parts: object) -> random.Random:
    """A random generator seeded from the parts (stable across processes, unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    shrink = width * height < arr.shape[0] * arr.shape[1]
    return cv2.resize(
        arr, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    )


def crop_to(
    rng: random.Random, name: str, width: int, height: int, max_upscale: float = 1.15
) -> np.ndarray:
    """A random crop of source `name` with the aspect of width x height, resized to that size.

    The crop covers 35-100% of what fits; it is upscaled at most `max_upscale` times so the result
    stays as sharp as the photo.
    """
    src = source_array(name)
    sh, sw = src.shape[:2]
    aspect = width / height
    fit_w, fit_h = (sw, sw / aspect) if sw / sh < aspect else (sh * aspect, sh)
    min_scale = max(width / fit_w, height / fit_h) / max_upscale
    scale = rng.uniform(max(0.35, min(min_scale, 1.0)), 1.0)
    cw, ch = max(8, int(fit_w * scale)), max(8, int(fit_h * scale))
    x0 = rng.randint(0, sw - cw)
    y0 = rng.randint(0, sh - ch)
    tile = resize(src[y0 : y0 + ch, x0 : x0 + cw], width, height)
    return tile[:, ::-1] if rng.random() < 0.5 else tile


def grade(rng: random.Random, arr: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Colour grading as photo apps do it: hue turn, saturation, contrast, brightness, tint."""
    if rng.random() < 0.45 * strength:
        hsv = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + rng.randint(10, 170)) % 180
        arr = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    saturation = 1 + strength * rng.uniform(-0.4, 0.6)
    contrast = 1 + strength * rng.uniform(-0.1, 0.3)
    brightness = 1 + strength * rng.uniform(-0.12, 0.12)
    gains = np.array([1 + strength * rng.uniform(-0.15, 0.15) for _ in range(3)])
    # Saturation (a blend with the luma), contrast around mid-grey, brightness and per-channel
    # gains are all affine in RGB, so one 3x4 matrix applies them in a single OpenCV pass.
    luma = np.array([[0.299, 0.587, 0.114]])
    mix = saturation * np.eye(3) + (1 - saturation) * np.ones((3, 1)) @ luma
    scale = contrast * brightness * gains
    matrix = np.hstack(
        [scale[:, None] * mix, (128.0 * (1 - contrast) * brightness * gains)[:, None]]
    )
    return cv2.transform(np.ascontiguousarray(arr), matrix)


def _random_colour(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return tuple(rng.randint(lo, hi) for _ in range(3))


def gradient(
    width: int, height: int, first: tuple, last: tuple, horizontal: bool = False
) -> np.ndarray:
    steps = width if horizontal else height
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    line = (1 - t) * np.array(first, np.float32) + t * np.array(last, np.float32)
    line = line.astype(np.uint8)
    if horizontal:
        return np.ascontiguousarray(np.broadcast_to(line[None, :, :], (height, width, 3)))
    return np.ascontiguousarray(np.broadcast_to(line[:, None, :], (height, width, 3)))


def paste(
    canvas: np.ndarray, tile: np.ndarray, x: int, y: int, mask: np.ndarray | None = None
) -> None:
    """Copy `tile` onto `canvas` at (x, y), where `mask` (0-255, tile-sized) is set if given."""
    h, w = tile.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return
    part = tile[y0 - y : y1 - y, x0 - x : x1 - x]
    if mask is None:
        canvas[y0:y1, x0:x1] = part
    else:
        alpha = mask[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32) * (1 / 255)
        canvas[y0:y1, x0:x1] = cv2.blendLinear(
            np.ascontiguousarray(part), canvas[y0:y1, x0:x1].copy(), alpha, 1 - alpha
        )


def _frame_size(rng: random.Random, long_lo: int = 420, long_hi: int = 900) -> tuple[int, int]:
    aw, ah = rng.choice(ASPECTS)
    long_edge = rng.randint(long_lo, long_hi)
    if aw >= ah:
        return long_edge, max(1, round(long_edge * ah / aw))
    return max(1, round(long_edge * aw / ah)), long_edge


# --- compositions -----------------------------------------------------------------------------


def _mosaic(rng: random.Random, width: int, height: int) -> np.ndarray:
    """2-9 photos of different sources in a grid, or one big photo with a strip of small ones."""
    subjects = _subjects()
    gutter = rng.choice([0, 4, 6, 10])
    colour = _random_colour(rng, 200, 255) if rng.random() < 0.6 else _random_colour(rng, 0, 60)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = colour
    if rng.random() < 0.35:
        # Feature layout: one large photo and a column or row of thumbnails.
        n_small = rng.randint(2, 3)
        if width >= height:
            big_w = int(width * rng.uniform(0.6, 0.75))
            boxes = [(0, 0, big_w, height)]
            cell = (height - gutter * (n_small - 1)) // n_small
            boxes += [
                (big_w + gutter, i * (cell + gutter), width, i * (cell + gutter) + cell)
                for i in range(n_small)
            ]
        else:
            big_h = int(height * rng.uniform(0.6, 0.75))
            boxes = [(0, 0, width, big_h)]
            cell = (width - gutter * (n_small - 1)) // n_small
            boxes += [
                (i * (cell + gutter), big_h + gutter, i * (cell + gutter) + cell, height)
                for i in range(n_small)
            ]
    else:
        # Grids whose cells keep a photo-like shape: an elongated cell would need a source
        # photo enlarged past sharpness.
        grids = [
            (c, r)
            for c, r in ((2, 1), (1, 2), (2, 2), (3, 2), (2, 3), (3, 3), (3, 1), (1, 3))
            if 0.6 <= (width / c) / (height / r) <= 1.7
        ]
        cols, rows = rng.choice(grids or [(2, 2)])
        cw = (width - gutter * (cols - 1)) / cols
        ch = (height - gutter * (rows - 1)) / rows
        boxes = [
            (
                round(c * (cw + gutter)),
                round(r * (ch + gutter)),
                round(c * (cw + gutter) + cw),
                round(r * (ch + gutter) + ch),
            )
            for r in range(rows)
            for c in range(cols)
        ]
    picks = rng.sample(subjects, min(len(boxes), len(subjects)))
    while len(picks) < len(boxes):
        picks.append(rng.choice(subjects))
    for (x0, y0, x1, y1), name in zip(boxes, picks, strict=True):
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        paste(canvas, grade(rng, crop_to(rng, name, x1 - x0, y1 - y0), 0.7), x0, y0)
    return canvas


def _ridge(rng: random.Random, width: int, base: float, amplitude: float) -> np.ndarray:
    """A hill line as polygon points: a few random sine waves plus a random walk."""
    waves = [
        (rng.uniform(0.5, 4.0), rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 1.0))
        for _ in range(3)
    ]
    walk, points = 0.0, []
    for x in range(0, width + 8, 8):
        walk += rng.uniform(-1, 1) * amplitude * 0.08
        y = (
            base
            + walk
            + sum(a * amplitude * math.sin(f * 2 * math.pi * x / width + p) for f, p, a in waves)
            / 2
        )
        points.append((x, int(y)))
    return np.array(points, np.int32)


def _landscape(rng: random.Random, width: int, height: int) -> np.ndarray:
    """Sky, sun, hills textured with photo crops, and a photo in the foreground."""
    sky_top = _random_colour(rng, 20, 140)
    sky_bottom = tuple(min(255, c + rng.randint(60, 140)) for c in sky_top)
    img = gradient(width, height, sky_top, sky_bottom)
    if rng.random() < 0.7:
        r = rng.randint(height // 14, height // 6)
        centre = (rng.randint(r, width - r), rng.randint(r, max(r, height // 2)))
        cv2.circle(img, centre, r, _random_colour(rng, 180, 255), -1, cv2.LINE_AA)
    textures = _textures() + _subjects()
    layers = rng.randint(2, 4)
    for i in range(layers):
        base = height * (0.35 + 0.5 * (i + 1) / (layers + 1))
        ridge = _ridge(rng, width, base, height * rng.uniform(0.05, 0.15))
        poly = np.concatenate([ridge, np.array([[width, height], [0, height]], np.int32)])
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA)
        fill = grade(rng, crop_to(rng, rng.choice(textures), width, height, max_upscale=1.6))
        shade = 0.55 + 0.45 * (i + 1) / layers
        fill = (fill.astype(np.float32) * shade).astype(np.uint8)
        paste(img, fill, 0, 0, mask)
    if rng.random() < 0.75:
        # A photo in the foreground, as on a poster or a billboard.
        pw = int(width * rng.uniform(0.3, 0.5))
        ph = min(int(pw * rng.uniform(0.6, 1.3)), int(height * 0.7))
        photo = grade(rng, crop_to(rng, rng.choice(_subjects()), pw, ph), 0.5)
        x, y = rng.randint(0, width - pw), rng.randint(0, height - ph)
        border = rng.randint(3, 10)
        cv2.rectangle(
            img,
            (x - border, y - border),
            (x + pw + border, y + ph + border),
            _random_colour(rng, 180, 255),
            -1,
        )
        paste(img, photo, x, y)
    return img


def _product(rng: random.Random, width: int, height: int) -> np.ndarray:
    """One or two photo cut-outs with soft shadows on a studio backdrop and a textured table (a
    shop listing)."""
    img = gradient(
        width,
        height,
        _random_colour(rng, 170, 255),
        _random_colour(rng, 90, 230),
        horizontal=rng.random() < 0.4,
    )
    table_y = int(height * rng.uniform(0.55, 0.75))
    table = grade(
        rng,
        crop_to(
            rng, rng.choice(_textures() or _subjects()), width, height - table_y, max_upscale=1.6
        ),
    )
    paste(img, table, 0, table_y)
    for i in range(rng.randint(1, 2)):
        pw = int(width * rng.uniform(0.45, 0.7) / (1 + 0.4 * i))
        ph = int(height * rng.uniform(0.5, 0.8) / (1 + 0.4 * i))
        x = rng.randint(0, max(0, width - pw))
        y = rng.randint(0, max(0, height - ph))
        off = rng.randint(6, 18)
        shadow = np.zeros((height, width), np.uint8)
        cv2.rectangle(shadow, (x + off, y + off), (x + pw + off, y + ph + off), 140, -1)
        # A soft shadow: blurred at a quarter of the size, which is as smooth and 16x cheaper.
        sigma = rng.uniform(6, 14) / 4
        small = cv2.resize(
            shadow, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA
        )
        shadow = cv2.resize(
            cv2.GaussianBlur(small, (0, 0), sigma), (width, height), interpolation=cv2.INTER_LINEAR
        )
        paste(img, np.full_like(img, 20), 0, 0, shadow)
        mask = np.zeros((ph, pw), np.uint8)
        if rng.random() < 0.5:
            cv2.rectangle(mask, (0, 0), (pw - 1, ph - 1), 255, -1)
        else:
            cv2.ellipse(
                mask,
                (pw // 2, ph // 2),
                (pw // 2 - 1, ph // 2 - 1),
                0,
                0,
                360,
                255,
                -1,
                cv2.LINE_AA,
            )
        item = grade(rng, crop_to(rng, rng.choice(_subjects()), pw, ph), 0.8)
        paste(img, item, x, y, mask)
    return img


def _double_exposure(rng: random.Random, width: int, height: int) -> np.ndarray:
    """Two photos blended through a gradient mask, with a third in a corner inset."""
    first, second, third = rng.sample(_subjects(), 3)
    a = grade(rng, crop_to(rng, first, width, height), 0.8)
    b = grade(rng, crop_to(rng, second, width, height), 0.8)
    ramp = gradient(width, height, (0, 0, 0), (255, 255, 255), horizontal=rng.random() < 0.5)
    paste(a, b, 0, 0, ramp[..., 0])
    iw, ih = int(width * rng.uniform(0.25, 0.4)), int(height * rng.uniform(0.25, 0.4))
    inset = grade(rng, crop_to(rng, third, iw, ih), 0.6)
    x, y = rng.choice(
        [(8, 8), (width - iw - 8, 8), (8, height - ih - 8), (width - iw - 8, height - ih - 8)]
    )
    paste(a, inset, x, y)
    return a


def _wall(rng: random.Random, width: int, height: int) -> np.ndarray:
    """Two or three framed photos hanging on a textured wall."""
    surfaces = _textures() or _subjects()
    wall = grade(rng, crop_to(rng, rng.choice(surfaces), width, height, max_upscale=1.6))
    n = rng.randint(2, 3)
    slot = width // n
    for i, name in enumerate(rng.sample(_subjects(), n)):
        pw = int(slot * rng.uniform(0.6, 0.85))
        ph = int(height * rng.uniform(0.45, 0.8))
        x = i * slot + (slot - pw) // 2
        y = rng.randint(4, max(5, height - ph - 4))
        frame = rng.randint(4, 12)
        cv2.rectangle(
            wall, (x - frame, y - frame), (x + pw + frame, y + ph + frame), _random_colour(rng), -1
        )
        paste(wall, grade(rng, crop_to(rng, name, pw, ph), 0.6), x, y)
    return wall


COMPOSITIONS = (
    (_mosaic, 0.35),
    (_landscape, 0.2),
    (_product, 0.15),
    (_double_exposure, 0.15),
    (_wall, 0.15),
)


def sharpen(arr: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp masking, as most web photos get after resizing."""
    blurred = cv2.GaussianBlur(arr, (0, 0), 1.2)
    return cv2.addWeighted(arr, 1 + amount, blurred, -amount, 0)


def photo_array(key: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """The photo of `key`: a composition of source photos, at a typical web frame size."""
    rng = key_rng("photo", key)
    width, height = size or _frame_size(rng)
    compose = rng.choices([c for c, _ in COMPOSITIONS], [w for _, w in COMPOSITIONS])[0]
    return sharpen(np.ascontiguousarray(compose(rng, width, height)), rng.uniform(0.6, 1.2))


def encode_jpeg(arr: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _photo_quality(key: str) -> int:
    return key_rng("quality", key).randint(82, 93)


@functools.lru_cache(maxsize=256)
def photo_bytes(key: str) -> bytes:
    """The JPEG of `key`'s photo; duplicates of `key` are built from these exact bytes."""
    return encode_jpeg(photo_array(key), _photo_quality(key))


# --- hard cases -------------------------------------------------------------------------------


def blurry(key: str) -> bytes:
    """A photo behind a strong Gaussian blur (out of focus, or upscaled from a thumbnail)."""
    rng = key_rng("blurry", key)
    return encode_jpeg(cv2.GaussianBlur(photo_array(key), (0, 0), rng.uniform(4.0, 8.0)), 90)


def flat(key: str) -> bytes:
    """A uniform colour with sensor-like noise well under 2 grey levels of standard deviation."""
    rng = key_rng("flat", key)
    width, height = _frame_size(rng, 300, 800)
    base = np.array(_random_colour(rng, 30, 230), dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 0.6, (height, width, 1))
    return encode_jpeg(np.clip(base + noise, 0, 255).astype(np.uint8), 92)


def tiny(key: str) -> bytes:
    """An icon-sized photo: longest edge 40-96 px."""
    rng = key_rng("tiny", key)
    arr = photo_array(key)
    scale = rng.randint(40, 96) / max(arr.shape[:2])
    return encode_jpeg(
        resize(arr, max(1, round(arr.shape[1] * scale)), max(1, round(arr.shape[0] * scale))), 90
    )


def extreme_aspect(key: str) -> bytes:
    """A banner or a long vertical strip: aspect ratio 4:1 to 8:1."""
    rng = key_rng("extreme_aspect", key)
    ratio = rng.uniform(4.0, 8.0)
    long_edge = rng.randint(900, 1400)
    short_edge = max(120, int(long_edge / ratio))
    size = (long_edge, short_edge) if rng.random() < 0.7 else (short_edge, long_edge)
    return encode_jpeg(_mosaic(rng, *size), 90)


@functools.cache
def _fonts(size: int) -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont | None]:
    """A Latin font (DejaVu, from matplotlib) and a Simplified Chinese one when installed."""
    mpl = _package_dir("matplotlib")
    latin = ImageFont.truetype(str(mpl / "mpl-data/fonts/ttf/DejaVuSans.ttf"), size)
    cjk = None
    noto = _package_dir("noto_cjk_sans_otc")
    if noto is not None and (noto / "NotoSansCJK-Regular.ttc").is_file():
        # Face 2 of the collection is Noto Sans CJK SC.
        cjk = ImageFont.truetype(str(noto / "NotoSansCJK-Regular.ttc"), size, index=2)
    return latin, cjk


LATIN_WORDS = (
    "order",
    "status",
    "shipping",
    "total",
    "price",
    "update",
    "account",
    "settings",
    "download",
    "version",
    "error",
    "report",
    "login",
    "page",
    "message",
    "reply",
)


def _text_line(rng: random.Random, cjk: bool) -> str:
    from danqing.demo import vocab as V

    if cjk:
        return rng.choice(V.CITIES) + rng.choice(V.NEWS_EVENTS) + "，" + rng.choice(V.NEWS_TAILS)
    words = [rng.choice(LATIN_WORDS) for _ in range(rng.randint(4, 9))]
    return " ".join(words) + f" {rng.randint(10, 9999)}"


def text_screenshot(key: str) -> bytes:
    """A screenshot of a text page: black CJK and Latin lines on white (low grey-level entropy)."""
    rng = key_rng("text_screenshot", key)
    width, height = rng.randint(600, 900), rng.randint(500, 900)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    size = rng.randint(18, 26)
    latin, cjk = _fonts(size)
    y = rng.randint(10, 30)
    margin = rng.randint(12, 40)
    while y < height - size - 10:
        use_cjk = cjk is not None and rng.random() < 0.7
        draw.text((margin, y), _text_line(rng, use_cjk), fill=0, font=cjk if use_cjk else latin)
        y += int(size * rng.uniform(1.5, 1.9))
    # Black and white only: the grey-level histogram has a handful of values (entropy ~1 bit).
    arr = np.where(np.asarray(img) < 128, 0, 255).astype(np.uint8)
    return encode_jpeg(arr, 95)


def posterized(key: str) -> bytes:
    """A photo reduced to black, one grey and white: sharp edges, little information (entropy).

    Stored at JPEG quality 100 so that compression adds almost no in-between grey values.
    """
    rng = key_rng("posterized", key)
    grey = cv2.cvtColor(photo_array(key), cv2.COLOR_RGB2GRAY)
    grey = cv2.medianBlur(cv2.GaussianBlur(grey, (0, 0), 1.0), 3)
    low, high = np.percentile(grey, [33, 66])
    out = np.where(grey < low, 0, np.where(grey < high, rng.randint(90, 170), 255))
    return encode_jpeg(out.astype(np.uint8), 100)


def huge(key: str) -> bytes:
    """A 6000x4000 (or 4000x6000) photo, as from a camera upload."""
    rng = key_rng("huge", key)
    width, height = (6000, 4000) if rng.random() < 0.75 else (4000, 6000)
    # Composed at a sixth of the size and enlarged: a downscaled copy is as sharp as a photo.
    small = photo_array(key, (width // 6, height // 6))
    return encode_jpeg(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), 85)


def truncated(key: str) -> bytes:
    """A JPEG cut off inside its header tables: no decoder can get a single pixel out of it.

    A JPEG cut anywhere after its first scan header still decodes (libjpeg pads the missing rows
    with grey), so the cut is placed before the start-of-frame marker.
    """
    data = photo_bytes(key)
    sof = data.find(b"\xff\xc0")
    if sof < 0:
        sof = data.find(b"\xff\xc2")
    return data[: max(20, sof // 2)]


def near_dup(dup_of: str, variant: str) -> bytes:
    """`dup_of`'s photo after a slight crop, a resize, a JPEG re-encode at another quality or a
    small colour shift."""
    rng = key_rng("near_dup", dup_of, variant)
    with Image.open(io.BytesIO(photo_bytes(dup_of))) as img:
        arr = np.asarray(img.convert("RGB"))
    h, w = arr.shape[:2]
    if variant == "crop":
        # 3% off each side (94% of the area), around the centre. A 90% crop can cut most of a
        # mosaic's edge tiles away, and an embedding model then sees another picture (cosine
        # distance up to 0.16 on EfficientNet-Lite0 features, against at most 0.09 here).
        cw, ch = round(w * 0.97), round(h * 0.97)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        return encode_jpeg(np.ascontiguousarray(arr[y0 : y0 + ch, x0 : x0 + cw]), 88)
    if variant == "resize":
        scale = rng.uniform(0.6, 0.85)
        return encode_jpeg(resize(arr, int(w * scale), int(h * scale)), 88)
    if variant == "reencode":
        return encode_jpeg(arr, rng.choice([75, 80, 85]))
    if variant == "colour":
        shifted = arr.astype(np.float32) + np.array([rng.randint(-10, 10) for _ in range(3)])
        grey = shifted.mean(axis=2, keepdims=True)
        shifted = grey + rng.uniform(0.85, 1.15) * (shifted - grey)
        return encode_jpeg(np.clip(shifted, 0, 255).astype(np.uint8), 90)
    raise ValueError(f"unknown near-duplicate variant {variant!r}")


def _dup_parts(stem: str) -> tuple[str, str | None]:
    """`{dup_of}-{variant}-{index}` or `{dup_of}-{index}` -> (dup_of, variant or None)."""
    parts = stem.split("-")
    if len(parts) == 3:
        return parts[0], parts[1]
    if len(parts) == 2:
        return parts[0], None
    raise ValueError(f"not a duplicate image name: {stem!r}")


RENDERERS = {
    "blurry": blurry,
    "flat": flat,
    "tiny": tiny,
    "extreme_aspect": extreme_aspect,
    "text_screenshot": text_screenshot,
    "posterized": posterized,
    "huge": huge,
    "truncated": truncated,
}


def render(case: str, stem: str) -> bytes:
    """The image bytes of `case` for the file name stem (`key`, or a duplicate's name)."""
    if case in PHOTO_CASES or case == OPTED_OUT_CASE:
        return photo_bytes(stem)
    if case in RENDERERS:
        return RENDERERS[case](stem)
    if case in ("exact_dup", "cross_batch_dup"):
        return photo_bytes(_dup_parts(stem)[0])
    if case == "near_dup":
        dup_of, variant = _dup_parts(stem)
        return near_dup(dup_of, variant or "crop")
    raise KeyError(case)
