"""Index mode of the Common Crawl ingestion: only the Chinese HTML records, by byte range.

A crawl's WARC files hold every language; DanQing keeps the pages Common Crawl tagged `zho` (a
few percent of them). Common Crawl's columnar index (cc-index-table, Parquet, one row per capture)
names each capture's WARC file, byte offset and length, with its status, MIME type and detected
languages. So this mode reads the index (only the columns it needs, by range from a remote
Parquet file as from a local one), selects the captures with status 200, an HTML type and one of
the configured languages, and fetches just those records with HTTP Range requests: every record
is one gzip member, which the WARC reader reads on its own.

One job per index file. Its records are fetched in chunks (`chunk_records`); each finished chunk's
pairs and counts are written to the job's partial folder, so a killed job resumes at the first
unfinished chunk. Every request goes through the address policy (danqing/safe_http.py), with
bounded retries and exponential backoff on connection errors, 429 and 5xx; a range cut short is
resumed from the byte where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from danqing.retries import Retries

log = logging.getLogger("danqing.ingest.cc_index")

INDEX_COLUMNS = (
    "url",
    "fetch_status",
    "content_mime_detected",
    "content_languages",
    "warc_filename",
    "warc_record_offset",
    "warc_record_length",
)
HTML_MIME = ("text/html", "application/xhtml+xml")
USER_AGENT = "danqing-workflow/0.1 (cc-index range reader)"
# A WARC record of Common Crawl is at most a few MB (payloads are truncated at 1 MiB).
MAX_RECORD_BYTES = 64 * 1024 * 1024
RETRY_STATUS = {429, 500, 502, 503, 504}


class RangeReader:
    """Byte ranges of http(s) URLs through the guarded opener, retried with backoff."""

    def __init__(
        self,
        allowed_networks: Iterable[str] = (),
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 1.0,
    ):
        from danqing.safe_http import AddressPolicy, ResponseLimits, guarded_opener

        self.opener = guarded_opener(
            AddressPolicy.from_networks(allowed_networks),
            ResponseLimits(deadline=max(timeout * 4, 60.0), max_bytes=MAX_RECORD_BYTES),
        )
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.bytes_read = 0
        self.requests = 0
        self.retried = 0

    def read(self, url: str, start: int, length: int) -> bytes:
        """`length` bytes of `url` from `start`; a cut transfer resumes where it stopped."""
        data = bytearray()
        retries = Retries(self.retries, self.backoff)
        while len(data) < length:
            first = start + len(data)
            last = start + length - 1
            request = urllib.request.Request(
                url, headers={"User-Agent": USER_AGENT, "Range": f"bytes={first}-{last}"}
            )
            try:
                self.requests += 1
                with self.opener.open(request, timeout=self.timeout) as response:
                    if response.status != 206:
                        raise OSError(
                            f"{url}: range {first}-{last} answered with status {response.status}, "
                            "not 206 (the server ignores Range requests)"
                        )
                    chunk = response.read(last - first + 1)
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUS or not retries.left:
                    raise OSError(f"{url}: range {first}-{last}: HTTP {err.code}") from err
                chunk = b""
            except OSError as err:
                if "refused" in str(err) or not retries.left:
                    raise OSError(
                        f"{url}: range {first}-{last} failed after {retries.used + 1} attempt(s), "
                        f"{len(data)} of {length} bytes read: {err}"
                    ) from err
                chunk = b""
            self.bytes_read += len(chunk)
            data += chunk
            if len(data) < length:
                if not retries.left:
                    raise OSError(
                        f"{url}: range {start}-{start + length - 1} ended after {len(data)} of "
                        f"{length} bytes, {retries.used + 1} attempts"
                    )
                self.retried += 1
                retries.wait()
        return bytes(data)


class RemoteFile(io.RawIOBase):
    """A seekable read-only file over Range requests: pyarrow reads a Parquet index's footer and
    the column chunks it needs, not the whole file."""

    def __init__(self, url: str, reader: RangeReader):
        self.url = url
        self.reader = reader
        self.position = 0
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        with reader.opener.open(request, timeout=reader.timeout) as response:
            length = response.headers.get("Content-Length")
        if not length or not length.isdigit():
            raise OSError(f"{url}: no Content-Length, cannot read it by range")
        self.size = int(length)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        data = self.reader.read(self.url, self.position, wanted)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


# Where a crawl's index listing is cached: every Snakemake process (each cluster job parses the
# workflow again) reads the same file instead of fetching it.
CRAWL_LISTINGS = Path("results/cc_index")
LISTING_MAX_BYTES = 16 * 1024 * 1024


def crawl_index_paths(crawl: str, base_url: str, allowed_networks=()) -> list[str]:
    """The cc-index-table Parquet files of one crawl (subset=warc: the responses, not the
    robots.txt or diagnostic captures), from the listing Common Crawl publishes with each crawl,
    `crawl-data/<crawl>/cc-index-table.paths.gz` under `base_url`; fetched once (through the
    address policy) and cached in results/cc_index/."""
    from danqing.ingest.sources import read_paths_file
    from danqing.io import atomic_path
    from danqing.safe_http import AddressPolicy, ResponseLimits, guarded_opener

    cache = CRAWL_LISTINGS / f"{crawl}.cc-index-table.paths.gz"
    if not cache.is_file():
        url = f"{base_url.rstrip('/')}/crawl-data/{crawl}/cc-index-table.paths.gz"
        opener = guarded_opener(
            AddressPolicy.from_networks(allowed_networks),
            ResponseLimits(deadline=120.0, max_bytes=LISTING_MAX_BYTES),
        )
        try:
            with opener.open(url, timeout=60) as response:
                data = response.read()
        except OSError as error:  # URLError, HTTPError, refused address, too large
            raise ValueError(
                f"warc.index.crawls: cannot read the index listing of {crawl} at {url}: {error}"
            ) from error
        with atomic_path(cache) as tmp:
            tmp.write_bytes(data)
    entries = [e for e in read_paths_file(cache) if "/subset=warc/" in e]
    if not entries:
        raise ValueError(
            f"warc.index.crawls: the listing of {crawl} ({cache}) names no subset=warc file"
        )
    return entries


def index_locations(cfg: dict, allowed_networks=()) -> list[str]:
    """The configured index files: `index.paths`, the lines of `index.paths_file` (a crawl's
    `cc-index-table.paths.gz`) and the subset=warc files of each of `index.crawls`, the last two
    joined to `warc.base_url`."""
    from danqing.ingest.sources import is_url, read_paths_file

    index = cfg["index"]
    base = cfg["base_url"]

    def joined(entries: list[str]) -> list[str]:
        return [
            e if is_url(e) or e.startswith("/") else base.rstrip("/") + "/" + e for e in entries
        ]

    locations = [str(p) for p in index["paths"]]
    if index["paths_file"]:
        locations += joined(read_paths_file(index["paths_file"]))
    for crawl in index["crawls"]:
        locations += joined(crawl_index_paths(crawl, base, allowed_networks))
    if len(set(locations)) != len(locations):
        raise ValueError("warc.index: an index file is listed twice")
    return locations


def index_sources(cfg: dict, allowed_networks=()) -> dict[str, str]:
    """{job name: index location}, names unique (a hash of the location where stems repeat)."""
    from danqing.ingest.sources import location_stem

    names: dict[str, str] = {}
    for location in index_locations(cfg, allowed_networks):
        stem = location_stem(location).removesuffix(".parquet")
        if stem in names:
            stem = f"{stem}-{hashlib.sha1(location.encode()).hexdigest()[:8]}"
        names[stem] = location
    return names


def where_filter(where: str | None) -> pl.Expr | None:
    """A SQL boolean expression over the index's columns (`url_host_tld = 'cn' AND
    fetch_time >= '2024-03-01'`) as a Polars expression (Polars' SQL), or None."""
    if not where:
        return None
    try:
        return pl.sql_expr(where)
    except Exception as error:  # polars raises several kinds for bad SQL
        raise ValueError(f"warc.index.where is not a SQL expression: {where!r}: {error}") from error


def select_records(
    location: str,
    languages: Iterable[str],
    mime_types: Iterable[str],
    reader: RangeReader | None = None,
    where: str | None = None,
) -> tuple[pl.DataFrame, int]:
    """The captures of one index file to fetch (status 200, HTML, one of `languages`, and the
    `where` SQL condition when given), sorted by WARC file and offset, and the number of index
    rows read. Only the columns needed are read (by range, for a remote file)."""
    import pyarrow.parquet as pq

    from danqing.ingest.sources import is_url

    source = RemoteFile(location, reader or RangeReader()) if is_url(location) else location
    parquet = pq.ParquetFile(source)
    condition = where_filter(where)
    extra = [] if condition is None else condition.meta.root_names()
    columns = list(dict.fromkeys([*INDEX_COLUMNS, *extra]))
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise ValueError(f"{location}: not a cc-index-table file (no column(s) {missing})")
    wanted = {t.lower() for t in languages}
    mimes = [m.lower() for m in mime_types]
    parts, rows = [], 0
    for batch in parquet.iter_batches(columns=columns, batch_size=262_144):
        frame = pl.from_arrow(batch)
        rows += frame.height
        tags = pl.col("content_languages").fill_null("").str.to_lowercase().str.split(",")
        keep = (
            (pl.col("fetch_status") == 200)
            & pl.col("content_mime_detected").fill_null("").str.to_lowercase().is_in(mimes)
            & tags.list.eval(pl.element().str.strip_chars().is_in(list(wanted))).list.any()
        )
        if condition is not None:
            keep = keep & condition.fill_null(False)
        parts.append(frame.filter(keep).select(INDEX_COLUMNS))
    selected = pl.concat(parts) if parts else pl.DataFrame(schema=dict.fromkeys(INDEX_COLUMNS))
    return selected.sort("warc_filename", "warc_record_offset"), rows


def _extract_chunk(
    records: pl.DataFrame, base_url: str, reader: RangeReader, crawl, batches, languages
) -> tuple[pl.DataFrame, dict]:
    from danqing.ingest.archive import WarcExtraction
    from danqing.ingest.records import iter_records
    from danqing.ingest.sources import crawl_of_location

    extraction = WarcExtraction(crawl, batches, languages)
    lost: list[str] = []
    for filename, offset, length, tags in records.select(
        "warc_filename", "warc_record_offset", "warc_record_length", "content_languages"
    ).iter_rows():
        url = filename if filename.startswith(("http://", "https://")) else base_url + filename
        if extraction.crawl is None:
            extraction.crawl = crawl_of_location(filename)
        try:
            member = reader.read(url, int(offset), int(length))
        except OSError as err:
            if "refused" in str(err):
                raise
            lost.append(str(err)[:300])
            continue
        # The index's languages stand in for the metadata record this mode does not fetch.
        extraction.default_languages = tags
        errors = len(extraction.counts["archive_errors"])
        try:
            for record in iter_records(io.BytesIO(member), extraction.counts):
                extraction.add(record)
        except ValueError as err:  # the range holds no readable record: that record is lost
            lost.append(f"{url} @{offset}+{length}: {err}"[:300])
            continue
        if len(extraction.counts["archive_errors"]) > errors:
            lost.append(f"{url} @{offset}+{length}: damaged record")
    frame, counts = extraction.result()
    counts["index_records"] = records.height
    counts["lost_records"] = len(lost)
    counts["archive_errors"] = counts["archive_errors"] + lost[:20]
    return frame, counts


def _total(records: list[dict]) -> dict:
    """One job's counts from its chunks' (numbers and reason tables summed, errors listed)."""
    from danqing.ingest.collection import add_counts

    total: dict = {"archive_errors": [], "crawl": None, "batch": None}
    for record in records:
        add_counts(total, record)
        total["archive_errors"] += record.get("archive_errors", [])
        total["crawl"] = total["crawl"] or record.get("crawl")
        total["batch"] = total["batch"] or record.get("batch")
    return total


def extract_index(
    location: str,
    out_dir: str | Path,
    *,
    base_url: str,
    crawl: str | None = None,
    batches: dict | None = None,
    languages: Iterable[str] = ("zho",),
    mime_types: Iterable[str] = HTML_MIME,
    chunk_records: int = 2000,
    allowed_networks: Iterable[str] = (),
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
    where: str | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Pairs and counts of the selected captures of one index file; resumable in `out_dir`."""
    from danqing.io import write_json, write_parquet

    base_url = base_url if base_url.endswith("/") else base_url + "/"
    reader = RangeReader(allowed_networks, timeout, retries, backoff)
    started = time.perf_counter()
    selected, index_rows = select_records(location, languages, mime_types, reader, where)
    index_bytes, reader.bytes_read = reader.bytes_read, 0
    out_dir = Path(out_dir)
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                location,
                base_url,
                sorted(languages),
                sorted(mime_types),
                chunk_records,
                where,
                selected.height,
            ]
        ).encode()
    ).hexdigest()
    stamp = out_dir / "fingerprint.txt"
    if out_dir.exists() and (not stamp.is_file() or stamp.read_text().strip() != fingerprint):
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")
    frames, records = [], []
    for number, start in enumerate(range(0, selected.height, chunk_records)):
        pairs_path = out_dir / f"chunk-{number:06d}.parquet"
        counts_path = out_dir / f"chunk-{number:06d}.json"
        if counts_path.is_file():  # written last: the chunk is complete
            frames.append(pl.read_parquet(pairs_path))
            records.append(json.loads(counts_path.read_text()))
            continue
        frame, counts = _extract_chunk(
            selected.slice(start, chunk_records), base_url, reader, crawl, batches, None
        )
        counts["bytes_read"] = reader.bytes_read
        reader.bytes_read = 0
        write_parquet(frame, pairs_path)
        write_json(counts, counts_path)
        frames.append(frame)
        records.append(counts)
    from danqing.ingest.pairs import PAIR_SCHEMA

    pairs = pl.concat(frames) if frames else pl.DataFrame(schema=PAIR_SCHEMA)
    counts = _total(records)
    before = pairs.height
    # A page captured twice lands in two chunks: one pair, as within one WARC file.
    pairs = pairs.filter(pl.struct("url", "alt_text").is_first_distinct())
    counts.setdefault("dropped_pairs", {})
    counts["dropped_pairs"]["duplicate_in_warc"] = (
        counts["dropped_pairs"].get("duplicate_in_warc", 0) + before - pairs.height
    )
    counts["pairs"] = pairs.height
    counts["pairs_zho"] = pairs.filter(pl.col("languages").str.contains("zho")).height
    elapsed = time.perf_counter() - started
    counts.update(
        {
            "warc": location,
            "index": location,
            "index_rows": index_rows,
            "index_bytes_read": index_bytes,
            "selected_records": selected.height,
            "seconds": round(elapsed, 3),
            "records_per_s": round(selected.height / elapsed, 1) if elapsed > 0 else None,
            "bytes_per_pair": round(counts.get("bytes_read", 0) / pairs.height, 1)
            if pairs.height
            else None,
        }
    )
    log.info(
        "%s: %d of %d index rows selected, %d pairs, %s bytes read",
        location,
        selected.height,
        index_rows,
        pairs.height,
        counts.get("bytes_read"),
    )
    return pairs, counts
