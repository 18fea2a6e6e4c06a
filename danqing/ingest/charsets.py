"""HTML payload bytes to text as browsers decode them: BOM, valid UTF-8, the HTTP and `<meta>`
labels read by the HTML5 label table, then detection."""

from __future__ import annotations

import codecs
import re

from danqing.ingest.reasons import SkipRecord

_META_CHARSET = re.compile(
    rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
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
