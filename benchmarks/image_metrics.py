"""Throughput of the image-metric stage next to pure JPEG decoding, and the metric calibration.

Benchmark: encodes real photos that ship in wheels (scikit-image, scikit-learn, matplotlib) as
JPEGs at typical web sizes, then measures on the same bytes, in one process (= per core):
  - pure decode: Pillow RGB and OpenCV BGR full decodes (what any consumer of the image pays),
  - the metric stage: `danqing.images.metrics.image_metrics` (decode once + std, Laplacian
    variance, entropy),
and prints images/s per core and the ratio to the faster pure decode (target >= 0.8). Also runs the
stage over all cores (worker processes, as in the Snakemake job).

Calibration (`--calibrate`): prints, as markdown, every metric on sharp real photos, blurred,
flat, posterized and text-screenshot variants of them, and the decisions under the configured
thresholds; docs/calibration.md records its output.

    python -m benchmarks.image_metrics [--quick] [--images 400] [--calibrate]
"""

from __future__ import annotations

import argparse
import io
import os
import time

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from danqing.evaluation.wheel_photos import OTHER_REAL, PHOTOS, load_photo
from danqing.images.metrics import (
    MetricSettings,
    decode_gray,
    image_metrics,
    iter_metrics,
    laplacian_variance,
    working_size,
)
from danqing.images.metrics import warm_up as metrics_warm_up


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def gaussian_blur(image: Image.Image, sigma: float) -> Image.Image:
    return Image.fromarray(cv2.GaussianBlur(np.asarray(image), (0, 0), sigma))


