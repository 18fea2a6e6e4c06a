"""Web noise in captions: what the cleaning step removes, kind by kind, and what it keeps.

Real captions carry the marks of the page or app they come from. In 700 labelled real Weibo posts
(evaluation/labels/weibo_posts.csv): link stubs (`O网页链接`) in 194, `#topic#` markers in 154,
`@user` mentions in 92, phone numbers in 64, HTML entities (`&nbsp;`) in 55, emoticon codes
(`[哈哈]`) in 18, repost chains and URLs. None of it describes an image; all of it goes, counted
per kind, while the caption around it stays. Meaningful symbols stay too: `25℃`, `120㎡`, `★`,
`¥99`, `100×200mm`, `《》`, `【】`; emoji (Unicode Extended_Pictographic), their modifiers and
joiners, private-use, unassigned, control and format characters go (the paper's "emojis and
special characters").
"""

from __future__ import annotations

import functools
import html
import re
from collections import Counter

import regex

from danqing.chinese_text import char_class, read_word_list

# In the order of removal: entities are decoded before anything else reads the text; URLs go
# before mentions and link stubs, which could otherwise match inside them.
KINDS = (
    "entity",
    "url",
    "repost",
    "mention",
    "hashtag",
    "link_stub",
    "phone",
    "emoticon",
    "file_extension",
    "emoji",
)

_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")
_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});?")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s\u3000-\u303f\uff01-\uff5e\u4e00-\u9fff]+"
    r"|(?<![\w.@-])(?:[a-z0-9-]+\.)+(?:com|cn|net|org|cc|tv|me|io)(?:/[\x21-\x7e]*)?(?![\w.])",
    re.IGNORECASE | re.ASCII,
)
# `//@name:` repost markers and the share phrase Weibo fills in when a repost has no comment.
_REPOST = re.compile(r"//\s*@[^\s:：/]{1,30}\s*[:：]|转发微博|轉發微博|Repost", re.IGNORECASE)
# `@name` (optionally after `via`): a Weibo/QQ handle ends at whitespace or punctuation.
_MENTION = regex.compile(r"(?:\bvia\s*)?@[\p{L}\p{N}_\-·]{1,30}", regex.IGNORECASE)
_HASH = re.compile(r"#([^#\n]{1,40})#|#")
# Placeholders that Weibo and news sites print in place of a link or an embedded video.
# Weibo also prints a link as O, L or U followed by the linked page's title (`O韩国学者称…`),
# which runs to the next space; O型, U盘, L形 and the like are words, not stubs.
_LINK_STUB = re.compile(
    r"[OLU]?(?:网页链接|網頁鏈接|秒拍视频|秒拍視頻|新浪视频|微博视频|美拍视频|腾讯视频|优酷视频)"
    r"|(?<![A-Za-z0-9])[OLU](?![型形盘字])(?=[\u4e00-\u9fff“《【\"「（(㊙\[])\S*"
)
# Mainland mobiles, landlines with area code, 400/800 service numbers, +86 forms.
_PHONE = re.compile(
    r"(?<![\d-])(?:\+?86[- ]?)?(?:1[3-9]\d[- ]?\d{4}[- ]?\d{4}"
    r"|0\d{2,3}[- ]?\d{7,8}|[48]00[- ]?\d{3}[- ]?\d{4})(?![\d-])"
)
_EMOJI = regex.compile(
    r"[\p{Extended_Pictographic}\p{Co}\p{Cs}\p{Cn}\p{Cc}\p{Cf}\p{Me}"
    r"\uFE00-\uFE0F\U0001F1E6-\U0001F1FF\U0001F3FB-\U0001F3FF\U000E0000-\U000E007F"
    r"--[\t\n\r©®™]]",
    regex.V1,
)
# Brackets left empty where noise was removed (`（来自@手机百度）` -> `（来自）` keeps its words).
# An image file name kept as a caption for its descriptive stem: the extension (and a copy mark)
# goes.
_FILE_EXTENSION = re.compile(r"(?:_副本|_copy)?\.(?:jpe?g|png|gif|webp|bmp)$", re.IGNORECASE)
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|（\s*）|\[\s*\]|【\s*】|「\s*」|『\s*』|《\s*》")
_REPEATED_PUNCT = re.compile(r"([^\w\s])\1{2,}")
_SPACES = re.compile(r"\s+")
# The characters some pass needs (entities and tags, mentions, topics, emoticon codes and their
# halves, URLs and reposts, file extensions); a colon is not one: every pattern that reads one
# also needs `/` or `@`.
_TRIGGERS = "&<@#[]/."


