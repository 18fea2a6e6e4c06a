"""Text content safety: a lexicon matcher and/or a fastText supervised classifier.

Both are pluggable through config. The lexicon is a TSV of `category<TAB>term` lines; the model is
any fastText supervised model whose unsafe class is `unsafe_label`, trained on jieba-segmented,
space-joined text (`__label__unsafe 在线 赌场 ...` lines for `fasttext.train_supervised`): captions
are segmented the same way before prediction.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from danqing.chinese_text import normalise_for_matching, segment


@dataclass(frozen=True)
class Lexicon:
    pattern: re.Pattern | None
    category_of: dict[str, str]
    patterns: tuple[tuple[str, re.Pattern], ...] = ()

    def match(self, text: str) -> tuple[str, str] | None:
        """(category, term) of the first lexicon term or pattern found in `text`, or None."""
        form = normalise_for_matching(text)
        if self.pattern is not None:
            found = self.pattern.search(form)
            if found is not None:
                return self.category_of[found.group(0)], found.group(0)
        for category, pattern in self.patterns:
            found = pattern.search(form)
            if found is not None:
                return category, found.group(0)
        return None


@functools.cache
def load_lexicon(path: str) -> Lexicon:
    """`category<TAB>term` lines; a term written `re:PATTERN` is a regular expression, searched
    in the same matching form (NFKC, lower case, no whitespace or punctuation)."""
    category_of: dict[str, str] = {}
    patterns: list[tuple[str, re.Pattern]] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise ValueError(f"{path}:{lineno}: expected `category<TAB>term`, got {line!r}")
        category, term = parts[0].strip(), parts[1].strip()
        if term.startswith("re:"):
            try:
                patterns.append((category, re.compile(term[3:])))
            except re.error as err:
                raise ValueError(f"{path}:{lineno}: bad pattern {term!r}: {err}") from err
            continue
        term = normalise_for_matching(term)
        if term:
            category_of.setdefault(term, category)
    # Longest first so that the reported term is the most specific one.
    terms = sorted(category_of, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, terms))) if terms else None
    return Lexicon(pattern, category_of, tuple(patterns))


@functools.cache
def load_fasttext(path: str):
    import fasttext

    if not Path(path).is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    return fasttext.load_model(path)


def predict(model, texts: list[str], k: int = -1) -> list[dict[str, float]]:
    """Label -> probability for each text (top `k` labels; -1 for all).

    Calls the binding's per-line predict: fasttext's Python wrapper builds its result with
    `np.array(..., copy=False)`, which NumPy 2 rejects, and fasttext-wheel 0.9.2's
    multilinePredict repeats the first probability for every label. Each text becomes one input
    line ending in a newline, which fastText reads as the end-of-sentence token, exactly as its
    command-line `predict` does (without it P(zh) on the COCO-CN captions shifts).
    """
    out = []
    for text in texts:
        line = text.replace("\n", " ").replace("\r", " ") + "\n"
        out.append({label: float(prob) for prob, label in model.f.predict(line, k, 0.0, "strict")})
    return out


def classifier_scores(texts: list[str], model_path: str, label: str) -> list[float]:
    """Probability of `label` for each text under a fastText supervised model."""
    model = load_fasttext(model_path)
    if label not in model.get_labels():
        raise ValueError(f"{model_path}: label {label!r} not among {model.get_labels()}")
    segmented = [" ".join(segment(t)) for t in texts]
    return [probs.get(label, 0.0) for probs in predict(model, segmented)]
