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
