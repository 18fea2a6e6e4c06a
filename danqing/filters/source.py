"""Data source selection (paper Sec. 3.2): language tag, content safety, source reliability,
text length."""

from __future__ import annotations

import functools
import re

import polars as pl

from danqing import safety
from danqing.filters import StepResult, verdicts
from danqing.text import read_word_list, segment

_TAG_SPLIT = re.compile(r"[\s,;|]+")


def parse_language_tags(value: str | None) -> set[str]:
    """Common Crawl's WARC-Identified-Content-Language is a comma-separated list (`zho,eng`)."""
    if not value:
        return set()
    return {tag.lower() for tag in _TAG_SPLIT.split(value) if tag}


def language_control(df: pl.DataFrame, cfg: dict) -> StepResult:
    required = cfg["required_tag"].lower()
    tags = df["languages"].to_list()
    reasons = [None if required in parse_language_tags(t) else "language_tag" for t in tags]
    return verdicts(df, "language_control", reasons, [t or "" for t in tags])


def safety_verdicts(df: pl.DataFrame, cfg: dict, step: str) -> StepResult:
    """Shared by the source-selection and text-refinement safety steps (different lexicons)."""
    lexicon_path = cfg.get("lexicon")
    model_path = cfg.get("fasttext_model")
    if not lexicon_path and not model_path:
        raise ValueError(f"{step}: configure a lexicon, a fasttext_model, or both")
    texts = df["alt_text"].to_list()
    reasons: list[str | None] = [None] * len(texts)
    values: list[object] = [None] * len(texts)
    if lexicon_path:
        lexicon = safety.load_lexicon(str(lexicon_path))
        for i, text in enumerate(texts):
            hit = lexicon.match(text)
            if hit:
                reasons[i] = f"unsafe_lexicon:{hit[0]}"
                values[i] = hit[1]
    scores: list[float | None] = [None] * len(texts)
    if model_path and texts:
        scores = safety.classifier_scores(texts, str(model_path), cfg["unsafe_label"])
        threshold = cfg["threshold"]
        for i, score in enumerate(scores):
            if reasons[i] is None and score >= threshold:
                reasons[i] = "unsafe_classifier"
                values[i] = score
    return verdicts(df, step, reasons, values, columns={f"{step}_score": scores})


def text_safety(df: pl.DataFrame, cfg: dict) -> StepResult:
    return safety_verdicts(df, cfg, "text_safety")


@functools.cache
def load_blacklist(path: str) -> frozenset[str]:
    return frozenset(d.lower().lstrip("*.").rstrip(".") for d in read_word_list(path))


def blacklisted(host: str, blacklist: frozenset[str]) -> bool:
    """True if `host` or any parent domain of it (on label boundaries) is listed."""
    labels = host.lower().split(".")
    return any(".".join(labels[i:]) in blacklist for i in range(len(labels)))


def source_reliability(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Drop pairs whose image domain, image host or page host is on the blacklist."""
    blacklist = load_blacklist(str(cfg["blacklist"]))
    # Hosts repeat across a shard: judge each distinct host once.
    host_re = r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)"
    columns = {
        "domain": df["domain"].cast(pl.String).fill_null("").str.to_lowercase(),
        "image": df["url"].cast(pl.String).str.extract(host_re).fill_null("").str.to_lowercase(),
        "page": df["page_url"].cast(pl.String).str.extract(host_re).fill_null("")
        .str.to_lowercase(),
    }
    hits: list[str | None] = [None] * df.height
    for where, hosts in columns.items():
        listed = {h for h in hosts.unique().to_list() if h and blacklisted(h, blacklist)}
        if not listed:
            continue
        for i, host in enumerate(hosts.to_list()):
            if hits[i] is None and host in listed:
                hits[i] = f"{where}:{host}"
    reasons = ["blacklisted_domain" if hit else None for hit in hits]
    return verdicts(df, "source_reliability", reasons, hits)


def text_constraints(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Keep captions of min..max jieba words; the words are kept (column `words`) for the text
    refinement steps, which would otherwise segment every caption again."""
    low, high = cfg["min_words"], cfg["max_words"]
    words = [segment(text) for text in df["alt_text"].to_list()]
    counts = [len(w) for w in words]
    reasons = [
        "too_few_words" if n < low else "too_many_words" if n > high else None for n in counts
    ]
    return verdicts(df, "text_constraints", reasons, counts,
                    columns={"word_count": counts, "words": [" ".join(w) for w in words]})
