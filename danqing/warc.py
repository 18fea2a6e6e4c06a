"""Common Crawl ingestion: image-URL/alt-text pairs with language tags from WARC files.

One WARC file is streamed record by record (FastWARC). Each HTTP 2xx HTML `response` record is
decoded to Unicode (BOM, valid UTF-8, the HTTP charset, the `<meta>` charset, then detection), its
DOM is parsed (Resiliparse/lexbor, which repairs broken markup the way browsers do), and every
`<img>` with a non-empty alt becomes a pair: the image URL resolved against `<base href>` and the
page URL (lazy-loading attributes and srcset where `src` is a placeholder), the alt text with
entities decoded and whitespace collapsed, and the image's registered domain.

A page's language tags are the record's `WARC-Identified-Content-Language` header when it has one
(WET-style), else the CLD2 result of the `metadata` record Common Crawl writes right after each
response (`languages-cld2:`), as the same comma-separated ISO 639-3 list (`zho,eng`).

Records that cannot be used are counted under a reason and skipped; images that give no pair are
counted under a reason too, so that `response_records = parsed_records + sum(skipped_records)`
and `images = pairs + sum(dropped_pairs)` for every WARC file.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import functools
import gzip
import hashlib
import http.client
import json
import logging
import math
import os
import re
import urllib.request
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import ada_url
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger("danqing")

PAIR_SCHEMA = {
    "uid": pl.String,
    "url": pl.String,
    "alt_text": pl.String,
    "page_url": pl.String,
    "page_title": pl.String,
    "domain": pl.String,
    "languages": pl.String,
    "crawl": pl.String,
    "batch": pl.String,
    "record_date": pl.Datetime("us", "UTC"),
}
# Why a response record gave no pairs at all (every reason is counted, also when zero).
SKIP_REASONS = (
    "truncated_record",  # the file ends inside the record (or inside its headers)
    "invalid_page_url",  # no http(s) WARC-Target-URI
    "bad_http",  # the HTTP status line or headers do not parse
    "http_status",  # not a 2xx response
    "not_html",  # the payload is an image, PDF, JSON, ...
    "language_prefilter",  # the record's own language header misses warc.prefilter_languages
    "content_encoding",  # gzip/deflate/br/chunked payload that does not decode
    "empty_payload",
    "undecodable",  # every charset leaves over 1% of the text as replacement characters
    "broken_html",  # binary junk served as HTML, or markup the parser rejects
)
# Why an <img> gave no pair.
DROP_REASONS = (
    "empty_alt",
    "no_src",
    "data_uri",
    "invalid_url",
    "language_prefilter",
    "duplicate_in_warc",
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
COLLECTED_PAIRS = "results/ingest/raw_pairs.parquet"
CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")
# Attributes that lazy-loading scripts read the real image URL from, most common first; data-url
# (last) is also used for link targets, so it only stands in for a missing src.
LAZY_SRC_ATTRS = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-actualsrc",
    "data-lazyload",
    "data-echo",
    "data-url",
)
LAZY_SRCSET_ATTRS = ("data-srcset", "srcset")
# File names of the images lazy-loading pages put in `src` until a script swaps in the real one.
_PLACEHOLDER_WORDS = (
    "blank",
    "spacer",
    "pixel",
    "transparent",
    "loading",
    "lazy",
    "grey",
    "gray",
    "1x1",
    "clear",
    "empty",
)
_PLACEHOLDER_TYPES = (".gif", ".png", ".svg", ".webp")
_SPACES = re.compile(r"\s+")
_TAG_SPLIT = re.compile(r"[\s,;|]+")
_HAS_IMG = re.compile(r"<img\b", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_URL_NOISE = str.maketrans("", "", "\t\n\r")
_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#\\]*@)?(\[[^\]/?#]*\]|[^:/?#\\]*)")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# HTML5 treats GB2312 and GBK labels as GBK, whose superset GB18030 decodes every GBK page (the
# lone byte 0x80 is the euro sign, as browsers decode GBK: see _gbk_euro). Big5 is decoded as
# browsers do, with Microsoft's cp950 table (A145 is ‧, A1E3 ～, A244 ￥; Python's big5hkscs gives
# •, ∼, ¥), then with HKSCS for the Hong Kong characters cp950 lacks.
_CODEC_ALIASES = {"gbk": ("gb18030",), "gb2312": ("gb18030",), "big5": ("cp950", "big5hkscs")}
# Labels whose codecs decode (almost) any bytes: they cannot tell that a page is not theirs.
_SINGLE_BYTE = re.compile(r"^(latin[-_]?1|iso8859[-_]\d+|cp125\d|windows[-_]125\d|ascii)$")
MAX_REPLACEMENT_SHARE = 0.01
PENDING_METADATA = 64


class SkipRecord(Exception):
    """A response record that gives no pairs; the message is the counted reason."""


# --------------------------------------------------------------------------- configuration


def warc_configured(cfg: dict | None) -> bool:
    """True when the `warc` config section lists WARC files or index files to ingest."""
    index = (cfg or {}).get("index") or {}
    return bool(
        cfg
        and (
            cfg.get("paths")
            or cfg.get("paths_file")
            or index.get("paths")
            or index.get("paths_file")
        )
    )


def partition_input_path(config: dict) -> str:
    """The partition's input: the collected WARC pairs when WARC files are configured."""
    if warc_configured(config.get("warc")):
        return COLLECTED_PAIRS
    return config["input"]["path"]


