"""The `<img>` elements of a page as (image URL, alt text) pairs: lazy-loading attributes,
srcset, `<base href>` and WHATWG URL resolution."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import ada_url

from danqing.ingest.reasons import SkipRecord
from danqing.urls import host_of

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
_HAS_IMG = re.compile(r"<img\b", re.IGNORECASE)
_URL_NOISE = str.maketrans("", "", "\t\n\r")


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
