"""The demo image server and its deterministic images."""

from __future__ import annotations

import io
import itertools
import socket
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from danqing.demo import corpus, images, run
from danqing.demo.server import ImageCache, serve

PHOTO_KEYS = [f"{i:06d}" for i in range(12)]


def grey(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert arr is not None, "not decodable"
    return arr


def entropy(arr: np.ndarray) -> float:
    p = np.bincount(arr.ravel(), minlength=256) / arr.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def sharpness(arr: np.ndarray) -> float:
    return float(cv2.Laplacian(arr, cv2.CV_64F, ksize=3).var())


def size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@pytest.fixture(scope="module")
def server():
    with serve(0, slow_seconds=1.0) as srv:
        yield srv


def get(url: str, timeout: float = 10, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read(), response.url
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read(), url


def test_images_are_deterministic():
    for case in ("photo", "blurry", "posterized", "text_screenshot", "flat"):
        first = images.render(case, "000042")
        images.photo_bytes.cache_clear()
        assert images.render(case, "000042") == first, case


def test_photos_look_like_photos():
    for key in PHOTO_KEYS:
        data = images.photo_bytes(key)
        arr = grey(data)
        width, height = size(data)
        assert min(width, height) >= 280 and max(width, height) <= 1024
        assert max(width, height) / min(width, height) < 2
        assert arr.std() > 15, key
        assert entropy(arr) > 4.5, key
        assert sharpness(arr) > 2000, key
        colour = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(float)
        assert np.abs(colour[..., 0] - colour[..., 2]).mean() > 3, f"{key} is grey"


def test_distinct_keys_give_distinct_pictures():
    thumbs = {
        k: cv2.resize(grey(images.photo_bytes(k)), (32, 32), interpolation=cv2.INTER_AREA).astype(
            float
        )
        for k in PHOTO_KEYS
    }
    for a, b in itertools.combinations(PHOTO_KEYS, 2):
        # Mean absolute difference of 32x32 thumbnails: a shifted crop of one photo would be
        # close; unrelated pictures differ by tens of grey levels.
        assert np.abs(thumbs[a] - thumbs[b]).mean() > 12, (a, b)


def test_hard_cases_have_their_defining_property():
    key = "000007"
    photo = grey(images.photo_bytes(key))
    assert sharpness(grey(images.blurry(key))) < 100 < sharpness(photo)
    assert grey(images.flat(key)).std() < 2
    assert max(size(images.tiny(key))) < 100
    w, h = size(images.extreme_aspect(key))
    assert max(w, h) / min(w, h) >= 4 and min(w, h) >= 100
    for case in ("text_screenshot", "posterized"):
        arr = grey(images.render(case, key))
        # Little information, yet sharp: these must reach the entropy filter, not the blur one.
        assert entropy(arr) < 3 and sharpness(arr) > 1000 and arr.std() > 2, case
    assert size(images.huge(key)) in ((6000, 4000), (4000, 6000))
    truncated = images.truncated(key)
    assert truncated == images.photo_bytes(key)[: len(truncated)]
    assert cv2.imdecode(np.frombuffer(truncated, np.uint8), cv2.IMREAD_COLOR) is None
    with pytest.raises(OSError):
        Image.open(io.BytesIO(truncated)).load()


def test_duplicates_are_copies_or_close_variants():
    original = images.photo_bytes("000003")
    assert images.render("exact_dup", "000003-exact-17") == original
    assert images.render("cross_batch_dup", "000003-95") == original
    base = cv2.resize(grey(original), (64, 64), interpolation=cv2.INTER_AREA).astype(float)
    other = cv2.resize(
        grey(images.photo_bytes("000004")), (64, 64), interpolation=cv2.INTER_AREA
    ).astype(float)
    for variant in corpus.NEAR_DUP_VARIANTS:
        data = images.render("near_dup", f"000003-{variant}-18")
        assert data != original
        near = cv2.resize(grey(data), (64, 64), interpolation=cv2.INTER_AREA).astype(float)
        assert np.abs(near - base).mean() < 0.5 * np.abs(other - base).mean(), variant
    assert size(images.render("near_dup", "000003-resize-1"))[0] < size(original)[0]


def test_http_behaviour_of_every_case(server):
    base = f"{server.url}/img.alicdn.com"
    for case in corpus.IMAGE_CASES:
        if case in ("timeout",):
            continue
        stem = (
            "000003-exact-5"
            if case == "exact_dup"
            else (
                "000003-crop-5"
                if case == "near_dup"
                else ("000003-5" if case == "cross_batch_dup" else "000011")
            )
        )
        status, headers, body, final_url = get(f"{base}/{case}/{stem}.jpg")
        if case == "http_404":
            assert status == 404 and headers["Content-Type"].startswith("text/html")
        elif case == "http_500":
            assert status == 500
        elif case == "not_image":
            assert status == 200 and headers["Content-Type"].startswith("text/html")
            assert body.lstrip().startswith(b"<!DOCTYPE html>")
        else:
            assert status == 200 and headers["Content-Type"] == "image/jpeg", case
            assert int(headers["Content-Length"]) == len(body)
            if case == "redirect":
                assert final_url.endswith("/img.alicdn.com/photo/000011.jpg")
                assert body == images.photo_bytes("000011")
            else:
                assert body == images.render(case, stem), case
    status, headers, body, _ = get(f"{base}/opted_out/000011.jpg")
    assert status == 200 and "noai" in headers["X-Robots-Tag"]
    assert get(f"{base}/no_such_case/000011.jpg")[0] == 404
    assert get(f"{server.url}/not/a/valid/path.jpg")[0] == 404
    assert get(f"{base}/near_dup/not-a-valid-dup-name.jpg")[0] == 404
    status, _, body, _ = get(f"{base}/photo/000011.jpg", method="HEAD")
    assert status == 200 and body == b""
    assert server.requests["/img.alicdn.com/photo/000011.jpg"] >= 2


def test_timeout_case_stalls_then_answers(server):
    url = f"{server.url}/n.sinaimg.cn/timeout/000021.jpg"
    with pytest.raises((TimeoutError, urllib.error.URLError, socket.timeout)):
        get(url, timeout=0.3)
    started = time.monotonic()
    status, _, body, _ = get(url, timeout=5)
    assert status == 200 and body == images.photo_bytes("000021")
    assert time.monotonic() - started >= 0.9


def test_port_in_use_is_a_clear_error(server):
    with pytest.raises(OSError, match="in use"), serve(server.port):
        pass


def test_cache_is_bounded():
    cache = ImageCache(max_bytes=300_000)
    for key in PHOTO_KEYS[:8]:
        cache.get("photo", key)
    assert cache.bytes <= 300_000 or len(cache._items) == 1
    assert cache.get("photo", PHOTO_KEYS[7]) == images.photo_bytes(PHOTO_KEYS[7])


def test_demo_run_serves_while_snakemake_runs_and_stops_after(monkeypatch, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "config.yaml"
    user = yaml.safe_load((run.ROOT / "config" / "config.yaml").read_text())
    user["demo"]["port"] = port
    user["filters"]["download_images"]["retries"] = 1
    config.write_text(yaml.safe_dump(user, allow_unicode=True))
    demo = yaml.safe_load(run.DEMO_CONFIG.read_text())["filters"]["download_images"]
    # the timeout Snakemake runs with is demo.yaml's, over the user's config: 2 attempts
    assert run.demo_settings(config) == (port, max(30.0, 3.0 * demo["timeout"] * 2))
    seen = {}

    class FakeSnakemake:
        """Stands in for the snakemake process: fetches an image while it "runs"."""

        def __init__(self, command, cwd):
            seen["command"], seen["cwd"] = command, cwd

        def wait(self, timeout=None):
            seen["status"] = get(f"http://127.0.0.1:{port}/h/photo/000001.jpg")[0]
            return 3

        def poll(self):
            return 3

    monkeypatch.setattr(run.subprocess, "Popen", FakeSnakemake)
    assert run.main(["--cores", "2", "--config", str(config), "--dry-run"]) == 3
    assert seen["status"] == 200
    assert seen["command"][-7:] == [
        "--cores",
        "2",
        "--profile",
        "profiles/local",
        "--dry-run",
        "--configfile",
        str(run.DEMO_CONFIG),
    ]
    assert seen["cwd"] == run.ROOT
    # Stopped: nothing listens on the port any more.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), 1):
        pass
