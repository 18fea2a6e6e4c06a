"""The demo image server: serves the demo corpus's image URLs over real HTTP on 127.0.0.1.

URL layout (fixed by `danqing.demo.corpus`):

    /{image_host}/{image_case}/{key}.jpg                       one image of the case
    /{image_host}/exact_dup/{dup_of}-exact-{index}.jpg        the bytes of photo `dup_of`
    /{image_host}/near_dup/{dup_of}-{variant}-{index}.jpg     a near-duplicate of `dup_of`
    /{image_host}/cross_batch_dup/{dup_of}-{index}.jpg        the bytes of photo `dup_of`

Images come from `danqing.demo.images` (deterministic in case and key) and are kept in an LRU
cache, so the same URL always returns the same bytes. Failure cases behave as a real web server
would: `http_404` and `http_500` answer with that status and an HTML page, `timeout` waits
`slow_seconds` before it answers (longer than the download timeout), `not_image` returns an HTML
page with status 200, `redirect` answers 302 to the `photo` URL of the same key, `truncated`
returns a JPEG cut short. `opted_out` (not a corpus case) serves a photo with an
`X-Robots-Tag: noai, noimageai` header, for testing the downloader's opt-out option.

Run it in the foreground with `python -m danqing.demo.server --port 8765`, or in a background
thread with `with serve(port) as server: ...` (port 0 picks a free port: `server.port`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import logging
import signal
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from danqing.demo import images

log = logging.getLogger("danqing.demo.server")

HTML_PAGE = (
    '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>'
    "</head>\n<body><h1>{title}</h1><p>{text}</p></body></html>\n"
)
STATUS_CASES = {"http_404": HTTPStatus.NOT_FOUND, "http_500": HTTPStatus.INTERNAL_SERVER_ERROR}
SERVED_CASES = (
    frozenset(images.RENDERERS)
    | set(images.PHOTO_CASES)
    | set(images.DUPLICATE_CASES)
    | {images.OPTED_OUT_CASE}
)


class ImageCache:
    """A thread-safe LRU of rendered images, bounded by total bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, case: str, stem: str) -> bytes:
        key = (case, stem)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        # Rendered outside the lock: two threads may render the same image once each, which is
        # harmless (same bytes) and cheaper than serialising all rendering.
        data = images.render(case, stem)
        with self._lock:
            if key not in self._items:
                self._items[key] = data
                self.bytes += len(data)
            while self.bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self.bytes -= len(old)
        return data


class DemoImageServer(ThreadingHTTPServer):
    daemon_threads = True
    # img2dataset opens dozens of connections at once; the default backlog of 5 drops SYNs and
    # costs a one-second retransmit each.
    request_queue_size = 512

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 30.0,
        cache_mb: int = 512,
    ):
        self.slow_seconds = slow_seconds
        self.cache = ImageCache(cache_mb * 2**20)
        self.stopping = threading.Event()
        self.requests: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        try:
            super().__init__((host, port), DemoImageHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    exc.errno,
                    f"port {port} on {host} is in use: another demo image server may be running "
                    "(stop it, or set demo.port in config/config.yaml)",
                ) from exc
            raise

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"

    def count(self, path: str) -> None:
        with self._count_lock:
            self.requests[path] += 1

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout case) closes its socket before we answer: not an error.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class DemoImageHandler(BaseHTTPRequestHandler):
    server: DemoImageServer
    server_version = "DanQingDemo/1.0"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        log.debug("%s " + format, self.client_address[0], *args)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        self.server.count(path)
        if path in ("/", "/healthz"):
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8", send_body)
            return
        parts = path.strip("/").split("/")
        if len(parts) != 3 or not parts[2].endswith(".jpg"):
            self._page(HTTPStatus.NOT_FOUND, "Not Found", send_body)
            return
        host, case, name = parts
        stem = name[: -len(".jpg")]
        if case in STATUS_CASES:
            status = STATUS_CASES[case]
            self._page(status, status.phrase, send_body)
            return
        if case == "not_image":
            body = HTML_PAGE.format(title="商品详情", text="图片加载中，请稍候……").encode()
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", send_body)
            return
        if case == "redirect":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", f"/{host}/photo/{stem}.jpg")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if case not in SERVED_CASES:
            self._page(HTTPStatus.NOT_FOUND, "Not Found", send_body)
            return
        if case == "timeout" and self.server.stopping.wait(self.server.slow_seconds):
            return  # the server is shutting down
        try:
            data = self.server.cache.get(case, stem)
        except (KeyError, ValueError):
            self._page(HTTPStatus.NOT_FOUND, "Not Found", send_body)
            return
        extra = {"X-Robots-Tag": "noai, noimageai"} if case == images.OPTED_OUT_CASE else {}
        self._send(HTTPStatus.OK, data, "image/jpeg", send_body, extra)

    def _page(self, status: HTTPStatus, title: str, send_body: bool) -> None:
        body = HTML_PAGE.format(title=f"{int(status)} {title}", text=title).encode()
        self._send(status, body, "text/html; charset=utf-8", send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=86400")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


@contextlib.contextmanager
def serve(
    port: int = 0, host: str = "127.0.0.1", slow_seconds: float = 30.0, cache_mb: int = 512
) -> Iterator[DemoImageServer]:
    """Run the server in a background thread for the duration of the block."""
    server = DemoImageServer(host, port, slow_seconds, cache_mb)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"demo-image-server:{server.port}",
        daemon=True,
    )
    thread.start()
    log.info("demo image server on %s", server.url)
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=30.0,
        help="delay of the `timeout` case (longer than the download timeout)",
    )
    parser.add_argument("--cache-mb", type=int, default=512)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = DemoImageServer(args.host, args.port, args.slow_seconds, args.cache_mb)
    # Ctrl-C and a plain `kill` both stop it cleanly, also when started from a script that
    # ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log.info("demo image server on %s (Ctrl-C stops it)", server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.stopping.set()
        server.server_close()


if __name__ == "__main__":
    main()
