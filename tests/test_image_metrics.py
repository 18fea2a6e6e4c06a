import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from danqing import config
from danqing.evaluation.wheel_photos import load_photo
from danqing.images.area_resize import area_downscale
from danqing.images.channel_histogram import channel_counts
from danqing.images.metrics import (
    METRICS_SCHEMA,
    MetricSettings,
    aspect_ratio,
    decode_gray,
    gray_entropy,
    image_metrics,
    laplacian_variance,
    metrics_frame,
    pixel_std,
    working_size,
)

CFG = config.load()["filters"]
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "china", "grace_hopper")


def photo(name: str) -> Image.Image:
    return load_photo(name)


def encode(image, fmt="JPEG", quality=90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def png(array) -> bytes:
    return encode(Image.fromarray(np.asarray(array, dtype=np.uint8)), "PNG")


def verdict(data: bytes) -> str:
    m = image_metrics(data)
    if m["img_std"] < CFG["low_textual_images"]["min_std"]:
        return "low_pixel_std"
    if m["img_blur"] < CFG["blurry_images"]["min_laplacian_var"]:
        return "blurry"
    if m["img_entropy"] < CFG["image_entropy"]["min_entropy"]:
        return "low_entropy"
    return "kept"


# --- each metric against hand-computed values ------------------------------------------------


def test_pixel_std_of_crafted_arrays():
    assert pixel_std(np.array([[0, 4], [4, 0]])) == pytest.approx(2.0)  # mean 2, all |dev| 2
    assert pixel_std(np.full((7, 9), 200)) == 0.0
    # 0 and 10 in a 1:3 ratio: mean 7.5, var = (56.25 + 3 * 6.25) / 4 = 18.75
    assert pixel_std(np.array([[0, 10, 10, 10]])) == pytest.approx(np.sqrt(18.75))


def test_entropy_of_known_histograms():
    assert gray_entropy(np.full((4, 4), 17)) == 0.0
    assert gray_entropy(np.array([[0, 1], [2, 3]])) == pytest.approx(2.0)  # 4 equal bins
    assert gray_entropy(np.array([[5, 5, 9, 200]])) == pytest.approx(1.5)  # 1/2, 1/4, 1/4
    assert gray_entropy(np.arange(256).reshape(16, 16)) == pytest.approx(8.0)


def test_channel_counts_equal_opencv_histograms_of_each_channel():
    rng = np.random.default_rng(7)
    images = [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((1, 1), (3, 5), (97, 131))
    ]
    images.append(np.asarray(photo("coffee"))[::3, 1::2])  # a non-contiguous view of a photo
    for image in images:
        expected = np.concatenate(
            [
                cv2.calcHist([np.ascontiguousarray(image)], [c], None, [256], [0, 256]).ravel()
                for c in range(3)
            ]
        )
        assert np.array_equal(channel_counts(image), expected)
    with pytest.raises(ValueError, match="3-channel"):
        channel_counts(np.zeros((4, 4), np.uint8))


def test_laplacian_variance_of_a_single_bright_pixel():
    # A 5x5 zero image with 10 in the centre. ksize=1 kernel [[0,1,0],[1,-4,1],[0,1,0]]:
    # responses -40 (centre) and 10 (4 neighbours), mean 0, var (1600 + 4*100) / 25 = 80.
    # ksize=3 kernel [[2,0,2],[0,-8,0],[2,0,2]]: -80 and 4 x 20, var (6400 + 1600) / 25 = 320.
    image = np.zeros((5, 5), np.uint8)
    image[2, 2] = 10
    assert laplacian_variance(image, ksize=1) == pytest.approx(80.0)
    assert laplacian_variance(image, ksize=3) == pytest.approx(320.0)
    assert laplacian_variance(np.full((6, 6), 99, np.uint8)) == 0.0


def test_fast_laplacian_equals_opencv_float_laplacian_on_a_photo():
    gray = cv2.cvtColor(np.asarray(photo("chelsea")), cv2.COLOR_RGB2GRAY)
    for ksize in (1, 3):
        expected = cv2.Laplacian(gray, cv2.CV_64F, ksize=ksize).var()
        assert laplacian_variance(gray, ksize) == pytest.approx(expected, rel=1e-9)


def test_image_metrics_of_a_crafted_png():
    rows = np.tile(np.array([0, 0, 255, 255], np.uint8), (6, 2))  # 6x8, half 0 half 255
    m = image_metrics(png(rows))
    assert (m["img_width"], m["img_height"]) == (8, 6)
    assert m["img_std"] == pytest.approx(127.5)
    assert m["img_entropy"] == pytest.approx(1.0)
    assert m["img_error"] is None
    assert set(m) == set(METRICS_SCHEMA) - {"uid"}


def test_colour_decodes_to_luma_and_transparency_to_white():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 1] = 200  # pure green: luma 0.587 * 200 = 117.4
    assert decode_gray(png(rgb)).mean() == pytest.approx(117.4, abs=0.6)
    transparent = np.zeros((20, 30, 4), np.uint8)  # black but fully transparent
    assert decode_gray(png(transparent)).min() == 255