def partition_input_format(config: dict) -> str:
    if warc_configured(config.get("warc")):
        return "parquet"
    return config["input"]["format"]


def local_warc_input(sources: dict[str, str]) -> Callable:
    """Input function of the per-WARC rule: the file itself when it is local (so that a changed
    file reruns its job), nothing for a URL (streamed by the job)."""

    def local_file(wildcards) -> list[str]:
        location = sources[wildcards.warc]
        return [] if is_url(location) else [location]

    return local_file


def warc_locations(cfg: dict | None) -> list[str]:
    """The configured WARC files in order: `paths`, then the lines of `paths_file` (a Common
    Crawl `warc.paths.gz`, relative paths joined to `base_url`), cut to `max_files`."""
    if not cfg:
        return []
    locations = [str(p) for p in cfg.get("paths") or []]
    if cfg.get("paths_file"):
        base = cfg.get("base_url") or DEFAULT_BASE_URL
        if not base.endswith("/"):
            base += "/"
        for entry in read_paths_file(cfg["paths_file"]):
            locations.append(entry if is_url(entry) or entry.startswith("/") else base + entry)
    if cfg.get("max_files") is not None:
        locations = locations[: cfg["max_files"]]
    seen: set[str] = set()
    for location in locations:
        if location in seen:
            raise ValueError(f"warc: {location} is listed twice; its pairs would be counted twice")
        seen.add(location)
    return locations


