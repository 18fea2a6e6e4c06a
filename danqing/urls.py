"""The host and the registered domain of a URL: the one meaning of a pair's `domain`."""

from __future__ import annotations

import functools
import ipaddress
import re

import polars as pl

# The authority's host of an absolute URL: after the scheme and any user info, up to the port,
# path, query or fragment (a backslash ends it too, as browsers read it); IPv6 in brackets.
HOST_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#\\]*@)?(\[[^\]/?#]*\]|[^:/?#\\]*)"
_HOST = re.compile(HOST_PATTERN)


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


@functools.cache
def _domain_extractor():
    import tldextract

    # The Public Suffix List snapshot bundled with the package: no download, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.lru_cache(maxsize=1 << 16)
def registered_domain(host: str) -> str:
    """img.alicdn.com -> alicdn.com, udn.com.tw -> udn.com.tw, cdn.spam.example -> spam.example
    (a top-level label the Public Suffix List lacks is a public suffix by its default rule `*`);
    IP addresses and bare hosts as they are."""
    found = _domain_extractor()(host).top_domain_under_public_suffix
    if found:
        return found
    labels = host.split(".")
    if len(labels) < 3 or _is_ip(host):
        return host
    return ".".join(labels[-2:])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def domain_of(url: str) -> str:
    return registered_domain(host_of(url) or "")


def hosts(urls: pl.Series) -> pl.Series:
    """host_of for a column of URLs ("" where a URL has no host)."""
    return (
        urls.cast(pl.String)
        .str.extract(HOST_PATTERN)
        .str.strip_chars("[]")
        .fill_null("")
        .str.to_lowercase()
    )
