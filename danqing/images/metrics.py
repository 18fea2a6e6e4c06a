"""Per-image quality metrics behind the visual-fidelity and information-density filters.

Each image is decoded once; from its grayscale pixels at the working resolution we compute

- `img_std`: grayscale pixel standard deviation (low-textual images: sigma < 2 removed),
- `img_blur`: variance of OpenCV's Laplacian (blurry images: variance < 1000 removed),
- `img_entropy`: Shannon entropy in bits of the 256-bin grayscale histogram,
- `img_entropy_rgb`: the same over the R, G and B histograms pooled (768 bins, as Pillow's
  `Image.entropy()` computes it for an RGB image): the information-density measure (< 3 removed),

plus the decoded (stored) size and, for an image that cannot be decoded, the error. All values are
kept in the metrics table so that the report and threshold sweeps can use them.

Calibration (docs/calibration.md has the tables; `python -m benchmarks.image_metrics --calibrate`
regenerates them). The paper gives "Laplacian variance (OpenCV) >= 1000" but not the aperture or
the resolution, and the value depends on both. On the 11 sharp real photos shipped in
scikit-image / scikit-learn / matplotlib (astronaut, coffee, chelsea, rocket, camera, hubble,
motorcycle, coins, china, flower, grace_hopper):

- `cv2.Laplacian(gray, CV_64F)` with the default `ksize=1` kernel keeps only 4 of the 11 (chelsea
  399, flower 418, rocket 821, astronaut 861 ...): that reading would remove most real photos,
  far more than the paper's 5.38%.
- `ksize=3` on the grayscale image at a working resolution of at most 512 px on the longer edge
  (INTER_AREA, never upscaled) keeps all 11 (2,556..19,409), also as JPEG q75, darkened, or
  enlarged 3x (>= 1,568), and removes every Gaussian-blurred copy (sigma 2: <= 719; sigma 3:
  <= 231), every 4x down-and-up resampled copy (<= 916) and scikit-image's motion-blurred
  `clock_motion` (159). Hence `laplacian_ksize = 3` and `working_max_edge = 512`.

The fixed working resolution makes the measure independent of the stored file's size: the
Laplacian variance of a picture rises as it is downscaled, and at full resolution 10 of the 11
photos enlarged 3x would count as blurry. std and entropy are histogram statistics of the stored
pixels (no resampling, which would invent grey levels between flat regions).

Sharp photos have std 21..83 and entropy 4.7..7.8 bits. Flat colours (with JPEG or sensor noise)
have std < 0.5; posterized images stored losslessly or at JPEG q100 (<= 2 bits), two-tone text
screenshots (1.4) and sparse anti-aliased text (<= 1.3) have entropy < 3. JPEG ringing at q90
lifts a 4-colour posterized photo to 3.3..5.4 bits and a dense anti-aliased text page to 3.3:
under the paper's literal 256-bin entropy those are not "low information", and are kept.

Speed: JPEGs are decoded luma-only by libjpeg through OpenCV (no colour conversion), std and
entropy come from one histogram, the Laplacian runs in int16, and the INTER_AREA downscale is
danqing.images.area_resize's byte-identical port of OpenCV's (OpenCV's own generic path cost
1-2 ms per web-sized image, as much as the decode). Per core the stage runs at ~0.9x a plain
OpenCV colour decode of the same stored JPEGs (`python -m benchmarks.image_metrics`). Reduced-size
JPEG decoding (Pillow `draft`, DCT scaling) was measured and not adopted: decoding straight to
the working size moves the Laplacian variance by up to 37% (to 2x the working size: 10%).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import polars as pl

from danqing.images import area_resize, channel_histogram
from danqing.processes import executor, ordered_map
from danqing.schema import schema_defaults

METRICS_SCHEMA = {
    "uid": pl.String,
    "img_width": pl.Int32,
    "img_height": pl.Int32,
    "img_std": pl.Float64,
    "img_blur": pl.Float64,
    "img_entropy": pl.Float64,
    "img_entropy_rgb": pl.Float64,
    "img_error": pl.String,
}
METRIC_COLUMNS = [c for c in METRICS_SCHEMA if c != "uid"]


_DEFAULTS = schema_defaults(
    "properties", "filters", "properties", "image_geometry", "properties", "metrics"
)


@dataclass(frozen=True)
class MetricSettings:
    """How the metrics are measured (config `filters.image_geometry.metrics`)."""

    working_max_edge: int = _DEFAULTS["working_max_edge"]
    laplacian_ksize: int = _DEFAULTS["laplacian_ksize"]

    @classmethod
    def from_config(cls, cfg: dict) -> MetricSettings:
        """From config section `filters.image_geometry.metrics` (defaults filled by the schema)."""
        return cls(
            working_max_edge=int(cfg["working_max_edge"]),
            laplacian_ksize=int(cfg["laplacian_ksize"]),
        )


def as_gray8(gray) -> np.ndarray:
    """A C-contiguous uint8 array; integer values outside 0..255 are an error."""
    array = np.asarray(gray)
    if array.dtype != np.uint8:
        if array.dtype.kind not in "iub" or array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"expected 8-bit grey levels, got {array.dtype} values")
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


def gray_histogram(gray: np.ndarray) -> np.ndarray:
    """Pixel counts of the 256 grey levels of an 8-bit image."""
    return cv2.calcHist([as_gray8(gray)], [0], None, [256], [0, 256]).ravel()


def histogram_std(counts: np.ndarray) -> float:
    """Population standard deviation of the pixel values, from their 256-bin histogram (exact)."""
    levels = np.arange(256, dtype=np.float64)
    p = counts.astype(np.float64) / counts.sum()
    mean = float(p @ levels)
    return math.sqrt(max(float(p @ (levels - mean) ** 2), 0.0))


def histogram_entropy(counts: np.ndarray) -> float:
    """H = -sum_i P(i) log2 P(i) over the 256-bin grey-level histogram, in bits."""
    p = counts[counts > 0].astype(np.float64) / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no "-0.0" for a flat image


def pixel_std(gray: np.ndarray) -> float:
    """Population standard deviation of the grayscale pixel values."""
    return histogram_std(gray_histogram(gray))


def gray_entropy(gray: np.ndarray) -> float:
    """Entropy in bits of the 256-bin histogram of 8-bit grayscale pixels."""
    return histogram_entropy(gray_histogram(gray))


def laplacian_variance(gray: np.ndarray, ksize: int = 3) -> float:
    """Variance of OpenCV's Laplacian of an 8-bit image (default border: reflect-101).

    Equal to `cv2.Laplacian(gray, cv2.CV_64F, ksize=ksize).var()`; for ksize <= 3 the filter
    output fits int16 exactly (|response| <= 8 * 255), which is four times faster to compute.
    """
    depth = cv2.CV_16S if ksize <= 3 else cv2.CV_64F
    lap = cv2.Laplacian(as_gray8(gray), depth, ksize=ksize)
    return float(cv2.meanStdDev(lap)[1][0, 0] ** 2)


def working_size(width: int, height: int, max_edge: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer edge is at most `max_edge`; never upscaled."""
    scale = max_edge / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