def read_paths_file(path: str | Path) -> list[str]:
    """The entries of a Common Crawl `*.paths(.gz)` listing (blank lines and # comments out)."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [e for e in (line.strip() for line in handle) if e and not e.startswith("#")]


def warc_sources(cfg: dict | None) -> dict[str, str]:
    """{job name: location} in list order. The name is the file name without `.warc.gz`, with a
    hash of the location appended only where two files share a name."""
    locations = warc_locations(cfg)
    stems = [_stem(loc) for loc in locations]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    names = {}
    for stem, location in zip(stems, locations, strict=True):
        if stem in repeated:
            stem = f"{stem}-{hashlib.sha1(location.encode()).hexdigest()[:8]}"
        names[stem] = location
    return names


def _stem(location: str) -> str:
    name = urlsplit(location).path.rsplit("/", 1)[-1] if is_url(location) else Path(location).name
    for suffix in (".gz", ".zst", ".lz4", ".warc", ".arc"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "warc"


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def batch_of_crawl(batches: dict | None) -> dict[str, str]:
    """Invert `warc.batches` ({batch: [crawl ids]}); a crawl listed in two batches is an error."""
    mapping: dict[str, str] = {}
    for batch, crawls in (batches or {}).items():
        for crawl in crawls:
            if crawl in mapping and mapping[crawl] != batch:
                raise ValueError(f"warc.batches: {crawl} is in batch {mapping[crawl]} and {batch}")
            mapping[crawl] = str(batch)
    return mapping


def crawl_of_location(location: str) -> str | None:
    match = CRAWL_ID.search(location)
    return match.group(0) if match else None


def uid_of(crawl: str | None, url: str, alt_text: str) -> str:
    """Equal for equal (url, alt) in one crawl, so the partition's duplicate-uid removal keeps
    the first page seen of each pair within a crawl."""
    return hashlib.sha1(f"{crawl or ''}\t{url}\t{alt_text}".encode()).hexdigest()[:20]


def language_tags(value: str | None) -> set[str]:
    return {t.lower() for t in _TAG_SPLIT.split(value or "") if t}


def has_language_tag(tags: Iterable[str]) -> pl.Expr:
    """Rows whose `languages` list (`zho,eng`) holds one of `tags`."""
    wanted = sorted(t.lower() for t in tags)
    return (
        pl.col("languages")
        .str.to_lowercase()
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().is_in(wanted))
        .list.any()
    )


# --------------------------------------------------------------------------- charsets


def python_codecs(label: str | None) -> tuple[str, ...]:
    """Python codecs for a charset label as browsers read it (HTML5 label table), best first."""
    if not label:
        return ()
    from resiliparse.parse.encoding import map_encoding_to_html5

    label = label.strip().strip("\"'").lower()
    html5 = map_encoding_to_html5(label, fallback_utf8=False) or label
    out = []
    for name in _CODEC_ALIASES.get(html5, (html5,)):
        try:
            out.append(codecs.lookup(name).name)
        except LookupError:
            continue
    return tuple(out)


def meta_charset(payload: bytes) -> str | None:
    """The charset of `<meta charset>` or `<meta http-equiv=Content-Type>` near the top."""
    match = _META_CHARSET.search(payload, 0, 4096)
    return match.group(1).decode("ascii", "replace") if match else None


def _gbk_euro(error: UnicodeDecodeError) -> tuple[str, int]:
    """Decode error handler: a lone 0x80 in GBK text is the euro sign (WHATWG's GBK decoder and
    Windows' cp936); any other undecodable byte stays an error."""
    if error.object[error.start : error.start + 1] == b"\x80":
        return "\u20ac", error.start + 1
    raise error


codecs.register_error("danqing-gbk-euro", _gbk_euro)


def _strict(payload: bytes, codec: str) -> str | None:
    # final=False: a multi-byte character cut by a truncated payload is not an error.
    errors = "danqing-gbk-euro" if codec == "gb18030" else "strict"
    try:
        return codecs.getincrementaldecoder(codec)(errors).decode(payload, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(payload: bytes, http_charset: str | None = None) -> tuple[str, str]:
    """(text, codec). Raises SkipRecord('undecodable') when nothing decodes the payload.

    Valid UTF-8 with non-ASCII bytes is taken as UTF-8 whatever the labels say: a mislabelled
    UTF-8 page is common, while GBK or Big5 text that is also valid UTF-8 is vanishingly rare.
    """
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return payload[len(bom) :].decode(codec, "replace"), codec
    if payload.isascii():
        return payload.decode("ascii"), "ascii"
    text = _strict(payload, "utf-8")
    if text is not None:
        return text, "utf-8"
    candidates: list[str] = []

    def add(label: str | None) -> None:
        for codec in python_codecs(label):
            if codec not in candidates and codec != "utf-8":
                candidates.append(codec)

    meta = meta_charset(payload)
    # A single-byte HTTP label (a server default) decodes any bytes into mojibake; the page's own
    # multi-byte meta label goes first and wins when it decodes the page cleanly.
    http_codecs = python_codecs(http_charset)
    if http_codecs and _SINGLE_BYTE.match(http_codecs[0]):
        add(meta)
    add(http_charset)
    add(meta)
    for codec in candidates:
        text = _strict(payload, codec)
        if text is not None:
            return text, codec
    from resiliparse.parse.encoding import detect_encoding

    before = len(candidates)
    add(detect_encoding(payload))
    for codec in candidates[before:]:
        text = _strict(payload, codec)
        if text is not None:
            return text, codec
    # A few bad bytes in an otherwise fine page: keep it, with U+FFFD where the bytes were.
    for codec in [*candidates, "utf-8"]:
        text = payload.decode(codec, "replace")
        if text.count("\ufffd") <= MAX_REPLACEMENT_SHARE * len(text):
            return text, codec
    raise SkipRecord("undecodable")


def looks_like_markup(text: str) -> bool:
    """False for binary junk served as HTML: no tag at all, or many control characters."""
    head = text[:4096]
    if "<" not in text[:65536]:
        return False
    return len(_CONTROL.findall(head)) <= 0.05 * len(head)


# --------------------------------------------------------------------------- images


def normalise_alt(alt: str | None) -> str:
    return _SPACES.sub(" ", alt).strip() if alt else ""


def parse_srcset(value: str) -> list[tuple[str, str]]:
    """(url, descriptor) candidates of a srcset, following the HTML parsing rules: a URL runs to
    whitespace (so data: URIs with commas survive), descriptors run to the next comma."""
    out = []
    pos, n = 0, len(value)
    while True:
        while pos < n and value[pos] in " \t\n\r\f,":
            pos += 1
        if pos >= n:
            return out
        start = pos
        while pos < n and value[pos] not in " \t\n\r\f":
            pos += 1
        url, descriptor = value[start:pos], ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            begin, depth = pos, 0
            while pos < n:
                char = value[pos]
                if char == "(":
                    depth += 1
                elif char == ")":
                    depth = max(0, depth - 1)
                elif char == "," and depth == 0:
                    break
                pos += 1
            descriptor = value[begin:pos].strip()
        if url:
            out.append((url, descriptor))


def best_srcset_url(value: str) -> str | None:
    """The widest (largest `w`, else largest `x`) candidate that is not a data: URI."""
    best, best_key = None, None
    for url, descriptor in parse_srcset(value):
        if url[:5].lower() == "data:":
            continue
        kind, size = 0, 1.0  # no descriptor means 1x
        match = re.fullmatch(r"([0-9.]+)\s*([wx])", descriptor.lower())
        if match:
            with contextlib.suppress(ValueError):  # "1.2.3w"
                kind, size = (1 if match.group(2) == "w" else 0), float(match.group(1))
        if best_key is None or (kind, size) > best_key:
            best, best_key = url, (kind, size)
    return best


def is_placeholder(src: str | None) -> bool:
    """Missing, a data: URI, or a gif/png/svg/webp named like a placeholder (blank.gif, ...)."""
    if src is None:
        return True
    lower = src.strip().lower()
    if not lower or lower.startswith("data:") or "placeholder" in lower:
        return True
    name = lower.split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1]
    return name.endswith(_PLACEHOLDER_TYPES) and any(w in name for w in _PLACEHOLDER_WORDS)


def image_reference(src: str | None, attribute: Callable[[str], str | None]) -> str | None:
    """The image URL a browser ends up showing: a lazy-loading attribute when the tag has one
    (its script swaps it into `src`, whatever `src` holds until then: a spinner, a site-wide
    grey.jpg, a thumbnail), else `src` unless it is missing or a placeholder, else srcset."""
    for name in LAZY_SRC_ATTRS[:-1]:
        value = attribute(name)
        if value and not is_placeholder(value) and value.strip() != (src or "").strip():
            return value
    if not is_placeholder(src):
        return src
    value = attribute(LAZY_SRC_ATTRS[-1])  # data-url also names links: only instead of nothing
    if value and not is_placeholder(value):
        return value
    for name in LAZY_SRCSET_ATTRS:
        value = attribute(name)
        if value:
            best = best_srcset_url(value)
            if best:
                return best
    return src


def absolute_url(reference: str | None, base: str) -> tuple[str | None, str | None]:
    """(absolute http(s) URL without fragment, None) or (None, drop reason).

    Resolved and normalised as browsers do, by the WHATWG URL standard (ada-url): scheme and host
    lower-cased, IDN hosts in punycode, spaces and non-ASCII path characters percent-encoded,
    default ports dropped, backslashes read as slashes, and `//` inside a path kept (urljoin
    collapses it, CPython gh-84774), so one image written two ways gets one URL and one id.
    """
    if reference is None:
        return None, "no_src"
    reference = reference.strip(" \t\n\r\f")
    if "\t" in reference or "\n" in reference or "\r" in reference:
        reference = reference.translate(_URL_NOISE)
    if not reference:
        return None, "no_src"
    if reference[:5].lower() == "data:":
        return None, "data_uri"
    try:
        url = ada_url.join_url(base, reference)
    except ValueError:
        return None, "invalid_url"
    if not url.startswith(("http://", "https://")) or not host_of(url):
        return None, "invalid_url"
    if "#" in url:
        url = url.split("#", 1)[0]
    return url, None


def host_of(url: str) -> str | None:
    """The lower-cased host of an absolute URL (no user info, port or IPv6 brackets); None when
    it has none or an unbalanced bracket."""
    match = _HOST.match(url)
    if not match:
        return None
    host = match.group(1)
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1].lower() or None
    if not host or "[" in host or "]" in host:
        return None
    return host.lower()


