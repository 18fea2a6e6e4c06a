"""The paper's data figures and tables, recomputed from the workflow's final shards.

Fig. 2 (image sizes, caption lengths), Fig. 4 (semantic-word density by jieba POS; masked-LM
pseudo-perplexity), Fig. 6 (FAISS k-means cluster sizes), Fig. 7 (image-text similarity),
Fig. 11 (word cloud) and Table 7 (top source domains). Each is two steps: a `*_numbers` function
computes a Polars frame (written as the figure's CSV) and a `plot_*` function draws the PNG from
that frame alone, so the CSV holds exactly the numbers the figure shows. What a figure cannot show
(no images in a text-only run, a comparison dataset without embeddings) becomes a note printed on
the figure, never a made-up series.

Whole-dataset statistics (sizes, lengths, domains) are summed shard by shard; per-caption models
(POS tagging, perplexity, clustering, word counts) run on a seeded random sample of at most
`sample_rows` pairs, taken from every shard in proportion to its rows (the paper: 10M-pair samples).
"""

from __future__ import annotations

import html
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl

log = logging.getLogger("danqing.figures")

OURS_COLOUR = "#b03a2e"  # 丹, cinnabar
OTHER_COLOUR = "#2e86ab"  # 青, azure
POS_CLASSES = {"noun": "n", "verb": "v", "adjective": "a"}
# The report shows a PNG at its natural size: at 110 dpi the figures fit a laptop screen.
DPI = 110


class FigureDataMissing(RuntimeError):
    """The data a figure needs is not in this run's outputs (the message says which and why)."""


# --------------------------------------------------------------------------------------------
# Reading the shards


def available_columns(paths: Sequence[str]) -> set[str]:
    cols: set[str] = set()
    for path in paths:
        cols.update(pl.read_parquet_schema(path))
    return cols


def iter_columns(paths: Sequence[str], columns: Sequence[str]) -> Iterator[pl.DataFrame]:
    """Each shard's `columns` that it has (a shard lacking all of them yields an empty frame)."""
    for path in paths:
        have = [c for c in columns if c in pl.read_parquet_schema(path)]
        yield pl.read_parquet(path, columns=have) if have else pl.DataFrame()


def shard_rows(paths: Sequence[str]) -> list[int]:
    return [pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths]


def sample_counts(rows: Sequence[int], n: int) -> list[int]:
    """How many rows to take from each shard: in proportion to its rows, summing to min(n, total)
    exactly (largest remainders get the leftover rows)."""
    total = sum(rows)
    if total <= n:
        return list(rows)
    exact = [r * n / total for r in rows]
    take = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(rows)), key=lambda i: (take[i] - exact[i], i))
    for i in order[: n - sum(take)]:
        take[i] += 1
    return take


def sample_frame(paths: Sequence[str], columns: Sequence[str], n: int, seed: int) -> pl.DataFrame:
    """A seeded random sample of at most `n` rows over all shards (shard order kept)."""
    rows = shard_rows(paths)
    rng = np.random.default_rng(seed)
    parts = []
    for path, r, k in zip(paths, rows, sample_counts(rows, n), strict=True):
        if k == 0:
            continue
        have = [c for c in columns if c in pl.read_parquet_schema(path)]
        frame = pl.read_parquet(path, columns=have)
        if k < r:
            frame = frame[np.sort(rng.choice(r, size=k, replace=False)).tolist()]
        parts.append(frame)
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    return pl.concat(parts, how="diagonal_relaxed")


