"""Text content safety: a lexicon matcher and/or a fastText supervised classifier.

Both are pluggable through config. The lexicon is a TSV of `category<TAB>term` lines; the model is
any fastText supervised model whose unsafe class is `unsafe_label` (train one with
`fasttext.train_supervised` on `__label__unsafe` / `__label__safe` lines).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from danqing.text import normalise_for_matching


@dataclass(frozen=True)
class Lexicon:
    pattern: re.Pattern | None
    category_of: dict[str, str]

    def match(self, text: str) -> tuple[str, str] | None:
        """(category, term) of the first lexicon term found in `text`, or None."""
        if self.pattern is None:
            return None
        found = self.pattern.search(normalise_for_matching(text))
        if found is None:
            return None
        return self.category_of[found.group(0)], found.group(0)


@functools.cache
def load_lexicon(path: str) -> Lexicon:
    category_of: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise ValueError(f"{path}:{lineno}: expected `category<TAB>term`, got {line!r}")
        term = normalise_for_matching(parts[1])
        if term:
            category_of.setdefault(term, parts[0].strip())
    if not category_of:
        return Lexicon(None, {})
    # Longest first so that the reported term is the most specific one.
    terms = sorted(category_of, key=len, reverse=True)
    return Lexicon(re.compile("|".join(map(re.escape, terms))), category_of)


@functools.cache
def load_fasttext(path: str):
    import fasttext

    if not Path(path).is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    return fasttext.load_model(path)


def classifier_scores(texts: list[str], model_path: str, label: str) -> list[float]:
    """Probability of `label` for each text under a fastText supervised model."""
    model = load_fasttext(model_path)
    if label not in model.get_labels():
        raise ValueError(f"{model_path}: label {label!r} not among {model.get_labels()}")
    clean = [t.replace("\n", " ") for t in texts]
    labels, probs = model.predict(clean, k=-1)
    scores = []
    for row_labels, row_probs in zip(labels, probs, strict=True):
        score = 0.0
        for lab, prob in zip(row_labels, row_probs, strict=True):
            if lab == label:
                score = float(prob)
                break
        scores.append(score)
    return scores
