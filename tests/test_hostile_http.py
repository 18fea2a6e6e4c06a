"""Hostile URLs and responses: no request reaches a refused address, no request runs unbounded.

Two servers on loopback: the "public" one on 127.0.0.2 (the only network the tests allow, playing
the internet) serves hostile responses and redirects; the "internal" one on 127.0.0.1 plays the
user's network and counts every request it receives, which must stay at zero.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import polars as pl
import pytest

from danqing.config import load
from danqing.demo import images
from danqing.download import download_shard
from danqing.images.store import read_images
from danqing.processes import WorkerDied, executor, ordered_map
from danqing.safe_http import AddressPolicy, ResponseLimits, RobotsCache, guarded_opener

PUBLIC = "127.0.0.2"
ALLOW_PUBLIC = {"allowed_networks": [f"{PUBLIC}/32"]}


def png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros: a few hundred KB on the wire, width x height decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


class _Server:
    """A threading HTTP server on `host` whose routes are `path -> handler(request)`."""

    def __init__(self, host: str, routes: dict):
        self.hits: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                owner.hits.append(self.path)
                route = routes.get(self.path.split("?")[0], routes.get("*"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _send(request, status: int, body: bytes = b"", headers: dict | None = None) -> None:
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    if "Content-Length" not in (headers or {}):
        request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _drip(request):
    request.send_response(200)
    request.send_header("Content-Length", "1000")
    request.end_headers()
    for _ in range(1000):
        request.wfile.write(b"\xff")
        request.wfile.flush()
        time.sleep(0.5)


def _endless(request):
    request.send_response(200)
    request.send_header("Content-Type", "image/jpeg")
    request.end_headers()
    block = b"\xff" * 65536
    for _ in range(100_000):
        request.wfile.write(block)


PHOTO = images.photo_bytes("000001")


def sixteen_bit_png() -> bytes:
    """A 16-bit RGBA PNG, opaque, at 30000/65535 of full scale (117 in 8 bits)."""
    pixels = np.full((240, 320, 4), 30000, np.uint16)
    pixels[..., 3] = 65535
    pixels[:, :160, 0] = 60000  # not one flat colour, which the image filters drop
    return cv2.imencode(".png", pixels)[1].tobytes()


def padded_jpeg(extra_bytes: int) -> bytes:
    """A 480 x 360 JPEG with `extra_bytes` of comment segments after its start marker."""
    photo = cv2.resize(cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR), (480, 360))
    encoded = cv2.imencode(".jpg", photo)[1].tobytes()
    segment = b"\xff\xfe" + struct.pack(">H", 65535) + b"x" * 65533
    return encoded[:2] + segment * (extra_bytes // len(segment)) + encoded[2:]


BOMB = png_bomb(12_000, 12_000)  # 144 M pixels, over Pillow's 89 M decompression-bomb limit


@pytest.fixture(scope="module")
def internal():
    server = _Server("127.0.0.1", {"*": lambda r: _send(r, 200, PHOTO)})
    yield server
    server.close()


@pytest.fixture(scope="module")
def public(internal):
    routes = {
        "/robots.txt": lambda r: _send(r, 200, b"User-agent: *\nDisallow: /private/\n"),
        "/photo.jpg": lambda r: _send(r, 200, PHOTO, {"Content-Type": "image/jpeg"}),
        "/private/photo.jpg": lambda r: _send(r, 200, PHOTO),
        "/to-internal": lambda r: _send(r, 302, headers={"Location": f"{internal.url}/x.jpg"}),
        "/to-integer": lambda r: _send(
            r, 302, headers={"Location": f"http://2130706433:{internal.port}/x.jpg"}
        ),
        "/to-metadata": lambda r: _send(
            r, 302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
        ),
        "/to-ftp": lambda r: _send(r, 302, headers={"Location": "ftp://example.com/x.jpg"}),
        "/to-file": lambda r: _send(r, 302, headers={"Location": "file:///etc/passwd"}),
        "/drip.jpg": _drip,
        "/endless.jpg": _endless,
        "/huge-length.jpg": lambda r: _send(r, 200, b"", {"Content-Length": str(10**12)}),
        "/bomb.png": lambda r: _send(r, 200, BOMB, {"Content-Type": "image/png"}),
        "/secret.json": lambda r: _send(r, 200, b'{"AccessKeyId": "ASIA-SECRET-TOKEN"}'),
        "/deep.png": lambda r: _send(r, 200, sixteen_bit_png(), {"Content-Type": "image/png"}),
        "/padded.jpg": lambda r: _send(r, 200, padded_jpeg(3_000_000)),
    }
    server = _Server(PUBLIC, routes)
    yield server
    server.close()


LIMITS = ResponseLimits(deadline=3, max_bytes=2_000_000)


def _open(opener, url: str) -> tuple[str, str]:
    try:
        with opener.open(url, timeout=2) as response:
            return "ok", str(len(response.read()))
    except Exception as err:  # noqa: BLE001 (the kind is what is asserted)
        return type(err).__name__, str(err)


def _internal_forms(internal) -> list[str]:
    port = internal.port
    return [
        f"http://127.0.0.1:{port}/a",
        f"http://localhost:{port}/a",
        f"http://2130706433:{port}/a",
        f"http://0x7f000001:{port}/a",
        f"http://0177.0.0.1:{port}/a",
        f"http://127.1:{port}/a",
        f"http://[::ffff:127.0.0.1]:{port}/a",
        f"http://[::1]:{port}/a",
        f"https://127.0.0.1:{port}/a",
    ]


def test_every_spelling_of_an_internal_address_is_refused_without_a_request(internal):
    opener = guarded_opener(AddressPolicy.from_networks([f"{PUBLIC}/32"]), LIMITS)
    before = len(internal.hits)
    for url in _internal_forms(internal):
        kind, message = _open(opener, url)
        assert "refused address" in message, (url, kind, message)
    assert len(internal.hits) == before


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "100.100.100.200",
        "100.64.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "ff02::1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:a9fe:a9fe::1",
        "64:ff9b::a9fe:a9fe",
        "2001:db8::1",
    ],
)
def test_address_policy_refuses_non_public_addresses(address):
    assert AddressPolicy().refusal(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_address_policy_allows_public_addresses(address):
    assert AddressPolicy().refusal(address) is None


def test_allowlist_is_the_only_way_in():
    policy = AddressPolicy.from_networks(["10.1.0.0/16", "::1/128"])
    assert policy.refusal("10.1.2.3") is None and policy.refusal("::1") is None
    assert policy.refusal("10.2.0.1") == "private"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/photo.jpg", "ok"),
        ("/to-internal", "refused address 127.0.0.1"),
        ("/to-integer", "refused address 127.0.0.1"),
        ("/to-metadata", "refused address 169.254.169.254"),
        ("/to-ftp", "refused redirect to a ftp"),
        ("/to-file", "refused redirect to a file"),
        ("/endless.jpg", "response too large"),
        ("/huge-length.jpg", "Content-Length 1000000000000"),
        ("/drip.jpg", "request deadline of 3 s exceeded"),
    ],
)
def test_hostile_responses_are_bounded(public, internal, path, expected):
    opener = guarded_opener(AddressPolicy.from_networks([f"{PUBLIC}/32"]), LIMITS)
    before = len(internal.hits)
    started = time.monotonic()
    kind, message = _open(opener, public.url + path)
    assert (kind == "ok") if expected == "ok" else expected in message, (kind, message)
    assert time.monotonic() - started < LIMITS.deadline + 2
    assert len(internal.hits) == before


def test_robots_txt_rules_and_failures(public, internal):
    opener = guarded_opener(AddressPolicy.from_networks([f"{PUBLIC}/32"]), LIMITS)
    robots = RobotsCache(opener, "test-agent", "img2dataset", timeout=2)
    assert robots.refusal(public.url + "/photo.jpg") is None
    assert robots.refusal(public.url + "/private/photo.jpg") == "Disallowed by robots.txt"
    assert public.hits.count("/robots.txt") == 1  # cached per site
    unreachable = robots.refusal(f"{internal.url}/a.jpg")
    assert unreachable.startswith("robots.txt unavailable") and "refused address" in unreachable


def test_download_shard_records_every_hostile_case_with_its_reason(public, internal, tmp_path):
    """Through img2dataset: each hostile URL dropped with its own reason, none of the internal
    server's bytes stored, nothing of a non-image body in the drop table, all within a bound."""
    cases = {
        "good": ("/photo.jpg", None),
        "sixteen_bit": ("/deep.png", None),
        "padded": ("/padded.jpg", None),
        "robots": ("/private/photo.jpg", "download:robots_disallowed"),
        "direct_internal": (f"{internal.url}/a.jpg", "download:refused_address"),
        "integer_internal": (
            f"http://2130706433:{internal.port}/a.jpg",
            "download:refused_address",
        ),
        "mapped_internal": (
            f"http://[::ffff:127.0.0.1]:{internal.port}/a.jpg",
            "download:refused_address",
        ),
        "redirect_internal": ("/to-internal", "download:refused_address"),
        "redirect_metadata": ("/to-metadata", "download:refused_address"),
        "redirect_ftp": ("/to-ftp", "download:refused_scheme"),
        "file_url": ("file:///etc/passwd", "download:refused_scheme"),
        "endless": ("/endless.jpg", "download:response_too_large"),
        "huge_length": ("/huge-length.jpg", "download:response_too_large"),
        "drip": ("/drip.jpg", "download:timeout"),
        "bomb": ("/bomb.png", "download:too_large"),
        "secret": ("/secret.json", "download:not_image"),
    }
    urls = {name: path if "://" in path else public.url + path for name, (path, _) in cases.items()}
    frame = pl.DataFrame(
        {"uid": list(cases), "url": list(urls.values()), "alt_text": ["图片"] * len(cases)}
    )
    cfg = load()["filters"]["download_images"] | {
        "processes": 1,
        "thread_count": 16,
        "timeout": 2,
        "request_deadline": 4,
        "max_response_bytes": 4_000_000,
        "samples_per_tar": 100,
    }
    before = len(internal.hits)
    started = time.monotonic()
    result = download_shard(frame, cfg, tmp_path / "images" / "b1" / "s00000", network=ALLOW_PUBLIC)
    assert time.monotonic() - started < 90
    assert len(internal.hits) == before
    assert result.kept.height + result.dropped.height == frame.height
    assert result.kept["uid"].to_list() == ["good", "sixteen_bit", "padded"]
    stored = dict(read_images(result.kept, verify=True))
    deep = cv2.imdecode(np.frombuffer(stored["sixteen_bit"], np.uint8), cv2.IMREAD_COLOR)
    # Scaled to 8 bits (green 30000/65535 = 117), not saturated to white.
    assert abs(int(np.median(deep[..., 1])) - 117) <= 2
    assert len(stored["padded"]) < 600_000
    got = dict(zip(result.dropped["uid"], result.dropped["reason"], strict=True))
    assert got == {name: reason for name, (_, reason) in cases.items() if reason}
    assert not result.dropped["value"].str.contains("ASIA").any()


def _kill_self(item: int) -> int:
    if item == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_a_dead_worker_fails_the_map_instead_of_hanging():
    started = time.monotonic()
    with pytest.raises(WorkerDied, match="worker process died while testing"), executor(2) as pool:
        list(ordered_map(pool, _kill_self, range(40), "testing", chunksize=2))
    assert time.monotonic() - started < 60
