"""Topic modelling as in the paper's Sec. 3.3 (BERTopic's recipe): text embeddings, UMAP to a few
dimensions, HDBSCAN clusters with a minimum cluster size, and class-based TF-IDF keywords.

The paper embeds captions with Chinese-CLIP's text tower; the embedding step stores those vectors
(`text` in results/embeddings/*.npz) when a CLIP checkpoint is configured. Without one, captions
are embedded by latent semantic analysis (TF-IDF over jieba words, truncated SVD), which needs no
model weights. UMAP compiles its numba kernels on first use (about a minute on two cores), which
is why topics are an optional target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import polars as pl

from danqing.report.figures.plotting import (
    OURS_COLOUR,
    FigureDataMissing,
    pyplot,
    save_figure,
    write_csv,
)
from danqing.report.figures.sampling import load_embeddings, sample_frame
from danqing.vectors import l2_normalise


def lsa_embeddings(
    word_lists: Sequence[Sequence[str]], dims: int = 64, seed: int = 0
) -> np.ndarray:
    """Text embeddings without a text encoder: TF-IDF over jieba words, truncated SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(analyzer=lambda words: words, min_df=1).fit_transform(word_lists)
    dims = max(2, min(dims, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
    return l2_normalise(TruncatedSVD(n_components=dims, random_state=seed).fit_transform(tfidf))


def class_tfidf(
    word_lists: Sequence[Sequence[str]],
    labels: Sequence[int],
    top_n: int = 10,
    stop_words: frozenset[str] = frozenset(),
) -> dict[int, list[tuple[str, float]]]:
    """BERTopic's class-based TF-IDF: all documents of a topic form one class document c, and
    w(t, c) = tf(t, c) / |c| * log(1 + A / f(t)), with f(t) the frequency of t over all classes
    and A the mean number of words per class. The noise label -1 is a class like the others."""
    vocab: dict[str, int] = {}
    classes = sorted(set(labels))
    cidx = {c: i for i, c in enumerate(classes)}
    rows, cols = [], []
    for words, label in zip(word_lists, labels, strict=True):
        for w in words:
            if w.lower() in stop_words:
                continue
            rows.append(cidx[label])
            cols.append(vocab.setdefault(w, len(vocab)))
    tf = np.zeros((len(classes), len(vocab)))
    np.add.at(tf, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1)
    class_len = tf.sum(axis=1, keepdims=True)
    freq = tf.sum(axis=0)
    avg = class_len.mean()
    weights = (
        tf / np.where(class_len == 0, 1, class_len) * np.log(1 + avg / np.where(freq == 0, 1, freq))
    )
    words = np.array(list(vocab), dtype=object)
    out = {}
    for c, i in cidx.items():
        order = np.argsort(-weights[i], kind="stable")[:top_n]
        out[c] = [(str(words[j]), float(weights[i, j])) for j in order if tf[i, j] > 0]
    return out


def topic_model(
    word_lists: Sequence[Sequence[str]],
    embeddings: np.ndarray,
    *,
    min_cluster_size: int,
    n_neighbors: int = 15,
    n_components: int = 5,
    keywords: int = 10,
    seed: int = 0,
    stop_words: frozenset[str] = frozenset(),
) -> tuple[np.ndarray, pl.DataFrame]:
    """UMAP to `n_components` dimensions (cosine metric; skipped when the embeddings have no more
    dimensions than that), HDBSCAN with `min_cluster_size`, class-based TF-IDF keywords.

    Returns each caption's topic (-1: outlier) and the topics, largest first, outliers last."""
    import hdbscan

    n = len(word_lists)
    if n != len(embeddings):
        raise ValueError(f"{n} captions but {len(embeddings)} embeddings")
    if n < max(n_neighbors + 2, min_cluster_size):
        raise FigureDataMissing(
            f"{n} captions are too few for UMAP with {n_neighbors} neighbours "
            f"and HDBSCAN clusters of at least {min_cluster_size}"
        )
    reduced = np.asarray(embeddings, dtype=np.float32)
    if reduced.shape[1] > n_components:
        import umap

        reduced = umap.UMAP(
            n_neighbors=n_neighbors,
            n_components=n_components,
            metric="cosine",
            min_dist=0.0,
            random_state=seed,
            n_jobs=1,
        ).fit_transform(reduced)
    labels = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size, metric="euclidean", cluster_selection_method="eom"
    ).fit_predict(reduced)
    words = class_tfidf(word_lists, labels.tolist(), top_n=keywords, stop_words=stop_words)
    sizes = Counter(labels.tolist())
    order = sorted(sizes, key=lambda t: (t == -1, -sizes[t], t))
    table = pl.DataFrame(
        {
            "topic": order,
            "size": [sizes[t] for t in order],
            "share": [sizes[t] / n for t in order],
            "keywords": [" ".join(w for w, _ in words[t]) for t in order],
        },
        schema_overrides={"topic": pl.Int64, "size": pl.Int64, "keywords": pl.String},
    )
    return labels, table


def plot_topics(table: pl.DataFrame, out, top: int = 15, notes: Sequence[str] = ()) -> None:
    plt = pyplot()
    shown = table.filter(pl.col("topic") >= 0).head(top)
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(shown.height, 2) + 1.5))
    labels = [
        f"#{t}: {' '.join(k.split()[:6])}"
        for t, k in zip(shown["topic"], shown["keywords"], strict=True)
    ]
    ax.barh(range(shown.height), shown["size"].to_numpy(), color=OURS_COLOUR)
    ax.set_yticks(range(shown.height), labels)
    ax.invert_yaxis()
    ax.set_xlabel("样本数 captions in topic")
    noise = table.filter(pl.col("topic") == -1)["size"].sum()
    ax.set_title(
        f"主题 Topics (UMAP + HDBSCAN + c-TF-IDF, Sec. 3.3): {table.filter(pl.col('topic') >= 0).height} "
        f"topics, {noise:,} outliers of {table['size'].sum():,}"
    )
    save_figure(fig, out, notes)


