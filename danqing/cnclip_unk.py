"""[UNK] tokens of a caption under Chinese-CLIP's BERT WordPiece tokenizer (the vocabulary cn_clip
ships), counted exactly and fast: the tokenizer runs only on the pieces that can give [UNK]."""

from __future__ import annotations

import functools
import re
import unicodedata

from danqing import cnclip
from danqing.chinese_text import char_class


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
        elif (
            bert._is_punctuation(char)
            and char not in _CASE_IGNORABLE_PUNCTUATION
            and unicodedata.normalize("NFD", char.lower()) == char
        ):
            punctuation.append(char)
    cjk = "".join(
        f"{chr(a)}-{chr(b)}"
        for a, b in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )
    assert all(basic._is_chinese_char(ord(c)) for c in cjk.replace("-", ""))
    breaks = char_class(whitespace + punctuation) + cjk
    safe = char_class(_unk_free_chars(vocab) | set(whitespace))
    return re.compile(f"[^{breaks}]+"), re.compile(f"(?=[^{safe}])[{breaks}]")


@functools.cache
def _unknown_punctuation(vocab: str | None) -> dict[int, str]:
    """A `str.translate` table: each punctuation or symbol character (Unicode P* and S*) that
    the vocabulary lacks becomes a space. (A regex class of these ~8,300 characters took 60 us
    per caption, 27 times the table's time: most of the step.)"""
    safe = _unk_free_chars(vocab)
    return {
        code: " "
        for code in range(0x110000)
        if unicodedata.category(chr(code))[0] in "PS" and chr(code) not in safe
    }


def count_unk(
    texts: list[str], vocab: str | None = None, count_punctuation: bool = True
) -> list[int]:
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

    punctuation = None if count_punctuation else _unknown_punctuation(vocab)
    counts = []
    for text in texts:
        if punctuation is not None and unsafe.search(text):
            # BERT's basic tokenizer isolates punctuation; a space in its place tokenizes the
            # rest the same. Non-ASCII symbols (emoji) sit inside words, whose letters now count.
            text = text.translate(punctuation)
        if not _needs_full_tokenizer(text, safe, unsafe):
            counts.append(0)
            continue
        n = sum(unk(run) for run in runs.findall(text) if len(run) > 200 or unsafe.search(run))
        counts.append(n + sum(unk(char) for char in unsafe_breaks.findall(text)))
    return counts