def test_undecodable_and_truncated_images_are_errors_not_crashes():
    assert image_metrics(b"<html>not an image</html>")["img_error"].startswith("UndecodableImage")
    jpeg = encode(photo("chelsea"))
    cut = image_metrics(jpeg[: len(jpeg) // 2])
    assert "truncated" in cut["img_error"] and cut["img_std"] is None
    assert image_metrics(jpeg)["img_error"] is None


def test_working_size_only_shrinks():
    assert working_size(1024, 768, 512) == (512, 384)
    assert working_size(300, 200, 512) == (300, 200)
    assert aspect_ratio(300, 100) == 3.0 and aspect_ratio(100, 300) == 3.0


def test_area_downscale_is_byte_identical_to_opencv_inter_area():
    rng = np.random.default_rng(7)
    sizes = [
        ((683, 1024), (512, 342)),
        ((534, 800), (512, 342)),
        ((640, 640), (512, 512)),
        ((1024, 1024), (512, 512)),
        ((1, 900), (512, 1)),
        ((900, 2), (1, 512)),
        ((600, 513), (512, 438)),
        ((4000, 3000), (384, 512)),
    ]
    for _ in range(120):  # random shapes and factors, including large and near-1 factors
        height, width = (int(v) for v in rng.integers(1, 1600, 2))
        target = (
            max(1, round(width * rng.uniform(0.05, 1))),
            max(1, round(height * rng.uniform(0.05, 1))),
        )
        sizes.append(((height, width), target))
    for (height, width), target in sizes:
        gray = rng.integers(0, 256, (height, width), dtype=np.uint8)
        if width > 8 and height > 8:
            gray = cv2.GaussianBlur(gray, (0, 0), 1.2)  # smooth, like photos: many near-ties
        expected = cv2.resize(gray, target, interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(
            area_downscale(gray, target), expected, err_msg=f"{(width, height)} -> {target}"
        )


def test_area_downscale_on_a_real_photo_matches_opencv():
    gray = cv2.cvtColor(np.asarray(photo("china")), cv2.COLOR_RGB2GRAY)  # 640 x 427
    target = working_size(gray.shape[1], gray.shape[0], 512)
    np.testing.assert_array_equal(
        area_downscale(gray, target), cv2.resize(gray, target, interpolation=cv2.INTER_AREA)
    )


# --- calibration: real photos pass, degraded images fail -------------------------------------


def test_sharp_real_photos_pass_every_image_quality_filter():
    for name in PHOTOS:
        image = photo(name)
        assert verdict(encode(image)) == "kept", name
        assert verdict(encode(image, quality=70)) == "kept", name
        # The same photo enlarged 3x (a camera-size file) is judged at the working resolution.
        w, h = image.size
        assert verdict(encode(image.resize((3 * w, 3 * h), Image.Resampling.LANCZOS))) == "kept"


def test_blurred_photos_are_blurry():
    for name in ("chelsea", "coffee", "china", "grace_hopper"):
        rgb = np.asarray(photo(name))
        assert verdict(encode(Image.fromarray(cv2.GaussianBlur(rgb, (0, 0), 2)))) == "blurry"
        h, w = rgb.shape[:2]  # a thumbnail upscaled for display
        small = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        upscaled = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        assert verdict(encode(Image.fromarray(upscaled))) == "blurry", name


def test_flat_images_have_no_pixel_variation():
    rng = np.random.default_rng(0)
    for colour in ((255, 255, 255), (200, 30, 40)):
        noisy = np.clip(np.full((300, 400, 3), colour) + rng.normal(0, 0.6, (300, 400, 1)), 0, 255)
        assert verdict(encode(Image.fromarray(noisy.astype(np.uint8)), quality=92)) == (
            "low_pixel_std"
        )


def test_posterized_and_text_images_have_low_entropy():
    grey = cv2.cvtColor(np.asarray(photo("coffee")), cv2.COLOR_RGB2GRAY)
    low, high = np.percentile(grey, [33, 66])
    three_levels = np.where(grey < low, 0, np.where(grey < high, 128, 255)).astype(np.uint8)
    assert verdict(encode(Image.fromarray(three_levels), quality=100)) == "low_entropy"
    four_colours = photo("chelsea").quantize(4).convert("RGB")
    assert verdict(encode(four_colours, "PNG")) == "low_entropy"

    page = Image.new("L", (640, 480), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=20)
    for row in range(14):
        draw.text(
            (20, 12 + row * 32), "Order status: shipped. Total 128.00 yuan.", fill=0, font=font
        )
    black_white = Image.fromarray(np.where(np.asarray(page) < 128, 0, 255).astype(np.uint8))
    assert verdict(encode(black_white, quality=95)) == "low_entropy"


def test_metrics_frame_over_worker_processes_keeps_order_and_values():
    items = [
        (f"u{i}", encode(photo(name))) for i, name in enumerate(["chelsea", "coffee", "rocket"])
    ]
    items.insert(1, ("bad", b"GIF89a broken"))
    serial = metrics_frame(items, MetricSettings(), processes=1)
    parallel = metrics_frame(items, MetricSettings(), processes=2)
    assert serial.schema == METRICS_SCHEMA
    assert serial["uid"].to_list() == ["u0", "bad", "u1", "u2"]
    assert parallel.equals(serial)
    assert serial["img_error"].is_null().to_list() == [True, False, True, True]
