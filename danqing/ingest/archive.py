"""The pairs and counts of one WARC file."""

from __future__ import annotations

import collections
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import polars as pl

from danqing.ingest.charsets import decode_html, looks_like_markup
from danqing.ingest.html_images import page_images_and_title
from danqing.ingest.pairs import PAIR_SCHEMA, has_language_tag, language_tags, uid_of
from danqing.ingest.payloads import cld2_languages, decode_content, warcinfo_crawl
from danqing.ingest.reasons import DROP_REASONS, SKIP_REASONS, SkipRecord
from danqing.ingest.records import iter_records
from danqing.ingest.remote import HttpStream
from danqing.ingest.sources import batch_of_crawl, crawl_of_location, is_url
from danqing.urls import domain_of, host_of

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PENDING_METADATA = 64


class WarcExtraction:
    """Pairs and counts of one WARC file; feed it records with `add`, then call `result`."""

    def __init__(
        self,
        crawl: str | None = None,
        batches: dict | None = None,
        prefilter_languages: Iterable[str] | None = None,
    ):
        self.crawl = crawl
        self.batch_of = batch_of_crawl(batches)
        self.prefilter = {t.lower() for t in prefilter_languages} if prefilter_languages else None
        self.counts: dict = {
            "records": 0,
            "response_records": 0,
            "html_records": 0,
            "parsed_records": 0,
            "truncated_payloads": 0,
            "skipped_records": dict.fromkeys(SKIP_REASONS, 0),
            "images": 0,
            "dropped_pairs": dict.fromkeys(DROP_REASONS, 0),
            "encodings": Counter(),
            "archive_errors": [],
            "lost_bytes": 0,
            "resyncs": 0,
        }
        self.columns: dict[str, list] = {
            "url": [],
            "alt_text": [],
            "page_url": [],
            "page_title": [],
            "languages": [],
            "record_date": [],
        }
        # Languages of a response without its own header (index mode: the index's tags).
        self.default_languages: str | None = None
        # Rows of recent responses without their own language header, by WARC-Record-ID, until
        # the metadata record that carries their CLD2 languages arrives.
        self.pending: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()

    def add(self, record) -> None:
        from fastwarc.warc import WarcRecordType

        self.counts["records"] += 1
        kind = record.record_type
        if kind == WarcRecordType.response:
            self.counts["response_records"] += 1
            try:
                self._response(record)
                self.counts["parsed_records"] += 1
            except SkipRecord as skip:
                self.counts["skipped_records"][str(skip)] += 1
        elif kind == WarcRecordType.metadata:
            target = record.headers.get("WARC-Concurrent-To")
            if target in self.pending:
                start, end = self.pending.pop(target)
                languages = cld2_languages(record.reader.read())
                self.columns["languages"][start:end] = [languages] * (end - start)
        elif kind == WarcRecordType.warcinfo and self.crawl is None:
            self.crawl = warcinfo_crawl(record.reader.read())

    def _response(self, record) -> None:
        # One conversion instead of a lookup per header (each costs as much as the whole copy).
        headers = {key.lower(): value for key, value in record.headers.items()}
        if headers.get("content-length") is None:
            raise SkipRecord("truncated_record")
        page_url = headers.get("warc-target-uri") or ""
        if not page_url[:8].lower().startswith(("http://", "https://")) or not host_of(page_url):
            raise SkipRecord("invalid_page_url")
        if not record.is_http_parsed:
            try:
                record.parse_http()
            except Exception as err:
                raise SkipRecord("bad_http") from err
        status = record.http_headers.status_code
        if status is None:
            raise SkipRecord("bad_http")
        if not 200 <= status < 300:
            raise SkipRecord("http_status")
        mime = (record.http_content_type or "").lower()
        identified = (headers.get("warc-identified-payload-type") or "").lower()
        sniff = mime in ("", "application/octet-stream") and identified == ""
        if mime not in HTML_TYPES and identified not in HTML_TYPES and not sniff:
            raise SkipRecord("not_html")
        languages = headers.get("warc-identified-content-language")
        if languages is None:
            languages = self.default_languages
        if (
            languages is not None
            and self.prefilter is not None
            and not language_tags(languages) & self.prefilter
        ):
            self.counts["html_records"] += 1
            raise SkipRecord("language_prefilter")
        body = record.reader.read()
        if len(body) < record.content_length:
            raise SkipRecord("truncated_record")
        if sniff and not re.match(rb"\s*<(?:!doctype\s+html|html|head|body)", body[:1024], re.I):
            raise SkipRecord("not_html")
        self.counts["html_records"] += 1
        if headers.get("warc-truncated") is not None:
            self.counts["truncated_payloads"] += 1
        http_headers = record.http_headers
        body = decode_content(
            body, http_headers.get("Content-Encoding"), http_headers.get("Transfer-Encoding")
        )
        if not body.strip():
            raise SkipRecord("empty_payload")
        text, codec = decode_html(body, record.http_charset)
        self.counts["encodings"][codec] += 1
        if not looks_like_markup(text):
            raise SkipRecord("broken_html")
        try:
            images, title = page_images_and_title(text, page_url)
        except SkipRecord:
            raise
        except Exception as err:
            raise SkipRecord("broken_html") from err
        self._add_images(images, page_url, title, languages, headers.get("warc-record-id"), record)

    def _add_images(self, images, page_url, title, languages, record_id, record) -> None:
        self.counts["images"] += len(images)
        start = len(self.columns["url"])
        date = None
        dropped = self.counts["dropped_pairs"]
        for url, alt, reason in images:
            if reason is not None:
                dropped[reason] += 1
                continue
            if date is None:
                date = _record_date(record)
            self.columns["url"].append(url)
            self.columns["alt_text"].append(alt)
            self.columns["page_url"].append(page_url)
            self.columns["page_title"].append(title)
            self.columns["languages"].append(languages)
            self.columns["record_date"].append(date)
        end = len(self.columns["url"])
        if languages is None and record_id and end > start:
            self.pending[record_id] = (start, end)
            while len(self.pending) > PENDING_METADATA:
                self.pending.popitem(last=False)

    def result(self) -> tuple[pl.DataFrame, dict]:
        """The pairs (language prefilter and in-file duplicates applied) and the counts."""
        frame = pl.DataFrame(
            {name: self.columns[name] for name in self.columns},
            schema={name: PAIR_SCHEMA[name] for name in self.columns},
        ).with_columns(pl.col("languages").fill_null(""))
        dropped = self.counts["dropped_pairs"]
        if self.prefilter is not None and frame.height:
            before = frame.height
            frame = frame.filter(has_language_tag(self.prefilter))
            dropped["language_prefilter"] += before - frame.height
        before = frame.height
        frame = frame.filter(pl.struct("url", "alt_text").is_first_distinct())
        dropped["duplicate_in_warc"] += before - frame.height
        crawl = self.crawl
        batch = self.batch_of.get(crawl) if crawl else None
        urls, alts = frame["url"].to_list(), frame["alt_text"].to_list()
        frame = frame.with_columns(
            pl.Series(
                "uid",
                [uid_of(crawl, u, a) for u, a in zip(urls, alts, strict=True)],
                dtype=pl.String,
            ),
            pl.Series("domain", [domain_of(u) for u in urls], dtype=pl.String),
            pl.lit(crawl, dtype=pl.String).alias("crawl"),
            pl.lit(batch, dtype=pl.String).alias("batch"),
        ).select(list(PAIR_SCHEMA))
        counts = dict(self.counts)
        counts["encodings"] = dict(sorted(self.counts["encodings"].items()))
        counts["crawl"] = crawl
        counts["batch"] = batch
        counts["pairs"] = frame.height
        counts["pairs_zho"] = frame.filter(has_language_tag({"zho"})).height
        check_counts(counts)
        return frame, counts


