"""Why a WARC record or an <img> gave no pair: the counted reasons of ingestion."""

from __future__ import annotations

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


class SkipRecord(Exception):
    """A response record that gives no pairs; the message is the counted reason."""