def sample_rows_of(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    if frame.height <= n:
        return frame
    idx = np.sort(np.random.default_rng(seed).choice(frame.height, size=n, replace=False))
    return frame[idx.tolist()]


def read_compare(path: str, columns: Sequence[str] = ()) -> pl.DataFrame:
    """The comparison dataset: a Parquet file, a folder of them or a glob, with at least `url`
    and `alt_text`; `original_width/height` are accepted for `width/height`."""
    import glob

    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    else:
        files = sorted(glob.glob(path))
    if not files:
        raise FileNotFoundError(f"figures.compare.parquet: no Parquet file at {path}")
    frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    renames = {
        f"original_{c}": c
        for c in ("width", "height")
        if f"original_{c}" in frame.columns and c not in frame.columns
    }
    frame = frame.rename(renames)
    missing = [c for c in ("url", "alt_text") if c not in frame.columns]
    if missing:
        raise ValueError(f"comparison dataset {path} lacks column(s) {missing}")
    return frame.select([c for c in frame.columns if not columns or c in columns])


# --------------------------------------------------------------------------------------------
# Histograms


def histogram(
    values: np.ndarray, edges: Sequence[float]
) -> tuple[list[float], list[float], list[int]]:
    """Counts in bins [e_i, e_i+1) and a last open bin [e_n, inf); values below e_0 get an
    underflow bin (-inf, e_0) of their own. NaN is not counted."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    edges = [float(e) for e in edges]
    left = list(edges)
    right = edges[1:] + [math.inf]
    idx = np.searchsorted(np.asarray(edges), values, side="right") - 1
    counts = np.bincount(idx[idx >= 0], minlength=len(edges)).tolist()
    under = int((idx < 0).sum())
    if under:
        left, right, counts = [-math.inf] + left, [edges[0]] + right, [under] + counts
    return left, right, counts


def hist_frame(left, right, counts, **labels) -> pl.DataFrame:
    total = sum(counts)
    data = {k: [v] * len(counts) for k, v in labels.items()}
    data.update(
        {
            "bin_left": [float(x) for x in left],
            "bin_right": [float(x) for x in right],
            "count": [int(c) for c in counts],
            "share": [c / total if total else 0.0 for c in counts],
        }
    )
    return pl.DataFrame(data, schema_overrides={"count": pl.Int64})


def _bin_label(left: float, right: float, integer: bool = True) -> str:
    fmt = (lambda v: f"{v:,.0f}") if integer else (lambda v: f"{v:g}")
    if math.isinf(right):
        return f"≥{fmt(left)}"
    if math.isinf(left):
        return f"<{fmt(right)}"
    return f"{fmt(left)}–{fmt(right)}"


# --------------------------------------------------------------------------------------------
# Fig. 2: image sizes and caption lengths


def fig2_numbers(
    frames: Iterable[pl.DataFrame], size_edges: Sequence[int]
) -> tuple[pl.DataFrame, list[str]]:
    """Width, height and minimum edge of the original images (bins `size_edges`) and caption
    length in characters, the unit of the paper's "5 to 60 Chinese words" (one bin per length;
    danqing.filters.source.caption_length), summed over all shards."""
    from danqing.filters.source import caption_length

    size_counts = {
        p: np.zeros(len(size_edges), dtype=np.int64) for p in ("width", "height", "min_edge")
    }
    under = dict.fromkeys(size_counts, 0)
    lengths: Counter = Counter()
    have_sizes = False
    for frame in frames:
        if frame.height == 0:
            continue
        if {"original_width", "original_height"} <= set(frame.columns):
            have_sizes = True
            w = frame["original_width"].cast(pl.Float64).to_numpy()
            h = frame["original_height"].cast(pl.Float64).to_numpy()
            for panel, vals in (("width", w), ("height", h), ("min_edge", np.fmin(w, h))):
                left, _, counts = histogram(vals, size_edges)
                if math.isinf(left[0]):
                    under[panel] += counts[0]
                    counts = counts[1:]
                size_counts[panel] += np.asarray(counts, dtype=np.int64)
        if "alt_text" in frame.columns:
            lengths.update(
                caption_length(t, [], "characters")
                for t in frame["alt_text"].drop_nulls().to_list()
            )
    parts, notes = [], []
    if have_sizes:
        for panel, counts in size_counts.items():
            left, right = list(size_edges), list(size_edges[1:]) + [math.inf]
            counts = counts.tolist()
            if under[panel]:
                left, right, counts = (
                    [-math.inf] + left,
                    [size_edges[0]] + right,
                    [under[panel]] + counts,
                )
            parts.append(hist_frame(left, right, counts, panel=panel))
    else:
        notes.append(
            "Image width/height/min-edge panels not available: no images were "
            "downloaded in this run (text-only; no original_width/original_height)."
        )
    if lengths:
        lo, hi = min(lengths), max(lengths)
        parts.append(
            hist_frame(
                list(range(lo, hi + 1)),
                list(range(lo + 1, hi + 2)),
                [lengths.get(k, 0) for k in range(lo, hi + 1)],
                panel="caption_words",
            )
        )
    else:
        notes.append("Caption length panel not available: the shards hold no captions.")
    if not parts:
        raise FigureDataMissing(" ".join(notes))
    return pl.concat(parts, how="vertical"), notes


def plot_fig2(
    numbers: pl.DataFrame, out: str | os.PathLike, notes: Sequence[str] = (), name: str = "DanQing"
) -> None:
    plt = _pyplot()
    titles = {
        "width": "图像宽度 Width (px)",
        "height": "图像高度 Height (px)",
        "min_edge": "最短边 Min edge (px)",
        "caption_words": "文本长度 Caption length (characters)",
    }
    panels = [p for p in titles if p in set(numbers["panel"])]
    rows = 2 if len(panels) == 4 else 1
    cols = len(panels) // rows
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.1 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=True):
        sub = numbers.filter(pl.col("panel") == panel)
        if panel == "caption_words":
            ax.bar(
                sub["bin_left"].to_numpy(),
                sub["share"].to_numpy() * 100,
                width=0.9,
                color=OURS_COLOUR,
            )
            ax.set_xlabel("字数 characters per caption")
        else:
            labels = [
                _bin_label(a, b) for a, b in zip(sub["bin_left"], sub["bin_right"], strict=True)
            ]
            ax.bar(range(sub.height), sub["share"].to_numpy() * 100, color=OURS_COLOUR)
            ax.set_xticks(range(sub.height), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(titles[panel])
        ax.set_ylabel("占比 share of pairs (%)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{name}: 数据特征 data characteristics (Fig. 2), {_n_pairs(numbers)}")
    _save(fig, out, notes)


def _n_pairs(numbers: pl.DataFrame) -> str:
    panel = numbers["panel"][0]
    return f"{numbers.filter(pl.col('panel') == panel)['count'].sum():,} pairs"


# --------------------------------------------------------------------------------------------
# Fig. 4a: semantic-word density


def pos_class_counts(texts: Sequence[str]) -> np.ndarray:
    """Per caption: [word tokens, nouns, verbs, adjectives] under jieba's POS tagger.

    A word's class is the first letter of its ICTCLAS tag (n* nouns incl. nr/ns/nz, v* verbs
    incl. vn/vd, a* adjectives incl. ad/an), as the paper counts "nouns, verbs and adjectives"."""
    from danqing.text import pos_tag

    out = np.zeros((len(texts), 4), dtype=np.int64)
    for i, text in enumerate(texts):
        for _, flag in pos_tag(text or ""):
            out[i, 0] += 1
            for j, letter in enumerate(POS_CLASSES.values(), start=1):
                if flag.startswith(letter):
                    out[i, j] += 1
    return out


def fig4a_numbers(counts: dict[str, np.ndarray], bins: int = 10) -> pl.DataFrame:
    """Per dataset: the histogram of per-caption semantic-word density (nouns + verbs +
    adjectives over words; panel `density`, bins of width 1/bins, the last closed at 1) and the
    mean per-caption share of each class (panel `pos_share`; `count` = the class's tokens)."""
    parts = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, c in counts.items():
        c = c[c[:, 0] > 0]
        shares = c[:, 1:] / c[:, :1]
        density = shares.sum(axis=1)
        idx = np.minimum(np.searchsorted(edges, density, side="right") - 1, bins - 1)
        hist = np.bincount(idx, minlength=bins).tolist()
        parts.append(
            hist_frame(
                edges[:-1],
                edges[1:],
                hist,
                panel="density",
                dataset=name,
                category="noun+verb+adjective",
            )
        )
        parts.append(
            pl.DataFrame(
                {
                    "panel": ["pos_share"] * 4,
                    "dataset": [name] * 4,
                    "category": [*POS_CLASSES, "noun+verb+adjective"],
                    "bin_left": [None] * 4,
                    "bin_right": [None] * 4,
                    "count": [int(x) for x in c[:, 1:].sum(axis=0)] + [int(c[:, 1:].sum())],
                    "share": [float(x) if len(c) else 0.0 for x in shares.mean(axis=0)]
                    + [float(density.mean()) if len(c) else 0.0],
                },
                schema_overrides={
                    "bin_left": pl.Float64,
                    "bin_right": pl.Float64,
                    "count": pl.Int64,
                },
            )
        )
    return pl.concat(parts, how="diagonal_relaxed").select(
        "panel", "dataset", "category", "bin_left", "bin_right", "count", "share"
    )


def plot_fig4a(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = _pyplot()
    names = list(dict.fromkeys(numbers["dataset"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        sub = numbers.filter((pl.col("dataset") == name) & (pl.col("panel") == "density"))
        centres = (sub["bin_left"].to_numpy() + sub["bin_right"].to_numpy()) / 2
        step = float(sub["bin_right"][0] - sub["bin_left"][0])
        ax1.bar(
            centres + (k - (len(names) - 1) / 2) * width * step,
            sub["share"].to_numpy() * 100,
            width=width * step,
            color=_colour(k),
            label=f"{name} (n={sub['count'].sum():,})",
        )
        pos = numbers.filter(
            (pl.col("dataset") == name)
            & (pl.col("panel") == "pos_share")
            & (pl.col("category") != "noun+verb+adjective")
        )
        ax2.bar(
            np.arange(pos.height) + (k - (len(names) - 1) / 2) * width,
            pos["share"].to_numpy() * 100,
            width=width,
            color=_colour(k),
            label=name,
        )
        ax2.set_xticks(range(pos.height), ["名词 nouns", "动词 verbs", "形容词 adjectives"])
    ax1.set_xlabel("语义词密度 semantic-word density (nouns+verbs+adjectives / words)")
    ax1.set_ylabel("占比 share of captions (%)")
    ax1.set_title("(a) 语义词密度分布 density distribution")
    ax2.set_ylabel("平均占比 mean share of words (%)")
    ax2.set_title("词性占比 share by part of speech")
    for ax in (ax1, ax2):
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("文本质量 Text quality: semantic-word density (Fig. 4a, jieba POS)")
    _save(fig, out, notes)


# --------------------------------------------------------------------------------------------
# Fig. 4b: pseudo-perplexity under a Chinese masked LM


class PerplexityModelMissing(FigureDataMissing):
    pass


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
    plt = _pyplot()
    names = list(dict.fromkeys(numbers["dataset"]))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        sub = numbers.filter(pl.col("dataset") == name)
        labels = [_bin_label(a, b) for a, b in zip(sub["bin_left"], sub["bin_right"], strict=True)]
        ax.bar(
            np.arange(sub.height) + (k - (len(names) - 1) / 2) * width,
            sub["share"].to_numpy() * 100,
            width=width,
            color=_colour(k),
            label=f"{name} (n={sub['count'].sum():,})",
        )
        ax.set_xticks(range(sub.height), labels, rotation=30, ha="right")
    ax.set_xlabel("伪困惑度 pseudo-perplexity (masked LM)")
    ax.set_ylabel("占比 share of captions (%)")
    ax.set_title("(b) 困惑度分布 perplexity distribution (Fig. 4b)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out, notes)


# --------------------------------------------------------------------------------------------
# Embeddings: Figs. 6 and 7, topics


def load_embeddings(
    npz_paths: Sequence[str], uids: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """uid, image (and text where stored) arrays of the per-shard .npz files, restricted to
    `uids` (the final kept pairs) and L2-normalised in float32."""
    keep = None if uids is None else set(uids)
    out: dict[str, list] = {"uid": [], "image": [], "text": []}
    has_text = True
    for path in npz_paths:
        with np.load(path, allow_pickle=False) as data:
            # danqing.embed.write_embeddings names the uid array `uids`.
            uid_key = "uids" if "uids" in data else "uid"
            if uid_key not in data or "image" not in data:
                raise ValueError(f"{path}: expected arrays `uids` and `image`, found {list(data)}")
            uid = data[uid_key].astype(str)
            sel = np.ones(len(uid), dtype=bool) if keep is None else np.isin(uid, list(keep))
            out["uid"].append(uid[sel])
            out["image"].append(data["image"][sel].astype(np.float32))
            if "text" in data:
                out["text"].append(data["text"][sel].astype(np.float32))
            else:
                has_text = False
    if not out["uid"]:
        return {"uid": np.array([], dtype=str), "image": np.zeros((0, 0), np.float32)}
    result = {"uid": np.concatenate(out["uid"]), "image": _normalise(np.concatenate(out["image"]))}
    if has_text and out["text"]:
        result["text"] = _normalise(np.concatenate(out["text"]))
    return result


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def embedding_matrix(frame: pl.DataFrame, column: str = "embeddings") -> np.ndarray:
    return _normalise(np.asarray(frame[column].to_list(), dtype=np.float32))


def cluster_sizes(
    x: np.ndarray, k: int, niter: int = 20, seed: int = 1234, min_points_per_cluster: int = 39
) -> tuple[np.ndarray, int]:
    """FAISS spherical k-means on L2-normalised vectors; cluster sizes, largest first.

    k is lowered to n / min_points_per_cluster when there are too few vectors (FAISS warns
    below 39 points per centroid); returns the sizes and the k used."""
    import faiss

    n, d = x.shape
    k_used = max(1, min(k, n // max(1, min_points_per_cluster)))
    if n == 0:
        raise FigureDataMissing("no embeddings to cluster")
    x = np.ascontiguousarray(x, dtype=np.float32)
    kmeans = faiss.Kmeans(
        d,
        k_used,
        niter=niter,
        seed=seed,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, n // k_used + 1),
    )
    kmeans.train(x)
    _, assign = kmeans.index.search(x, 1)
    sizes = np.bincount(assign[:, 0], minlength=k_used)
    return np.sort(sizes)[::-1], k_used


def fig6_numbers(sizes: dict[str, np.ndarray]) -> pl.DataFrame:
    parts = []
    for name, s in sizes.items():
        parts.append(
            pl.DataFrame(
                {
                    "dataset": [name] * len(s),
                    "rank": np.arange(1, len(s) + 1),
                    "cluster_size": s.astype(np.int64),
                    "share": s / max(1, s.sum()),
                }
            )
        )
    return pl.concat(parts, how="vertical")


def plot_fig6(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for k, name in enumerate(dict.fromkeys(numbers["dataset"])):
        sub = numbers.filter(pl.col("dataset") == name)
        ax.plot(
            sub["rank"].to_numpy(),
            sub["cluster_size"].to_numpy(),
            color=_colour(k),
            lw=1.8,
            label=f"{name} ({sub['cluster_size'].sum():,} images, k={sub.height:,})",
        )
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("簇排名 cluster rank (by size)")
    ax.set_ylabel("簇大小 images per cluster (log)")
    ax.set_title("图像语义聚类分布 Image cluster sizes, FAISS k-means (Fig. 6)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, out, notes)


def cosine_similarity(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", _normalise(image), _normalise(text))


def similarity_from_distance(distance: np.ndarray) -> np.ndarray:
    """cos = 1 - d^2 / 2 for the L2 distance d of two unit vectors (the alignment step's value)."""
    d = np.asarray(distance, dtype=np.float64)
    return 1.0 - d * d / 2.0


def fig7_numbers(sims: dict[str, np.ndarray], bin_width: float = 0.01) -> pl.DataFrame:
    """Histogram of cosine similarity per dataset on common bins of `bin_width`."""
    allv = np.concatenate([np.asarray(v, dtype=np.float64) for v in sims.values()])
    allv = allv[~np.isnan(allv)]
    if allv.size == 0:
        raise FigureDataMissing("no image-text similarities")
    lo = math.floor(allv.min() / bin_width) * bin_width
    hi = math.ceil(allv.max() / bin_width + 1e-9) * bin_width
    edges = np.round(np.arange(lo, hi + bin_width / 2, bin_width), 10)
    parts = []
    for name, v in sims.items():
        v = np.asarray(v, dtype=np.float64)
        v = v[~np.isnan(v)]
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(idx, minlength=len(edges) - 1).tolist()
        parts.append(hist_frame(edges[:-1], edges[1:], counts, dataset=name))
    return pl.concat(parts, how="vertical")


def plot_fig7(numbers: pl.DataFrame, out, notes: Sequence[str] = ()) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for k, name in enumerate(dict.fromkeys(numbers["dataset"])):
        sub = numbers.filter(pl.col("dataset") == name)
        ax.stairs(
            sub["share"].to_numpy() * 100,
            np.append(sub["bin_left"].to_numpy(), sub["bin_right"][-1]),
            color=_colour(k),
            fill=True,
            alpha=0.45,
            label=f"{name} (n={sub['count'].sum():,})",
        )
    ax.set_xlabel("图文相似度 image-text cosine similarity")
    ax.set_ylabel("占比 share of pairs (%)")
    ax.set_title("图文相似度分布 Image-text similarity (Fig. 7)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out, notes)


# --------------------------------------------------------------------------------------------
# Fig. 11: word cloud; Table 7: source domains


def word_frequencies(
    word_lists: Iterable[Sequence[str]],
    stop_words: frozenset[str] = frozenset(),
    min_length: int = 1,
    top: int = 200,
) -> pl.DataFrame:
    """The `top` most frequent jieba words (rank, word, count), stop words, words shorter than
    `min_length` characters and tokens without a letter, digit or Han character left out."""
    from danqing.text import is_word

    counts: Counter = Counter()
    for words in word_lists:
        counts.update(
            w for w in words if len(w) >= min_length and is_word(w) and w.lower() not in stop_words
        )
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return pl.DataFrame(
        {
            "rank": list(range(1, len(ranked) + 1)),
            "word": [w for w, _ in ranked],
            "count": [c for _, c in ranked],
        },
        schema_overrides={"word": pl.String, "count": pl.Int64},
    )


def plot_wordcloud(
    numbers: pl.DataFrame,
    out,
    width: int = 1200,
    height: int = 675,
    seed: int = 1,
    notes: Sequence[str] = (),
) -> None:
    from wordcloud import WordCloud

    from danqing.report.fonts import cjk_font_path

    if numbers.height == 0:
        raise FigureDataMissing("no words to draw")
    from matplotlib.colors import LinearSegmentedColormap

    # Dark cinnabar to dark azure (丹青): every word stays readable on white.
    colours = LinearSegmentedColormap.from_list(
        "danqing", ["#7b1e1e", OURS_COLOUR, "#1d4e6b", OTHER_COLOUR]
    )
    cloud = WordCloud(
        font_path=str(cjk_font_path()),
        width=width,
        height=height,
        background_color="white",
        colormap=colours,
        random_state=seed,
        prefer_horizontal=0.9,
        max_words=numbers.height,
        collocations=False,
    )
    cloud.generate_from_frequencies(dict(zip(numbers["word"], numbers["count"], strict=True)))
    plt = _pyplot()
    # The PNG is as wide as the cloud, plus a title strip.
    fig, ax = plt.subplots(figsize=(width / DPI, height / DPI + 0.4))
    ax.imshow(cloud.to_array(), interpolation="bilinear")
    ax.axis("off")
    ax.set_title(f"词云 Word cloud of jieba words (Fig. 11), top {numbers.height} words")
    _save(fig, out, notes)


def domain_counts(frames: Iterable[pl.DataFrame]) -> tuple[Counter, int]:
    counts: Counter = Counter()
    total = 0
    for frame in frames:
        if frame.height == 0 or "domain" not in frame.columns:
            continue
        total += frame.height
        vc = frame["domain"].fill_null("(none)").value_counts()
        counts.update(dict(zip(vc["domain"], vc["count"], strict=True)))
    return counts, total


def top_domains(counts: Counter, total: int, n: int = 40) -> pl.DataFrame:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return pl.DataFrame(
        {
            "rank": list(range(1, len(ranked) + 1)),
            "source_domain": [d for d, _ in ranked],
            "total_count": [c for _, c in ranked],
            "share_pct": [round(100.0 * c / total, 2) if total else 0.0 for _, c in ranked],
        },
        schema_overrides={"source_domain": pl.String, "total_count": pl.Int64},
    )


def top_domains_markdown(table: pl.DataFrame, total: int) -> str:
    lines = ["| Rank | Source Domain | Total Count | % |", "|---:|---|---:|---:|"]
    lines += [
        f"| {r['rank']} | {r['source_domain']} | {r['total_count']:,} | {r['share_pct']:.2f}% |"
        for r in table.iter_rows(named=True)
    ]
    covered = table["total_count"].sum()
    lines += [
        "",
        f"Top {table.height} domains: {covered:,} of {total:,} pairs "
        f"({100.0 * covered / total if total else 0:.2f}%).",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# HTML tables for the Snakemake report, and plotting helpers


def html_table(frame: pl.DataFrame, title: str, intro: str = "", notes: Sequence[str] = ()) -> str:
    """A standalone HTML page with `frame` as a table (the report shows it in a frame)."""

    def cell(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    extra = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Noto Sans", sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }}
th {{ background: #f4ecea; }}
td:nth-child(2), th:nth-child(2) {{ text-align: left; }}
.note {{ color: #555; font-size: 13px; }}
</style></head><body>
<h2>{html.escape(title)}</h2>
<p>{html.escape(intro)}</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
{extra}
</body></html>
"""


def _pyplot():
    from danqing.report.fonts import use_cjk_font

    use_cjk_font()
    import matplotlib.pyplot as plt

    return plt


def _colour(k: int) -> str:
    return [OURS_COLOUR, OTHER_COLOUR, "#6c757d", "#e9a23b"][k % 4]


def _save(fig, out, notes: Sequence[str] = ()) -> None:
    from danqing.io import atomic_path

    if notes:
        fig.text(0.01, 0.005, "\n".join(notes), fontsize=8, color="#555", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.04 * len(notes) + 0.02, 1, 1))
    else:
        fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_note(out, title: str, note: str) -> None:
    """A figure that says why it has no data (the rule ran, but the input was not there)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.axis("off")
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=13, weight="bold")
    ax.text(
        0.5,
        0.3,
        "Not available: " + note,
        ha="center",
        va="center",
        fontsize=10,
        wrap=True,
        color="#555",
    )
    _save(fig, out)


# --------------------------------------------------------------------------------------------
# Building each figure from a rule's inputs (the scripts/figure_*.py entry points call these)


def write_csv(frame: pl.DataFrame, path) -> None:
    from danqing.io import write_text

    write_text(frame.write_csv(), path)


def compare_frame(cfg: dict, columns: Sequence[str] = ()) -> tuple[str, pl.DataFrame] | None:
    """(name, sampled frame) of `figures.compare`, or None when no comparison is configured."""
    spec = cfg.get("compare")
    if not spec:
        return None
    frame = read_compare(spec["parquet"], columns)
    return spec["name"], sample_rows_of(frame, cfg["sample_rows"], cfg["seed"] + 1)


def final_uids(shards: Sequence[str]) -> list[str]:
    return [
        u for frame in iter_columns(shards, ["uid"]) if frame.height for u in frame["uid"].to_list()
    ]


def build_fig2(shards, png, csv, cfg) -> pl.DataFrame:
    numbers, notes = fig2_numbers(
        iter_columns(shards, ["original_width", "original_height", "alt_text"]), cfg["size_bins"]
    )
    write_csv(numbers, csv)
    plot_fig2(numbers, png, notes, name=cfg["name"])
    return numbers


def build_fig4a(shards, png, csv, cfg) -> pl.DataFrame:
    ours = sample_frame(shards, ["alt_text"], cfg["sample_rows"], cfg["seed"])
    counts = {cfg["name"]: pos_class_counts(ours["alt_text"].to_list())}
    other = compare_frame(cfg, ["alt_text"])
    if other:
        counts[other[0]] = pos_class_counts(other[1]["alt_text"].to_list())
    numbers = fig4a_numbers(counts, cfg["density_bins"])
    write_csv(numbers, csv)
    plot_fig4a(numbers, png)
    return numbers


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


def _sample_matrix(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))]


def build_fig6(shards, npz_paths, png, csv, cfg) -> pl.DataFrame:
    emb = load_embeddings(npz_paths, final_uids(shards))
    if len(emb["uid"]) == 0:
        raise FigureDataMissing("the final pairs have no image embeddings")
    datasets = {cfg["name"]: emb["image"]}
    notes = []
    other = compare_frame(cfg)
    if other and "embeddings" in other[1].columns:
        datasets[other[0]] = embedding_matrix(other[1].filter(pl.col("embeddings").is_not_null()))
        if datasets[other[0]].shape[1] != emb["image"].shape[1]:
            raise ValueError(
                f"{other[0]} embeddings have {datasets[other[0]].shape[1]} dimensions, "
                f"ours {emb['image'].shape[1]}: they must come from the same model"
            )
    elif other:
        notes.append(f"{other[0]}: no `embeddings` column, so only {cfg['name']} is drawn.")
    n = min(cfg["sample_rows"], *(len(x) for x in datasets.values()))
    ccfg = cfg["clusters"]
    sizes = {}
    for i, (name, x) in enumerate(datasets.items()):
        sizes[name], k_used = cluster_sizes(
            _sample_matrix(x, n, cfg["seed"] + i),
            ccfg["k"],
            ccfg["niter"],
            cfg["seed"],
            ccfg["min_points_per_cluster"],
        )
    if k_used < ccfg["k"]:
        notes.append(
            f"k lowered from {ccfg['k']:,} to {k_used:,}: {n:,} images per dataset and at "
            f"least {ccfg['min_points_per_cluster']} per cluster."
        )
    numbers = fig6_numbers(sizes)
    write_csv(numbers, csv)
    plot_fig6(numbers, png, notes)
    return numbers


def build_fig7(shards, npz_paths, png, csv, cfg) -> pl.DataFrame:
    uids = final_uids(shards)
    emb = load_embeddings(npz_paths, uids) if npz_paths else {}
    notes = []
    if "text" in emb and len(emb["uid"]):
        sims = cosine_similarity(emb["image"], emb["text"])
        notes.append("Cosine similarity of the embedding step's image and text vectors.")
    else:
        dist = [
            f["alignment_distance"]
            for f in iter_columns(shards, ["alignment_distance"])
            if "alignment_distance" in f.columns
        ]
        d = pl.concat(dist).drop_nulls().to_numpy() if dist else np.array([])
        if d.size == 0:
            raise FigureDataMissing(
                "the embedding model has no text tower (the embeddings hold no `text` array) and "
                "no alignment distance was recorded, so there is no image-text similarity"
            )
        sims = similarity_from_distance(d)
        notes.append("cos = 1 - d²/2 from the cross-modal alignment step's L2 distance d.")
    values = {cfg["name"]: _sample_matrix(np.asarray(sims), cfg["sample_rows"], cfg["seed"])}
    other = compare_frame(cfg)
    if other and "similarity" in other[1].columns:
        values[other[0]] = other[1]["similarity"].drop_nulls().cast(pl.Float64).to_numpy()
        notes.append(
            f"{other[0]}: its `similarity` column (comparable only if made by the same model)."
        )
    elif other:
        notes.append(f"{other[0]}: no `similarity` column, so only {cfg['name']} is drawn.")
    numbers = fig7_numbers(values, cfg["similarity_bin_width"])
    write_csv(numbers, csv)
    plot_fig7(numbers, png, notes)
    return numbers


def build_wordcloud(shards, png, csv, cfg, stop_lists: Sequence[str] = ()) -> pl.DataFrame:
    from danqing.text import read_word_list, words_of

    stop: set[str] = set()
    for path in stop_lists:
        stop.update(w.lower() for w in read_word_list(path))
    sample = sample_frame(shards, ["alt_text", "words"], cfg["sample_rows"], cfg["seed"])
    wcfg = cfg["wordcloud"]
    numbers = word_frequencies(
        words_of(sample) if sample.height else [],
        frozenset(stop),
        wcfg["min_word_length"],
        wcfg["max_words"],
    )
    if numbers.height == 0:
        raise FigureDataMissing("the final pairs have no words to draw")
    write_csv(numbers, csv)
    plot_wordcloud(numbers, png, wcfg["width"], wcfg["height"], cfg["seed"])
    return numbers


def build_top_domains(shards, csv, md, html_path, cfg) -> pl.DataFrame:
    from danqing.io import write_text

    counts, total = domain_counts(iter_columns(shards, ["domain"]))
    table = top_domains(counts, total, cfg["top_domains"])
    write_csv(table, csv)
    write_text(top_domains_markdown(table, total), md)
    write_text(
        html_table(
            table,
            f"Table 7: top {table.height} image source domains",
            f"{total:,} pairs from {len(counts):,} registered domains; share of all pairs.",
        ),
        html_path,
    )
    return table


def run_or_note(build, png, csv, title: str, *args, **kwargs):
    """Run a figure builder; where its data is not in this run, draw a figure that says so and
    write the reason as the CSV (a `note` column), instead of failing the workflow."""
    try:
        return build(*args, png=png, csv=csv, **kwargs)
    except FigureDataMissing as exc:
        if isinstance(exc, PerplexityModelMissing):
            raise
        log.warning("%s not available: %s", title, exc)
        write_csv(pl.DataFrame({"note": [f"not available: {exc}"]}), csv)
        plot_note(png, title, str(exc))
        return None
