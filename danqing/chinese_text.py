"""Chinese text primitives shared by the text filters: jieba segmentation, POS, vocabularies."""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

import jieba
import jieba.posseg
import polars as pl

jieba.setLogLevel(logging.WARNING)

_NOT_ALNUM = re.compile(r"[\W_]+")
_TIME_QUANTITY = re.compile(
    r"^[0-9０-９〇零一二三四五六七八九十百千万两几]+(?:年代|年|月|日|号|天|周|世纪|小时|分钟|秒)$"
)
# Events named by month and day with a middle dot (9·11, 5·12汶川地震, 3·15晚会): time words. A
# full stop is left out: 9.3 is far more often a decimal.
_DATE_EVENT = re.compile(
    r"(?<![0-9])(?:1[0-2]|0?[1-9])[·•・‧∙](?:3[01]|[12][0-9]|0?[1-9])(?![0-9])"
)
_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


_ALNUM_CHAR = re.compile(r"[^\W_]")


def has_han(text: str) -> bool:
    return _HAN_RE.search(text) is not None


def is_word(token: str) -> bool:
    """A jieba token counts as a word if it holds a letter, digit or Han character.

    Whitespace, punctuation and symbol tokens are not words; this is the unit of the paper's
    "5 to 60 Chinese words" and of the word-length figure. The regex class is "word characters
    but not the underscore", which is str.isalnum per character by re's definition of a word
    character; most tokens are all alphanumeric and take the first, faster test.
    """
    return token.isalnum() or _ALNUM_CHAR.search(token) is not None


def segment(text: str) -> list[str]:
    """jieba's default (accurate-mode, HMM on) segmentation, keeping only word tokens."""
    return [tok for tok in jieba.lcut(text) if is_word(tok)]


def spaced_words(frame: pl.DataFrame) -> list[str]:
    """The caption's jieba words joined by single spaces.

    text_constraints stores them in the `words` column so that the later steps do not segment
    every caption again (a space never occurs inside a word: jieba splits on whitespace). Without
    the column (a step run on its own), or where it is null (a caption cleaned after the last
    step that reads words), the captions are segmented here.
    """
    texts = frame["alt_text"].to_list()
    if "words" not in frame.columns:
        return [" ".join(segment(t)) for t in texts]
    return [
        " ".join(segment(t)) if w is None and t is not None else w
        for w, t in zip(frame["words"].to_list(), texts, strict=True)
    ]


def words_of(frame: pl.DataFrame) -> list[list[str]]:
    return [s.split(" ") if s else [] for s in spaced_words(frame)]


def per_caption_sums(spaced: list[str | None], weight: Callable[[str], int]) -> list[int]:
    """sum(weight(word) for word in caption) for each caption given as space-joined words, with
    `weight` computed once per distinct word of the shard (captions share most of their words)."""
    frame = pl.DataFrame({"words": spaced}, schema={"words": pl.String}).with_row_index("row")
    tokens = (
        frame.select("row", pl.col("words").str.split(" "))
        .explode("words")
        .filter(pl.col("words") != "")
    )
    distinct = tokens["words"].unique()
    weights = pl.DataFrame(
        {"words": distinct, "weight": [weight(w) for w in distinct.to_list()]},
        schema={"words": pl.String, "weight": pl.Int64},
    )
    sums = tokens.join(weights, on="words").group_by("row").agg(pl.col("weight").sum())
    return (
        frame.select("row")
        .join(sums, on="row", how="left")
        .sort("row")["weight"]
        .fill_null(0)
        .to_list()
    )


def pos_tag(text: str) -> list[tuple[str, str]]:
    """jieba POS tags (ICTCLAS tag set) of the word tokens of `text`."""
    return [(p.word, p.flag) for p in jieba.posseg.lcut(text) if is_word(p.word)]


@functools.lru_cache(maxsize=200_000)
def _unknown_word_tags(word: str) -> tuple[str, ...]:
    return tuple(p.flag for p in jieba.posseg.lcut(word))