def down_up(image: Image.Image, factor: int) -> Image.Image:
    """A low-resolution original upscaled for display: the usual web blur."""
    w, h = image.size
    small = image.resize((max(1, w // factor), max(1, h // factor)), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.BILINEAR)


def flat(color: tuple[int, int, int], size=(400, 300), noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    pixels = np.full((size[1], size[0], 3), color, dtype=np.float64)
    pixels += rng.normal(0, noise, pixels.shape) if noise else 0
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def posterize(image: Image.Image, colors: int) -> Image.Image:
    return image.quantize(colors, method=Image.Quantize.MEDIANCUT).convert("RGB")


def text_screenshot(
    size=(600, 400),
    background=(255, 255, 255),
    ink=(20, 20, 20),
    binary: bool = False,
    lines: int | None = None,
) -> Image.Image:
    """Rendered text on a plain background, like a screenshot of a web page or a notice;
    `binary` thresholds the anti-aliasing away (pure two-tone, as a bitmap screenshot)."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=18)
    texts = [
        "Terms and conditions apply. Offer valid until 2026-12-31.",
        "Contact customer service for details: 400-123-4567.",
        "All rights reserved. Unauthorised copying is prohibited.",
    ]
    step = 30 if lines is None else size[1] // lines
    for row in range(size[1] // step):
        draw.text((12, 8 + row * step), texts[row % len(texts)], fill=ink, font=font)
    if binary:
        grey = np.asarray(image.convert("L"))
        image = Image.fromarray(np.where(grey < 128, 0, 255).astype(np.uint8)).convert("RGB")
    return image


def three_grey_levels(image: Image.Image) -> Image.Image:
    """Black, one grey and white by luminance terciles (a posterized poster)."""
    grey = np.asarray(image.convert("L"))
    low, high = np.percentile(grey, [33, 66])
    return Image.fromarray(
        np.where(grey < low, 0, np.where(grey < high, 128, 255)).astype(np.uint8)
    ).convert("RGB")


def calibration_set() -> list[tuple[str, str, bytes, bool]]:
    """(group, name, encoded bytes, expected keep under blur/std/entropy) for the calibration."""
    items: list[tuple[str, str, bytes, bool]] = []
    for name in PHOTOS:
        photo = load_photo(name)
        items.append(("sharp photo (PNG/orig)", name, encode(photo, "PNG"), True))
        items.append(("sharp photo, JPEG q75", name, encode(photo, quality=75), True))
        w, h = photo.size
        big = photo.resize((w * 3, h * 3), Image.Resampling.LANCZOS)
        items.append(("sharp photo, 3x upscaled JPEG", name, encode(big), True))
        items.append(
            (
                "sharp photo, darker (x0.8) JPEG",
                name,
                encode(ImageEnhance.Brightness(photo).enhance(0.8)),
                True,
            )
        )
        for sigma in (2, 3, 5):
            items.append(
                (f"Gaussian blur sigma={sigma}", name, encode(gaussian_blur(photo, sigma)), False)
            )
        items.append(("4x down-up resampled", name, encode(down_up(photo, 4)), False))
        items.append(("posterized 4 colours, PNG", name, encode(posterize(photo, 4), "PNG"), False))
        items.append(
            ("3 grey levels, JPEG q100", name, encode(three_grey_levels(photo), quality=100), False)
        )
        items.append(
            ("posterized 4 colours, JPEG q90 (ringing)", name, encode(posterize(photo, 4)), True)
        )
    for name in OTHER_REAL:
        items.append(("other real image", name, encode(load_photo(name), "PNG"), True))
    for i, color in enumerate([(255, 255, 255), (0, 0, 0), (200, 30, 40), (90, 140, 200)]):
        items.append(("flat colour JPEG", str(color), encode(flat(color, seed=i)), False))
        items.append(
            ("flat colour + noise sd=1", str(color), encode(flat(color, noise=1, seed=i)), False)
        )
    for ink, background in (((20, 20, 20), (255, 255, 255)), ((250, 250, 250), (30, 60, 160))):
        label = f"{ink} on {background}"
        items.append(
            (
                "text screenshot, two-tone JPEG q95",
                label,
                encode(text_screenshot(background=background, ink=ink, binary=True), quality=95),
                False,
            )
        )
        items.append(
            (
                "text screenshot, sparse, anti-aliased JPEG q90",
                label,
                encode(text_screenshot(background=background, ink=ink, lines=4)),
                False,
            )
        )
        items.append(
            (
                "text screenshot, dense, anti-aliased JPEG q90",
                label,
                encode(text_screenshot(background=background, ink=ink)),
                True,
            )
        )
    return items


def calibrate(
    settings: MetricSettings, min_std=2.0, min_blur=1000.0, min_entropy=3.0, detail: bool = False
) -> None:
    rows = []
    for group, name, data, _ in calibration_set():
        m = image_metrics(data, settings)
        k1 = image_metrics(data, MetricSettings(settings.working_max_edge, 1))["img_blur"]
        full = image_metrics(data, MetricSettings(10**6, settings.laplacian_ksize))["img_blur"]
        rows.append((group, name, m, k1, full))
    print(
        f"Blur working resolution: longer edge <= {settings.working_max_edge} px; thresholds "
        f"std >= {min_std}, blur >= {min_blur}, entropy >= {min_entropy}\n"
    )
    if detail:
        print("| group | image | std | entropy | blur k3 | blur k1 | blur k3 full res |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for group, name, m, k1, full in rows:
            print(
                f"| {group} | {name} | {m['img_std']:.2f} | {m['img_entropy']:.2f} | "
                f"{m['img_blur']:,.0f} | {k1:,.0f} | {full:,.0f} |"
            )
        print()
    print(
        "| group | n | std min..max | entropy min..max | blur ksize=3 @<=512 px min..max |"
        " kept by blur: ksize=3 @<=512 / ksize=1 @<=512 / ksize=3 full res |"
        " kept by std>=2 | kept by entropy>=3 | kept by all three |"
    )
    print("|---|---:|---|---|---|---|---:|---:|---:|")
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)

    def span(values, fmt):
        return f"{fmt.format(min(values))}..{fmt.format(max(values))}"

    for group, members in groups.items():
        n = len(members)
        ms = [m for _, _, m, _, _ in members]
        k3 = sum(m["img_blur"] >= min_blur for m in ms)
        k1 = sum(b >= min_blur for _, _, _, b, _ in members)
        kf = sum(f >= min_blur for _, _, _, _, f in members)
        s_ok = sum(m["img_std"] >= min_std for m in ms)
        e_ok = sum(m["img_entropy"] >= min_entropy for m in ms)
        all_ok = sum(
            m["img_std"] >= min_std
            and m["img_blur"] >= min_blur
            and m["img_entropy"] >= min_entropy
            for m in ms
        )
        print(
            f"| {group} | {n} | {span([m['img_std'] for m in ms], '{:.1f}')} | "
            f"{span([m['img_entropy'] for m in ms], '{:.2f}')} | "
            f"{span([m['img_blur'] for m in ms], '{:,.0f}')} | {k3}/{n} / {k1}/{n} / {kf}/{n} | "
            f"{s_ok}/{n} | {e_ok}/{n} | {all_ok}/{n} |"
        )
    draft_check(settings, min_blur)


def draft_gray(data: bytes, max_edge: int, oversample: int) -> np.ndarray:
    """Pillow reduced-size JPEG decoding (libjpeg DCT scaling to >= oversample x the working
    size, luma only), then INTER_AREA to the working size: the speed-up that was measured and
    not adopted."""
    image = Image.open(io.BytesIO(data))
    target = working_size(*image.size, max_edge)
    image.draft("L", (target[0] * oversample, target[1] * oversample))
    gray = np.asarray(image.convert("L"))
    if gray.shape[::-1] != target:
        gray = cv2.resize(gray, target, interpolation=cv2.INTER_AREA)
    return gray


def draft_check(settings: MetricSettings, min_blur: float) -> None:
    """Laplacian variance after draft decoding vs after a full decode, on the calibration JPEGs."""
    jpegs = [(g, n, d) for g, n, d, _ in calibration_set() if d[:2] == b"\xff\xd8"]
    print()
    for oversample in (1, 2):
        worst, flips = 0.0, 0
        for _, _, data in jpegs:
            fast = laplacian_variance(
                draft_gray(data, settings.working_max_edge, oversample), settings.laplacian_ksize
            )
            slow = laplacian_variance(_full_working(data, settings), settings.laplacian_ksize)
            worst = max(worst, abs(fast - slow) / max(slow, 1e-9))
            flips += (fast >= min_blur) != (slow >= min_blur)
        print(
            f"Draft decoding to >= {oversample}x the working size on {len(jpegs)} JPEGs: max "
            f"relative blur difference {worst:.1%}, blur verdicts changed {flips}"
        )


def _full_working(data: bytes, settings: MetricSettings) -> np.ndarray:
    gray = decode_gray(data)
    target = working_size(gray.shape[1], gray.shape[0], settings.working_max_edge)
    return (
        cv2.resize(gray, target, interpolation=cv2.INTER_AREA)
        if target != gray.shape[::-1]
        else gray
    )


def benchmark_images(count: int, seed: int = 3) -> list[bytes]:
    """JPEGs (q=90) of the wheel photos at stored sizes: longer edge 384..1024 px (the download
    step stores images with the longer edge shrunk to <= 1024)."""
    rng = np.random.default_rng(seed)
    photos = [load_photo(name) for name in PHOTOS]
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        edge = int(rng.choice([384, 512, 640, 800, 1024]))
        w, h = photo.size
        scale = edge / max(w, h)
        out.append(
            encode(photo.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR))
        )
    return out


def pil_decode(data: bytes) -> None:
    Image.open(io.BytesIO(data)).convert("RGB")


def cv2_decode(data: bytes) -> None:
    cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)


def run(count: int = 400, quick: bool = False, rounds: int = 3) -> list[dict]:
    """Rates per core over `rounds` passes in which every image is decoded by Pillow, by OpenCV
    and run through the stage one right after the other: on a shared machine the speed drifts
    over seconds, and rates measured one after the other would compare the drift, not the code."""
    count = 66 if quick else count
    rounds = 1 if quick else rounds
    settings = MetricSettings()
    images = benchmark_images(count)
    cv2.setNumThreads(1)  # per core, as in the worker processes
    # Warm-up (imports, the compiled downscale kernels, allocator): steady state is measured.
    metrics_warm_up()
    for data in images[:5]:
        pil_decode(data), cv2_decode(data), image_metrics(data, settings)
    methods = (pil_decode, cv2_decode, lambda d: image_metrics(d, settings))
    seconds = [0.0] * len(methods)
    clock = time.perf_counter
    for r in range(rounds):
        order = [(r + k) % len(methods) for k in range(len(methods))]  # no method always first
        for data in images:
            for i in order:
                start = clock()
                methods[i](data)
                seconds[i] += clock() - start
    pil_rate, cv2_rate, stage_rate = (rounds * len(images) / s for s in seconds)
    cores = os.cpu_count() or 1
    stream = images * max(1, (300 if quick else 4_000) // len(images))
    start = time.perf_counter()
    done = [0.0] * len(stream)
    for i, _ in enumerate(
        iter_metrics(((str(i), d) for i, d in enumerate(stream)), settings, cores)
    ):
        done[i] = time.perf_counter()
    parallel_rate = len(stream) / (done[-1] - start)
    # Steady state: from the first quarter's end, past the pool's start-up and first chunks.
    first = len(stream) // 4
    steady_rate = (len(stream) - first) / (done[-1] - done[first])
    startup_s = done[0] - start
    mean_kb = sum(map(len, images)) / len(images) / 1024
    print(
        f"{len(images)} JPEGs (q=90), mean {mean_kb:.0f} KiB, longer edge 384..1024 px; "
        f"per-core rates over {rounds} interleaved round(s)"
    )
    return [
        {"stage": "pure JPEG decode, Pillow RGB", "value": pil_rate, "ratio": None},
        {"stage": "pure JPEG decode, OpenCV BGR", "value": cv2_rate, "ratio": None},
        {
            "stage": "metric stage (decode + std, blur, entropy)",
            "value": stage_rate,
            "ratio": stage_rate / max(pil_rate, cv2_rate),
        },
        {
            "stage": f"metric stage, {cores} processes (total)",
            "value": parallel_rate,
            "ratio": parallel_rate / cores / max(pil_rate, cv2_rate),
        },
        {
            "stage": f"metric stage, {cores} processes, steady state (total)",
            "value": steady_rate,
            "ratio": steady_rate / stage_rate,
            "startup_s": startup_s,
        },
    ]


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        ratio = f"  per core / fastest pure decode = {r['ratio']:.2f}" if r["ratio"] else ""
        if "startup_s" in r:
            ratio = f"  = {r['ratio']:.2f}x one core (first result after {r['startup_s']:.1f} s)"
        print(f"{r['stage']:42s} {r['value']:>9,.1f} images/s{ratio}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--detail", action="store_true", help="calibration: every image")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(MetricSettings(), detail=args.detail)
    else:
        print_rows(run(args.images, args.quick))