def page_images(text: str, page_url: str) -> list[tuple[str | None, str, str | None]]:
    """(image URL, alt text, drop reason) for every <img> of a page, in document order."""
    return page_images_and_title(text, page_url)[0]


def page_images_and_title(
    text: str, page_url: str
) -> tuple[list[tuple[str | None, str, str | None]], str | None]:
    """page_images and the page's <title> (the text-constraints step recognises an alt that is
    the site's name by it)."""
    from resiliparse.parse.html import HTMLTree

    if not _HAS_IMG.search(text):
        return [], None
    tree = HTMLTree.parse(text)
    document = tree.document
    if document is None:
        raise SkipRecord("broken_html")
    base = page_url
    for element in document.get_elements_by_tag_name("base").values():
        href = element.getattr("href")
        if href is not None:  # the first <base> with an href counts, as in browsers
            url, _ = absolute_url(href, page_url)
            base = url or page_url
            break
    out = []
    # values() materialises the list once; iterating the collection itself re-walks it per item
    # (quadratic in the number of images, 20x slower on a typical page).
    for img in document.get_elements_by_tag_name("img").values():
        alt = normalise_alt(img.getattr("alt"))
        if not alt:
            out.append((None, "", "empty_alt"))
            continue
        url, reason = absolute_url(image_reference(img.getattr("src"), img.getattr), base)
        out.append((url, alt, reason))
    return out, normalise_alt(tree.title) or None