class UndecodableImage(ValueError):
    pass


def _truncated_jpeg(data: bytes) -> bool:
    """A JPEG whose last scan has no end-of-image marker after it was cut off in transfer.

    libjpeg decodes such files "successfully", filling the missing rows with grey, so this is
    checked separately. (FF D9 cannot occur inside entropy-coded data; an EXIF thumbnail's own
    EOI comes before the main image's last start-of-scan.)
    """
    if data.rstrip(b"\x00\r\n ")[-2:] == b"\xff\xd9":
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0


def decode_gray(data: bytes) -> np.ndarray:
    """Decode once to 8-bit grayscale (ITU-R 601 luma) at the stored resolution."""
    return decode(data)[0]


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode once to (8-bit grayscale, 8-bit BGR or None for a grayscale image) at the stored
    resolution.

    The grayscale image is OpenCV's BGR2GRAY (ITU-R 601 luma) of the colour decode, as
    `cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY)` gives it. Transparent images are
    composited onto white first, so that the hidden colour of transparent pixels does not count
    as content. EXIF orientation is ignored: no metric depends on it and the reported size stays
    the stored one.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    if data[:3] == b"\xff\xd8\xff" and _truncated_jpeg(data):
        raise UndecodableImage("truncated JPEG (no end-of-image marker after the last scan)")
    pixels = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        if data[:3] == b"\xff\xd8\xff":
            raise UndecodableImage("OpenCV could not decode this JPEG")
        raise UndecodableImage(f"not a decodable image (starts with {data[:8]!r})")
    if pixels.dtype != np.uint8:  # 16-bit PNG/TIFF, float TIFF
        scale = 255.0 / np.iinfo(pixels.dtype).max if pixels.dtype.kind in "ui" else 255.0
        pixels = np.clip(pixels.astype(np.float64) * scale + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        return pixels, None
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:4].astype(np.float32) / 255.0
        bgr = pixels[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        pixels = np.clip(bgr + 0.5, 0, 255).astype(np.uint8)
    if pixels.shape[2] == 1:
        return pixels[:, :, 0], None
    if pixels.shape[2] == 2:  # grey + alpha
        pixels = cv2.cvtColor(pixels[:, :, :1], cv2.COLOR_GRAY2BGR)
    pixels = np.ascontiguousarray(pixels[:, :, :3])
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), pixels


