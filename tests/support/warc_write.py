"""Writing WARC files the way Common Crawl lays them out: one gzip member per record, and per
captured page a `request`, a `response` and a `metadata` record (the last one carrying the CLD2
languages). Used by the tests and the extraction benchmark to make their input."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterable
from pathlib import Path

CRLF = b"\r\n"


def record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def warc_record(
    kind: str,
    block: bytes,
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
    date: str = "2024-02-21T10:11:12Z",
    rec_id: str | None = None,
) -> bytes:
    """One WARC/1.0 record: headers, block, and the two CRLFs that end it."""
    lines = [
        "WARC/1.0",
        f"WARC-Type: {kind}",
        f"WARC-Date: {date}",
        f"WARC-Record-ID: {rec_id or record_id()}",
    ]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(block)}")
    return "\r\n".join(lines).encode("utf-8") + CRLF + CRLF + block + CRLF + CRLF


def http_response(
    body: bytes,
    content_type: str | None = "text/html; charset=utf-8",
    status: str = "200 OK",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + CRLF + CRLF + body


def warcinfo(crawl: str) -> bytes:
    fields = f"isPartOf: {crawl}\r\npublisher: Common Crawl\r\nformat: WARC File Format 1.1\r\n"
    return warc_record("warcinfo", fields.encode(), content_type="application/warc-fields")


def capture(
    url: str,
    http: bytes,
    languages: str | None = None,
    cld2: list[str] | None = None,
    date: str = "2024-02-21T10:11:12Z",
    identified_type: str | None = None,
    truncated: str | None = None,
) -> list[bytes]:
    """request + response (+ metadata with `languages-cld2` when `cld2` is given) for one page.

    `languages` goes into the response's WARC-Identified-Content-Language header (as WET files
    and some crawlers write it); `cld2` lists ISO 639-3 codes for the metadata record, as
    Common Crawl's WARC files carry them; `truncated` is a WARC-Truncated reason (`length`:
    the payload was cut at the crawler's size limit)."""
    host = url.split("/")[2]
    request = warc_record(
        "request",
        f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        headers={"WARC-Target-URI": url},
        content_type="application/http; msgtype=request",
        date=date,
    )
    response_id = record_id()
    headers = {"WARC-Target-URI": url}
    if identified_type:
        headers["WARC-Identified-Payload-Type"] = identified_type
    if languages is not None:
        headers["WARC-Identified-Content-Language"] = languages
    if truncated:
        headers["WARC-Truncated"] = truncated
    response = warc_record(
        "response",
        http,
        headers=headers,
        content_type="application/http; msgtype=response",
        date=date,
        rec_id=response_id,
    )
    records = [request, response]
    if cld2 is not None:
        found = {
            "reliable": True,
            "text-bytes": 1000,
            "languages": [
                {
                    "code": code[:2],
                    "code-iso-639-3": code,
                    "text-covered": 0.9,
                    "score": 900.0,
                    "name": code.upper(),
                }
                for code in cld2
            ],
        }
        body = (
            f"fetchTimeMs: 12\r\ncharset-detected: UTF-8\r\nlanguages-cld2: {json.dumps(found)}\r\n"
        )
        records.append(
            warc_record(
                "metadata",
                body.encode(),
                headers={"WARC-Target-URI": url, "WARC-Concurrent-To": response_id},
                content_type="application/warc-fields",
                date=date,
            )
        )
    return records


def write_warc(
    path: str | Path, records: Iterable[bytes], tail: bytes = b"", compresslevel: int = 6
) -> Path:
    """Write records as one gzip member each (Common Crawl's layout), then `tail` verbatim."""
    path = Path(path)
    with open(path, "wb") as handle:
        for record in records:
            handle.write(gzip.compress(record, compresslevel=compresslevel, mtime=0))
        handle.write(tail)
    return path