def _plain_characters() -> str:
    """The BMP and rare-Han (planes 2 and 3) characters that no pass removes or starts from: a
    caption of only these (with single inner spaces, nothing like a phone number and no stub
    word) is left as it is."""
    chars = []
    for code in [*range(0x10000), *range(0x20000, 0x32000)]:
        char = chr(code)
        if 0xD800 <= code < 0xE000 or char in _TRIGGERS or (char.isspace() and char != " "):
            continue
        if not _EMOJI.match(char):
            chars.append(char)
    return char_class(chars)


# What a caption must contain for clean() to change it: a character outside _plain_characters,
# odd spacing, a run of three equal punctuation marks, the digits of a phone number, or the start of
# a link stub. Most captions have none, and this one C-level scan is cheaper than the passes.
_MAYBE_NOISY = re.compile(
    f"[^{_plain_characters()}]"
    r"|\d{3}[- ]?\d{3}|网页链接|網頁鏈接|视频|視頻|转发微博|轉發微博|(?i:repost)"
    r"|[OLU][\u4e00-\u9fff“《【\"「（(㊙\[]|\s\s|^\s|\s$|([^\w\s])\1\1"
)


@functools.cache
def _emoticons(path: str) -> re.Pattern:
    """`[name]`, and the halves a cut leaves (`！闪电]`, `[哈哈 `)."""
    names = "|".join(
        map(re.escape, sorted({w.lower() for w in read_word_list(path)}, key=len, reverse=True))
    )
    return re.compile(
        rf"\[(?:lb|ali|bm|din|xkl|moc|c)?(?:{names})\]"
        rf"|(?<![\[\w])(?:{names})\]|\[(?:{names})(?![\]\w])",
        re.IGNORECASE,
    )


def _hashtag(match: re.Match) -> str:
    """`#topic#` keeps its topic words; a lone `#` goes."""
    return f" {match.group(1)} " if match.group(1) else " "


def clean(text: str, emoticons: str, fast: bool = True) -> tuple[str, tuple[str, ...]]:
    """(the caption without web noise, the kinds of noise removed, in KINDS order).

    `fast`: return a caption without any of _MAYBE_NOISY's triggers as it is (the same result,
    tested on every BMP character and on the real sets)."""
    if fast and not _MAYBE_NOISY.search(text):
        return text, ()
    found = []
    if "&" in text or "<" in text:
        decoded = (
            _TAG.sub(" ", html.unescape(text))
            if (_ENTITY.search(text) or _TAG.search(text))
            else text
        )
        if decoded != text:
            found.append("entity")
            text = decoded
    passes = (
        ("url", _URL, " "),
        ("repost", _REPOST, " "),
        ("mention", _MENTION, " "),
        ("hashtag", _HASH, _hashtag),
        ("link_stub", _LINK_STUB, " "),
        ("phone", _PHONE, " "),
        ("emoticon", _emoticons(emoticons), " "),
        ("file_extension", _FILE_EXTENSION, ""),
        ("emoji", _EMOJI, ""),
    )
    for kind, pattern, replacement in passes:
        text, n = pattern.subn(replacement, text)
        if n:
            found.append(kind)
    if found:
        text = _EMPTY_BRACKETS.sub(" ", text)
    return _SPACES.sub(" ", _REPEATED_PUNCT.sub(r"\1", text)).strip(), tuple(found)


def clean_all(texts: list[str], emoticons: str) -> tuple[list[str], Counter]:
    """Cleaned captions and, per kind, how many captions had that kind removed."""
    kinds: Counter = Counter()
    out = []
    for text in texts:
        cleaned, found = clean(text, emoticons)
        kinds.update(found)
        out.append(cleaned)
    return out, kinds