@functools.cache
def _tagged_words(prefixes: tuple[str, ...]) -> frozenset[str]:
    return frozenset(
        w for w, tag in jieba.posseg.dt.word_tag_tab.items() if tag.startswith(prefixes)
    )


def tagged_weight(
    prefixes: tuple[str, ...], compound_heads: bool = False, idiom_morphemes: bool = False
) -> Callable[[str], int]:
    """word -> how many tags jieba.posseg gives it that start with one of `prefixes`.

    jieba.posseg tags a word found in its dictionary with the dictionary's tag and runs its POS
    HMM on the rest; doing the same per word (memoised, web text repeats its unknown words) gives
    the same noun decision as `jieba.posseg.lcut` on all 6,600 demo and COCO-CN captions at ~10x
    the speed, and reuses the segmentation the earlier steps did.

    A numeral with a unit of time (一年, 2015年, 三天, 十九世纪) counts as a time word `t`, as the
    PKU corpus tags it; jieba's HMM tags it `m`.

    `compound_heads`: a word of two or more characters also counts once when its last character
    (the head of a Chinese compound) is a Han character tagged with one of `prefixes`. jieba's
    dictionary gives each word one tag, often the verbal sense of a noun-verb word: 闪电, 挂钩 and
    喷管 are `v`, but their heads 电, 钩 and 管 are nominal.

    `idiom_morphemes`: an idiom (`i`, a chengyu) counts once when one of its characters is a noun
    morpheme (a Han character jieba tags `n*`): 一马当先, 花团锦簇 name their imagery (马, 团), a
    shopping slogan such as 强烈推荐 (also `i`) has none.
    """
    tagged = _tagged_words(prefixes)
    table = jieba.posseg.dt.word_tag_tab
    time_words = _counts_time_words(prefixes)

    def weight(word: str) -> int:
        if word in tagged:
            return 1
        if time_words and _TIME_QUANTITY.match(word):
            return 1
        if compound_heads and len(word) > 1 and word[-1] in tagged and has_han(word[-1]):
            return 1
        if idiom_morphemes and table.get(word) == "i" and _has_noun_morpheme(word):
            return 1
        if word in table:
            return 0
        return sum(tag.startswith(prefixes) for tag in _unknown_word_tags(word))

    return weight


def _counts_time_words(prefixes: tuple[str, ...]) -> bool:
    return any("t".startswith(p) for p in prefixes)


def _has_noun_morpheme(word: str) -> bool:
    table = jieba.posseg.dt.word_tag_tab
    return any(table.get(ch, "").startswith("n") and has_han(ch) for ch in word)


