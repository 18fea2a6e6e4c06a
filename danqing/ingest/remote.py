"""A remote WARC file read as one stream through the address policy, resumed with Range requests
where a transfer is cut."""

from __future__ import annotations

import http.client
import logging
import math
import urllib.request
from collections.abc import Iterable

from danqing.retries import Retries

log = logging.getLogger("danqing")


# No WARC file of Common Crawl comes near this; a larger response is cut off, not stored.
WARC_MAX_BYTES = 16 * 1024**3


class HttpStream:
    """A remote WARC read as a stream. A transfer cut short is resumed with a Range request
    from the byte where it stopped (`retries` times, with exponential backoff); when it cannot
    be, the job fails with the URL, the status and the bytes read, so that a dropped connection
    is never taken for a WARC that ends there.

    The connection (and every redirect) goes through the address policy of danqing/safe_http.py:
    `allowed_networks` are the only non-public addresses it may reach.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 120.0,
        allowed_networks: Iterable[str] = (),
        retries: int = 5,
        backoff: float = 1.0,
    ):
        from danqing.safe_http import AddressPolicy, ResponseLimits, guarded_opener

        self.url, self.timeout = url, timeout
        self.resumes = Retries(retries, backoff)
        self.opener = guarded_opener(
            AddressPolicy.from_networks(allowed_networks),
            ResponseLimits(deadline=math.inf, max_bytes=WARC_MAX_BYTES),
        )
        self.response = self.opener.open(self._request(), timeout=timeout)
        length = self.response.headers.get("Content-Length")
        self.expected = int(length) if length and length.isdigit() else None
        self.position = 0
        self.error: BaseException | None = None

    def _request(self, start: int = 0) -> urllib.request.Request:
        headers = {"User-Agent": "danqing-workflow/0.1"}
        if start:
            headers["Range"] = f"bytes={start}-"
        return urllib.request.Request(self.url, headers=headers)

    def _resume(self, cause) -> None:
        if not self.resumes.left:
            self.error = OSError(
                f"{self.url}: transfer cut after {self.position} of {self.expected} bytes, "
                f"{self.resumes.used} resumes: {cause}"
            )
            raise self.error
        self.resumes.wait()
        self.response.close()
        try:
            response = self.opener.open(self._request(self.position), timeout=self.timeout)
        except OSError as err:
            self._resume(err)
            return
        expected_range = f"bytes {self.position}-"
        if response.status != 206 or not (response.headers.get("Content-Range") or "").startswith(
            expected_range
        ):
            response.close()
            self.error = OSError(
                f"{self.url}: transfer cut after {self.position} of {self.expected} bytes, and "
                f"the server answered {response.status} to a Range request: it cannot be resumed"
            )
            raise self.error
        self.response = response
        log.warning("%s: resumed at byte %d (%s)", self.url, self.position, cause)

    def read(self, size: int = -1) -> bytes:
        while True:
            cause = "the connection ended early"
            try:
                data = self.response.read(size)
            except http.client.IncompleteRead as err:
                data, cause = err.partial, err
            except OSError as err:
                data, cause = b"", err
            if data or size == 0:
                self.position += len(data)
                return data
            if self.expected is None or self.position >= self.expected:
                return b""
            self._resume(cause)

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        self.response.close()

    def check_complete(self) -> None:
        if self.error is not None:
            raise OSError(f"download failed after {self.position} bytes: {self.error}")
        if self.expected is not None and self.position < self.expected:
            raise OSError(f"download ended after {self.position} of {self.expected} bytes")