@functools.cache
def _domain_extractor():
    import tldextract

    # The Public Suffix List snapshot bundled with the package: no download, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.lru_cache(maxsize=1 << 16)
def registered_domain(host: str) -> str:
    """img.alicdn.com -> alicdn.com, udn.com.tw -> udn.com.tw; IPs and bare hosts as they are."""
    return _domain_extractor()(host).top_domain_under_public_suffix or host


def domain_of(url: str) -> str:
    return registered_domain(host_of(url) or "")


# --------------------------------------------------------------------------- payloads


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

        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.opener = guarded_opener(
            AddressPolicy.from_networks(allowed_networks),
            ResponseLimits(deadline=math.inf, max_bytes=WARC_MAX_BYTES),
        )
        self.response = self.opener.open(self._request(), timeout=timeout)
        length = self.response.headers.get("Content-Length")
        self.expected = int(length) if length and length.isdigit() else None
        self.position = 0
        self.resumes = 0
        self.error: BaseException | None = None

    def _request(self, start: int = 0) -> urllib.request.Request:
        headers = {"User-Agent": "danqing-workflow/0.1"}
        if start:
            headers["Range"] = f"bytes={start}-"
        return urllib.request.Request(self.url, headers=headers)

    def _resume(self, cause) -> None:
        import time

        if self.resumes >= self.retries:
            self.error = OSError(
                f"{self.url}: transfer cut after {self.position} of {self.expected} bytes, "
                f"{self.resumes} resumes: {cause}"
            )
            raise self.error
        self.resumes += 1
        time.sleep(self.backoff * 2 ** (self.resumes - 1))
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


# --------------------------------------------------------------------------- one WARC file


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


# --------------------------------------------------------------------------- all WARC files


def concat_pairs(pair_paths: list[str], out_path: str) -> int:
    """Concatenate per-WARC pair files in list order into one Parquet, one file at a time."""
    from danqing.io import atomic_path

    schema = pl.DataFrame(schema=PAIR_SCHEMA).to_arrow().schema
    rows = 0
    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for path in pair_paths:
            table = pq.read_table(path)
            rows += table.num_rows
            if table.num_rows:
                writer.write_table(table.select(schema.names).cast(schema))
        if rows == 0:
            writer.write_table(pa.Table.from_pylist([], schema=schema))
    return rows


def add_counts(total: dict, record: dict) -> None:
    """Add a counts record's integers and reason tables into `total` (other values skipped)."""
    for key, value in record.items():
        if isinstance(value, bool) or not isinstance(value, int | dict) or key == "archive_errors":
            continue
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
        else:
            table = total.setdefault(key, {})
            for reason, n in value.items():
                table[reason] = table.get(reason, 0) + n


def sum_counts(records: list[dict]) -> dict:
    """Total of per-WARC counts: numbers and reason tables summed, errors kept per file."""
    total: dict = {"warc_files": len(records), "archive_errors": [], "pairs_by_crawl": {}}
    for record in records:
        add_counts(total, record)
        total["archive_errors"] += [
            {"warc": record["warc"], "error": e} for e in record.get("archive_errors", [])
        ]
        crawl = record.get("crawl") or ""
        total["pairs_by_crawl"][crawl] = total["pairs_by_crawl"].get(crawl, 0) + record["pairs"]
    return total
