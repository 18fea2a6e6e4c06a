"""A WARC record's payload as the server meant it (transfer and content codings undone), and the
Common Crawl metadata and warcinfo fields ingestion reads."""

from __future__ import annotations

import json
import zlib

from danqing.ingest.reasons import SkipRecord
from danqing.ingest.sources import CRAWL_ID


def dechunk(body: bytes) -> bytes:
    """Undo HTTP chunked transfer encoding (raises ValueError on a malformed chunk header)."""
    out, pos = bytearray(), 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("chunk header without CRLF")
        size = int(body[pos:end].split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


def decode_content(
    body: bytes, content_encoding: str | None, transfer_encoding: str | None
) -> bytes:
    """The payload as the server meant it. Common Crawl stores payloads already decoded (the
    original headers renamed to X-Crawler-*); other crawlers' WARCs may not."""
    try:
        if transfer_encoding and "chunked" in transfer_encoding.lower():
            body = dechunk(body)
        for coding in reversed([c.strip().lower() for c in (content_encoding or "").split(",")]):
            if coding in ("", "identity", "none"):
                continue
            if coding in ("gzip", "x-gzip"):
                body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)
            elif coding == "deflate":
                try:
                    body = zlib.decompressobj().decompress(body)
                except zlib.error:
                    body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)
            elif coding == "br":
                import brotli

                body = brotli.decompress(body)
            else:
                raise ValueError(f"unknown content coding {coding}")
    except Exception as err:  # zlib.error, brotli.error, ValueError from dechunk
        raise SkipRecord("content_encoding") from err
    return body


def cld2_languages(metadata: bytes) -> str:
    """The ISO 639-3 codes of a Common Crawl metadata record's `languages-cld2` line."""
    for line in metadata.split(b"\n"):
        if line.startswith(b"languages-cld2:"):
            try:
                found = json.loads(line.split(b":", 1)[1])
            except ValueError:
                return ""
            codes = [lang.get("code-iso-639-3") for lang in found.get("languages", [])]
            return ",".join(c for c in codes if c)
    return ""


def warcinfo_crawl(body: bytes) -> str | None:
    for line in body.split(b"\n"):
        if line.lower().startswith(b"ispartof:"):
            match = CRAWL_ID.search(line.decode("utf-8", "replace"))
            if match:
                return match.group(0)
    return None
