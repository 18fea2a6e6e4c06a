"""Fig. 4b: masked-LM pseudo-perplexity of sampled captions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from danqing.report.figures.plotting import (
    PerplexityModelMissing,
    bin_label,
    colour,
    hist_frame,
    histogram,
    pyplot,
    save_figure,
    write_csv,
)
from danqing.report.figures.sampling import compare_frame, sample_frame


def load_masked_lm(model_path: str | None, device: str = "cpu"):
    """A local Hugging Face masked LM folder (config + weights + tokenizer files)."""
    if not model_path:
        raise PerplexityModelMissing(
            "Fig. 4b needs a Chinese masked language model: set figures.perplexity.model to a "
            "local Hugging Face folder (the paper used bert-base-chinese). Models cannot be "
            "downloaded by the workflow."
        )
    if not Path(model_path, "config.json").is_file():
        raise PerplexityModelMissing(
            f"figures.perplexity.model: {model_path} has no config.json "
            "(expected a folder written by save_pretrained)"
        )
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForMaskedLM.from_pretrained(model_path).to(device).eval()
    if tokenizer.mask_token_id is None:
        raise PerplexityModelMissing(f"{model_path}: the tokenizer has no mask token")
    return tokenizer, model


def pseudo_perplexity(
    texts: Sequence[str],
    tokenizer,
    model,
    batch_size: int = 64,
    max_tokens: int = 128,
    device: str = "cpu",
) -> np.ndarray:
    """Sentence pseudo-perplexity (Salazar et al. 2020): mask each token in turn, and
    PPL = exp(mean over tokens of -log p(token | the rest)). NaN for a caption with no token.

    The masked copies of all captions are batched together, `batch_size` copies per forward."""
    import torch

    encoded = [
        tokenizer(t or "", truncation=True, max_length=max_tokens)["input_ids"] for t in texts
    ]
    jobs = [(i, pos) for i, ids in enumerate(encoded) for pos in range(1, len(ids) - 1)]
    nll = np.zeros(len(texts))
    n_tok = np.zeros(len(texts), dtype=np.int64)
    mask_id, pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            width = max(len(encoded[i]) for i, _ in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            targets = []
            for row, (i, pos) in enumerate(chunk):
                seq = encoded[i]
                ids[row, : len(seq)] = torch.tensor(seq)
                attention[row, : len(seq)] = 1
                targets.append(seq[pos])
                ids[row, pos] = mask_id
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
            rows = torch.arange(len(chunk))
            positions = torch.tensor([pos for _, pos in chunk])
            logp = torch.log_softmax(logits[rows, positions].float(), dim=-1)
            token_nll = -logp[rows, torch.tensor(targets)].cpu().numpy()
            for (i, _), value in zip(chunk, token_nll, strict=True):
                nll[i] += value
                n_tok[i] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_tok > 0, np.exp(nll / np.maximum(n_tok, 1)), np.nan)


def fig4b_numbers(ppl: dict[str, np.ndarray], edges: Sequence[float]) -> pl.DataFrame:
    parts = [hist_frame(*histogram(v, edges), dataset=name) for name, v in ppl.items()]
    return pl.concat(parts, how="vertical")


def plot_fig4b(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = pyplot()
    names = list(dict.fromkeys(numbers["dataset"]))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        sub = numbers.filter(pl.col("dataset") == name)
        labels = [bin_label(a, b) for a, b in zip(sub["bin_left"], sub["bin_right"], strict=True)]
        ax.bar(
            np.arange(sub.height) + (k - (len(names) - 1) / 2) * width,
            sub["share"].to_numpy() * 100,
            width=width,
            color=colour(k),
            label=f"{name} (n={sub['count'].sum():,})",
        )
        ax.set_xticks(range(sub.height), labels, rotation=30, ha="right")
    ax.set_xlabel("伪困惑度 pseudo-perplexity (masked LM)")
    ax.set_ylabel("占比 share of captions (%)")
    ax.set_title("(b) 困惑度分布 perplexity distribution (Fig. 4b)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out, notes)


def build_fig4b(shards, png, csv, cfg) -> pl.DataFrame:
    pcfg = cfg["perplexity"]
    tokenizer, model = load_masked_lm(pcfg["model"], pcfg["device"])
    texts = {
        cfg["name"]: sample_frame(shards, ["alt_text"], pcfg["sample_rows"], cfg["seed"])[
            "alt_text"
        ].to_list()
    }
    other = compare_frame({**cfg, "sample_rows": pcfg["sample_rows"]}, ["alt_text"])
    if other:
        texts[other[0]] = other[1]["alt_text"].to_list()
    check_vocabulary(tokenizer, [t for ts in texts.values() for t in ts[:500]])
    ppl = {
        name: pseudo_perplexity(
            t, tokenizer, model, pcfg["batch_size"], pcfg["max_tokens"], pcfg["device"]
        )
        for name, t in texts.items()
    }
    numbers = fig4b_numbers(ppl, pcfg["bins"])
    write_csv(numbers, csv)
    plot_fig4b(numbers, png, [f"model: {Path(pcfg['model']).name}"])
    return numbers


def check_vocabulary(tokenizer, texts: Sequence[str], max_unknown: float = 0.2) -> None:
    """Perplexity is meaningless if the model's vocabulary does not cover Chinese characters."""
    tokens = [t for text in texts for t in tokenizer.tokenize(text or "")]
    unknown = sum(t == tokenizer.unk_token for t in tokens)
    if tokens and unknown / len(tokens) > max_unknown:
        raise ValueError(
            f"figures.perplexity.model: {unknown / len(tokens):.0%} of the caption "
            "tokens are unknown to its tokenizer; it is not a Chinese model"
        )
