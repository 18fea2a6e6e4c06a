"""Alt texts and image URLs that are page furniture, not captions: file names and ids, interface
text, logos and icons.

About 70% of the `<img>` tags of real Chinese news and forum pages (shared/data/real
news_page_alts.parquet) carry no caption; beside the empty alts (dropped at the partition) they are
file names (`3.jpg`, `003ednc20190925`, `attach_img`), interface text (`返回顶部`, `点击查看高清原图`,
`发新帖`), and logos, avatars, emoticon images, badges and stamps whose URL says what they are
(`.../logo_top.png`, `/ucenter/avatar/`, `/emoji/`, `/static/image/stamp/`). Judging them costs a
regex or a word lookup, so they go before the download (source reliability, text constraints)
with a reason of their own.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

# An image file name, optionally with a query (`IMG_0012.JPG`, `微信图片_20190101.jpg?x=1`).
_IMAGE_FILE = re.compile(
    r"\.(?:jpe?g|png|gif|webp|bmp|svg|ico|tiff?|heic|avif)(?:[?#]\S*)?$", re.IGNORECASE
)
# A URL, a domain or a path with at least one slash and no spaces.
_URL_OR_PATH = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://\S+|www\.\S+"
    r"|[\w.-]+\.(?:com|cn|net|org)(?:/[\x21-\x7e]*)?|[\x21-\x7e]*\w/[\w./-]+)$",
    re.IGNORECASE | re.ASCII,
)
# One ASCII token that is an identifier rather than a word: it holds a digit or an underscore
# (`003ednc20190925`, `DSC01234`, `attach_img`, `a1b2c3d4`), or is a date/number stamp.
_IDENTIFIER = re.compile(r"^(?=[\w.-]*[\d_])[\w.-]+$", re.ASCII)


# What cameras, phones and chat apps name a picture: a file name made of these and digits says
# nothing about the image.
_GENERIC_NAME = re.compile(
    r"微信图片|微信截图|屏幕截图|屏幕快照|截图|未命名|未标题|图片|照片|图像|副本|"
    r"img|image|dsc|dcim|pic|photo|screenshot|wx|mmexport",
    re.IGNORECASE,
)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_file_name(text: str) -> bool:
    """The whole alt is a file name, URL, path, hash, id or number, not words.

    An image file name whose stem describes the picture in five or more Han characters
    (`中塞艺术交流中心签约仪式.jpg`, as editors name their uploads) is a caption: cleaning removes
    the extension (danqing.webnoise)."""
    text = text.strip()
    if not text:
        return False
    if _IMAGE_FILE.search(text) and not re.search(r"\s", text):
        stem = _GENERIC_NAME.sub("", _IMAGE_FILE.sub("", text))
        return len(_HAN.findall(stem)) < 5
    return bool(_URL_OR_PATH.match(text) or _IDENTIFIER.match(text))


def is_interface_text(words: list[str], interface: frozenset[str], stop: frozenset[str]) -> bool:
    """Every word is interface vocabulary or a stop word, and at least one is interface
    vocabulary (`点击 查看 高清 原图`, `返回 顶部`, `客户端 下载`)."""
    lowered = [w.lower() for w in words]
    return (
        bool(lowered)
        and any(w in interface for w in lowered)
        and all(w in interface or w in stop for w in lowered)
    )


# Separators between the parts of a page title: `标题_频道_凤凰网`, `标题|游民星空`, `标题 - 网站`.
_TITLE_PARTS = re.compile(r"\s*[_|｜丨]\s*|\s+[-–—]\s+|\s*--\s*")


def site_names(title: str | None) -> list[str]:
    """The parts of a page title after the first (the page's own headline): the site's and the
    channel's names."""
    if not title:
        return []
    return [part for part in _TITLE_PARTS.split(title)[1:] if len(part) >= 2]


def is_site_name(
    text: str, words: list[str], title: str | None, interface: frozenset[str], stop: frozenset[str]
) -> bool:
    """The alt is the site's name, alone (`游民星空` on a page titled `…|游民星空`) or with only
    interface words around it (`新浪新闻客户端`, `新浪新闻公众号` on `…_新浪新闻`): what a logo,
    an app badge or a QR code says, not a caption."""
    text = text.strip()
    for name in site_names(title):
        if text == name:
            return True
        if name in text and is_interface_text([w for w in words if w not in name], interface, stop):
            return True
    return False


@dataclass(frozen=True)
class UrlPatterns:
    """`category<TAB>regex` lines matched (search) against the lower-cased path of an image URL."""

    patterns: tuple[tuple[str, re.Pattern], ...]

    def match(self, url: str | None) -> str | None:
        """The category of the first pattern that the URL's path (and query) matches."""
        if not url:
            return None
        path = _path_of(url)
        for category, pattern in self.patterns:
            if pattern.search(path):
                return category
        return None

    def match_all(self, urls: pl.Series) -> list[str | None]:
        """`match` of every URL, each pattern searched over the whole column at once (Polars'
        regex engine) where its syntax allows, else URL by URL; the same categories."""
        paths = urls.cast(pl.String).str.replace(_SCHEME_HOST.pattern, "").str.to_lowercase()
        out: list[str | None] = [None] * len(urls)
        for category, pattern in self.patterns:
            try:
                hits = paths.str.contains(pattern.pattern).fill_null(False)
            except pl.exceptions.ComputeError:  # a lookaround or backreference
                hits = pl.Series([p is not None and bool(pattern.search(p)) for p in paths])
            for i in hits.arg_true().to_list():
                if out[i] is None:
                    out[i] = category
        return out


_SCHEME_HOST = re.compile(r"(?i)^[a-z][a-z0-9+.-]*://[^/?#]*")


def _path_of(url: str) -> str:
    """Everything after the host, lower-cased (patterns never see the host name)."""
    return _SCHEME_HOST.sub("", url).lower()


@functools.cache
def load_url_patterns(path: str) -> UrlPatterns:
    patterns = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"{path}:{lineno}: expected `category<TAB>regex`, got {line!r}")
        try:
            patterns.append((parts[0].strip(), re.compile(parts[1].strip())))
        except re.error as err:
            raise ValueError(f"{path}:{lineno}: bad regex {parts[1]!r}: {err}") from err
    return UrlPatterns(tuple(patterns))