def build_topics(shards, npz_paths, png, csv, cfg, stop_lists: Sequence[str] = ()) -> pl.DataFrame:
    """The optional `topics` target: topics of a sample of the final captions."""
    from danqing.chinese_text import read_word_list, words_of

    tcfg = cfg["topics"]
    sample = sample_frame(shards, ["uid", "alt_text", "words"], tcfg["sample_rows"], cfg["seed"])
    words = words_of(sample)
    stop = frozenset(w.lower() for path in stop_lists for w in read_word_list(path))
    source = tcfg["embeddings"]
    vectors = None
    if source in ("auto", "clip") and npz_paths:
        emb = load_embeddings(npz_paths, sample["uid"].to_list())
        if "text" in emb:
            position = {u: i for i, u in enumerate(emb["uid"].tolist())}
            missing = [u for u in sample["uid"].to_list() if u not in position]
            if missing:
                raise ValueError(
                    f"{len(missing)} sampled captions have no text embedding, e.g. {missing[:3]}"
                )
            vectors = emb["text"][[position[u] for u in sample["uid"].to_list()]]
    if vectors is None:
        if source == "clip":
            raise FigureDataMissing(
                "figures.topics.embeddings is clip, but the embedding step stored "
                "no text vectors (no image-text model configured)"
            )
        vectors = lsa_embeddings(words, seed=cfg["seed"])
        source = "lsa"
    _, table = topic_model(
        words,
        vectors,
        min_cluster_size=tcfg["min_cluster_size"],
        n_neighbors=tcfg["umap_neighbors"],
        n_components=tcfg["umap_components"],
        keywords=tcfg["keywords"],
        seed=cfg["seed"],
        stop_words=stop,
    )
    write_csv(table, csv)
    plot_topics(
        table,
        png,
        notes=[
            f"text embeddings: {source}; {len(words):,} captions; "
            f"HDBSCAN min cluster size {tcfg['min_cluster_size']:,}"
        ],
    )
    return table