def colour_entropy(bgr: np.ndarray | None, gray_counts: np.ndarray) -> float:
    """Entropy in bits of the three channel histograms pooled into one distribution of 768
    bins (Pillow's `Image.entropy()` of an RGB image): the mean channel entropy + log2(3). A
    grayscale image has its 256-bin entropy (Pillow's mode L).

    Why not the grayscale entropy (the paper's "P(i), the probability of pixel value i" read
    over grey levels): two of DanQing's own kept images, a screenshot and a product photo on
    white, have 256-bin grayscale entropy 2.45 and 2.78 and would be removed at the paper's
    threshold of 3; pooled over the colour channels they have 4.05 and more. A flat image
    (any colour) has log2(3) = 1.58, a two-tone text image about 2 (docs/calibration.md).
    """
    if bgr is None:
        return histogram_entropy(gray_counts)
    return histogram_entropy(channel_histogram.channel_counts(bgr))


def image_metrics(data: bytes, settings: MetricSettings = MetricSettings()) -> dict:
    """All metrics of one encoded image; an undecodable image gets `img_error` and nulls.

    std and entropy are histogram statistics of the stored pixels; the Laplacian variance is
    taken at the working resolution (longer edge <= settings.working_max_edge, INTER_AREA).
    """
    try:
        gray, bgr = decode(data)
    except Exception as error:  # any decoder failure means the same thing: unusable image
        return {
            "img_width": None,
            "img_height": None,
            "img_std": None,
            "img_blur": None,
            "img_entropy": None,
            "img_entropy_rgb": None,
            "img_error": f"{type(error).__name__}: {error}"[:500],
        }
    height, width = gray.shape
    target = working_size(width, height, settings.working_max_edge)
    working = gray if target == (width, height) else area_resize.area_downscale(gray, target)
    counts = gray_histogram(gray)
    return {
        "img_width": width,
        "img_height": height,
        "img_std": histogram_std(counts),
        "img_blur": laplacian_variance(working, settings.laplacian_ksize),
        "img_entropy": histogram_entropy(counts),
        "img_entropy_rgb": colour_entropy(bgr, counts),
        "img_error": None,
    }


def warm_up() -> None:
    """Compile (or load from numba's cache) the stage's kernels before timed or parallel work."""
    area_resize.warm_up()
    channel_histogram.warm_up()


def _worker_init() -> None:
    # One process per core already; OpenCV's own threads would only oversubscribe the cores.
    cv2.setNumThreads(1)
    warm_up()


def _metrics_of(item: tuple[str, bytes, MetricSettings]) -> dict:
    uid, data, settings = item
    return {"uid": uid, **image_metrics(data, settings)}


def iter_metrics(
    images: Iterable[tuple[str, bytes]],
    settings: MetricSettings = MetricSettings(),
    processes: int | None = None,
    chunksize: int = 64,
) -> Iterator[dict]:
    """Metrics of (uid, encoded bytes) pairs, in input order, over `processes` worker processes
    (None: all cores; 1: in this process)."""
    processes = processes or os.cpu_count() or 1
    items = ((uid, data, settings) for uid, data in images)
    if processes == 1:
        yield from map(_metrics_of, items)
        return
    # forkserver, not fork: a fork of a process whose OpenCV thread pool is running deadlocks.
    # The server imports numba once for all workers (forkserver_preload).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["danqing.images.area_resize", "danqing.images.channel_histogram"]
    )
    with executor(processes, "forkserver", initializer=_worker_init) as pool:
        yield from ordered_map(pool, _metrics_of, items, "measuring images", chunksize)


def metrics_frame(
    images: Iterable[tuple[str, bytes]],
    settings: MetricSettings = MetricSettings(),
    processes: int | None = None,
) -> pl.DataFrame:
    """The metrics table of one shard: one row per image, columns METRICS_SCHEMA."""
    rows = list(iter_metrics(images, settings, processes))
    return (
        pl.DataFrame(rows, schema=METRICS_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=METRICS_SCHEMA)
    )


def aspect_ratio(width: int, height: int) -> float:
    """Longer edge over shorter edge (>= 1); infinite for a zero edge."""
    short, long = min(width, height), max(width, height)
    return math.inf if short <= 0 else long / short
