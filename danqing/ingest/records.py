"""The records of a WARC file, read past damage: a corrupt gzip member, a bad CRC or a broken
record header costs the damaged stretch only, counted, and reading resumes at the next intact
member."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator

log = logging.getLogger("danqing")


def iter_records(source, counts: dict) -> Iterator:
    """The records of a WARC. Where a local file is damaged (a corrupt gzip member, a bad CRC, a
    broken record header) reading resumes at the next intact gzip member, and the bytes skipped
    are counted (`lost_bytes`, `resyncs`, the error in `archive_errors`); a stream stops at the
    damage with the error counted, so a cut-off last member never loses the records before it."""
    if isinstance(source, str | os.PathLike) and os.path.isfile(source):
        yield from _iter_resynchronised(os.fspath(source), counts)
        return
    yield from _iter_from(source, counts, 0, None)


def _iter_from(source, counts: dict, offset: int, failure: list | None) -> Iterator:
    """Records of `source` until its end or its first damage; a damage is counted, and with
    `failure` given, [absolute start of the last good record, error] is put in it."""
    from fastwarc.warc import ArchiveIterator

    iterator = iter(ArchiveIterator(source, parse_http=False))
    last = None
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except BaseException as err:  # FastWARC reports Rust panics as BaseException
            if isinstance(err, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            if counts["records"] == 0 and offset == 0:
                raise ValueError(f"not a readable WARC file: {err}") from err
            counts["archive_errors"].append(f"after record {counts['records']}: {err}")
            log.warning("WARC unreadable after record %d: %s", counts["records"], err)
            if failure is not None:
                failure[:] = [last, err]
            return
        last = offset + record.stream_pos
        yield record


def _member_end(handle, start: int) -> int | None:
    """Where the gzip member starting at `start` ends, or None when it does not decompress."""
    handle.seek(start)
    decompressor = zlib.decompressobj(31)
    position = start
    try:
        while not decompressor.eof:
            chunk = handle.read(1 << 20)
            if not chunk:
                return None
            decompressor.decompress(chunk)
            position += len(chunk)
    except zlib.error:
        return None
    return position - len(decompressor.unused_data)


def _next_member(handle, after: int) -> int | None:
    """The start of the first intact gzip member holding a WARC record after byte `after`."""
    position = after
    while True:
        handle.seek(position)
        window = handle.read(1 << 20)
        if len(window) < 3:
            return None
        found = window.find(b"\x1f\x8b\x08")
        while found >= 0:
            start = position + found
            decompressor = zlib.decompressobj(31)
            handle.seek(start)
            try:
                head = decompressor.decompress(handle.read(64 * 1024), 16)
            except zlib.error:
                head = b""
            if head.startswith(b"WARC/") and _member_end(handle, start) is not None:
                return start
            found = window.find(b"\x1f\x8b\x08", found + 1)
        position += len(window) - 2


def _iter_resynchronised(path: str, counts: dict) -> Iterator:
    size = os.path.getsize(path)
    offset = 0
    with open(path, "rb") as probe:
        while offset < size:
            failure: list = []
            with open(path, "rb") as handle:
                handle.seek(offset)
                yield from _iter_from(handle, counts, offset, failure)
            if not failure:
                return
            last, _ = failure
            # The damage begins where the last good record's member ends.
            damaged = offset if last is None else (_member_end(probe, last) or last + 1)
            resume = _next_member(probe, damaged + 1)
            counts["lost_bytes"] += (resume if resume is not None else size) - damaged
            if resume is None:
                return
            counts["resyncs"] += 1
            counts["archive_errors"][-1] += f"; resumed at byte {resume}"
            log.warning(
                "%s: resumed at byte %d after a damaged stretch from byte %d", path, resume, damaged
            )
            offset = resume