def check_counts(counts: dict) -> None:
    skipped = sum(counts["skipped_records"].values())
    if counts["response_records"] != counts["parsed_records"] + skipped:
        raise AssertionError(
            f"{counts['response_records']} responses but "
            f"{counts['parsed_records']} parsed + {skipped} skipped"
        )
    dropped = sum(counts["dropped_pairs"].values())
    if counts["images"] != counts["pairs"] + dropped:
        raise AssertionError(
            f"{counts['images']} images but {counts['pairs']} pairs + {dropped} dropped"
        )


def _record_date(record) -> datetime | None:
    try:
        return record.record_date
    except Exception:
        return None


def extract_warc(
    location: str,
    crawl: str | None = None,
    batches: dict | None = None,
    prefilter_languages: Iterable[str] | None = None,
    allowed_networks: Iterable[str] = (),
) -> tuple[pl.DataFrame, dict]:
    """Pairs and counts of one WARC file (local path, or http(s) URL streamed through the
    address policy, `allowed_networks` exempt)."""
    # The crawl id in the file's path wins, then the warcinfo record's isPartOf, then `crawl`.
    extraction = WarcExtraction(crawl_of_location(location), batches, prefilter_languages)
    stream = HttpStream(location, allowed_networks=allowed_networks) if is_url(location) else None
    try:
        for record in iter_records(stream if stream else location, extraction.counts):
            extraction.add(record)
        if stream:
            stream.check_complete()
    finally:
        if stream:
            stream.close()
    if extraction.crawl is None:
        extraction.crawl = crawl
    frame, counts = extraction.result()
    counts["warc"] = location
    return frame, counts