def split_noun_or_date(words: list[str], text: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a caption whose words carry no nominal tag still holds a noun that the
    segmentation hid, or a date-named event.

    jieba's DAG prefers frequent single characters over some dictionary nouns: 强袭高达 becomes
    强袭/v 高/a 达/v although 高达 is in its dictionary as `nr`. A run of single-character words
    whose concatenation (2 to 4 characters) is a dictionary word with a nominal tag counts. An event
    named by month and day with a middle dot (9·3, 9•11) is a time word when `t` is nominal.
    """
    tagged = _tagged_words(prefixes)
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and has_han(word):
            run.append(word)
            continue
        for start in range(len(run)):
            for size in range(2, 5):
                if start + size <= len(run) and "".join(run[start : start + size]) in tagged:
                    return True
        run = []
    time_words = _counts_time_words(prefixes)
    return time_words and _DATE_EVENT.search(text) is not None


def normalise_for_matching(text: str) -> str:
    """NFKC, lower case, and no whitespace or punctuation: how lexicons are matched.

    Spam writes "加 微 信" or "加-微-信" to evade plain substring search; matching on this form
    catches those while lexicon terms (normalised the same way) still match themselves.
    """
    # Most Chinese captions are NFKC-normalised but for their full-width punctuation, which NFKC
    # maps to ASCII punctuation that is removed anyway: removing it first and checking (~30x
    # cheaper than normalising) gives the same result without normalising.
    stripped = _NFKC_PUNCTUATION.sub("", text)
    if not unicodedata.is_normalized("NFKC", stripped):
        stripped = unicodedata.normalize("NFKC", text)
    return _NOT_ALNUM.sub("", stripped.lower())


def char_class(chars: Iterable[str]) -> str:
    """The body of a regex character class matching exactly `chars`, consecutive code points as
    ranges (a class of single characters outside the BMP is searched one by one)."""
    codes = sorted({ord(c) for c in chars})
    parts = []
    start = 0
    for i in range(1, len(codes) + 1):
        if i == len(codes) or codes[i] != codes[i - 1] + 1:
            low, high = chr(codes[start]), chr(codes[i - 1])
            parts.append(re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}")
            start = i
    return "".join(parts)


def _nfkc_punctuation() -> re.Pattern:
    """CJK and full-width characters whose NFKC form is punctuation, symbols or spaces only (no
    letter, digit or combining mark): they vanish from the matching form in any context."""
    chars = []
    for code in [*range(0x3000, 0x3040), *range(0xFE10, 0xFE70), *range(0xFF00, 0xFFEF)]:
        char = chr(code)
        form = unicodedata.normalize("NFKC", char)
        if (
            form != char
            and not unicodedata.combining(char)
            and not any(c.isalnum() or c == "_" or unicodedata.combining(c) for c in form)
        ):
            chars.append(char)
    return re.compile(f"[{char_class(chars)}]")


_NFKC_PUNCTUATION = _nfkc_punctuation()


def read_word_list(path: str | os.PathLike) -> list[str]:
    """One entry per line; blank lines and lines starting with '#' are ignored."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line)
    return entries


@functools.cache
def load_word_set(paths: tuple[str, ...]) -> frozenset[str]:
    """The union of word lists (read_word_list), lower-cased."""
    words: set[str] = set()
    for path in paths:
        words.update(w.lower() for w in read_word_list(path))
    return frozenset(words)


@functools.cache
def jieba_frequencies() -> tuple[dict[str, int], int]:
    """Word frequencies of jieba's own dictionary (a 60M-token Chinese corpus count)."""
    path = Path(jieba.__file__).parent / "dict.txt"
    return read_frequency_table(path)


def read_frequency_table(path: str | os.PathLike) -> tuple[dict[str, int], int]:
    """A `word count [tag]` table, the format of jieba's dict.txt."""
    freq: dict[str, int] = {}
    total = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 2:
                continue
            try:
                count = int(parts[1])
            except ValueError:
                continue
            freq[parts[0]] = freq.get(parts[0], 0) + count
            total += count
    if total <= 0:
        raise ValueError(f"{path}: no `word count` lines found")
    return freq, total


def character_frequencies(freq: dict[str, int], total: int) -> tuple[dict[str, int], int]:
    """Character counts implied by a word-count table: each word's count, once per character."""
    chars: dict[str, int] = {}
    for word, count in freq.items():
        for ch in word:
            chars[ch] = chars.get(ch, 0) + count
    return chars, sum(chars.values())


def entropy_terms(freq: dict[str, int], total: int) -> dict[str, float]:
    """token -> P(token) log2 P(token) for every token of a reference table, computed once per
    table instead of once per occurrence."""
    terms = {}
    for token, count in freq.items():
        if count > 0:
            p = count / total
            terms[token] = p * math.log2(p)
    return terms


def reference_entropy(tokens: Iterable[str], terms: dict[str, float]) -> float:
    """H = -sum_i P(c_i) log2 P(c_i) over the caption's tokens, P from a reference corpus (its
    `entropy_terms`); tokens absent from it add 0.

    See `danqing.filters.text.text_entropy` for why P is a corpus probability.
    """
    h = 0.0
    get = terms.get
    for tok in tokens:
        h -= get(tok, 0.0)
    return h
