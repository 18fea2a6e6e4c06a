"""Bounded retries with exponential backoff for one transfer (a remote WARC stream, one byte range
of a cc-index or WARC file): how many are left, and the wait before the next."""

from __future__ import annotations

import time


class Retries:
    """`limit` retries, the k-th after `backoff * 2**(k-1)` seconds."""

    def __init__(self, limit: int, backoff: float):
        self.limit, self.backoff = limit, backoff
        self.used = 0

    @property
    def left(self) -> bool:
        return self.used < self.limit

    def wait(self) -> None:
        """Count one retry and sleep before it (callers check `left` first)."""
        if not self.left:
            raise RuntimeError(f"all {self.limit} retries are used")
        self.used += 1
        time.sleep(self.backoff * 2 ** (self.used - 1))
