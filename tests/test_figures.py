"""Figures: the CJK font, and every figure's numbers CSV against the data it was made from."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import jieba.posseg
import numpy as np
import polars as pl
import pytest
from PIL import Image

from danqing.config import load as load_config
from danqing.embed import Embeddings, write_embeddings
from danqing.report import fonts
from danqing.report.figures import (
    clusters,
    perplexity,
    plotting,
    sampling,
    semantic_density,
    similarity,
    sizes,
    top_domains,
    topics,
    wordcloud,
)
from danqing.vectors import l2_normalise

CAPTIONS = [
    "郑州环卫工人坚守岗位迎接新年",
    "2024年王者荣耀官方公布年度赛事 高清截图欣赏",
    "美味的家常糖醋排骨做法简单又好吃",
    "小米新款手机发布 性能强劲 价格实惠",
    "杭州西湖春季风景如画 游客纷纷拍照留念",
    "儿童冬季保暖羽绒服 白色 新款",
]


@pytest.fixture(scope="module")
def cfg():
    return load_config()["figures"]


def write_shards(folder: Path, frames: list[pl.DataFrame]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = folder / f"s{i:05d}.parquet"
        frame.write_parquet(path)
        paths.append(str(path))
    return paths


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


# ---------------------------------------------------------------------------- font


def test_cjk_font_covers_the_labels_and_renders_distinct_glyphs():
    labels = "丹青数据特征文本长度图像宽度高度最短边语义词密度困惑度词云图文相似度簇排名主题"
    path = fonts.cjk_font_path()
    assert fonts.missing_glyphs(labels + "2024 Fig. (%) –≥·", path) == []
    # The check can fail: matplotlib's bundled DejaVu Sans has none of these glyphs.
    from matplotlib import font_manager

    dejavu = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    assert len(fonts.missing_glyphs(labels, dejavu)) == len(set(labels))

    name = fonts.use_cjk_font()
    assert name == fonts.FAMILY
    assert Path(font_manager.findfont(font_manager.FontProperties(family=name))) == path

    import matplotlib.pyplot as plt

    def render(text):
        fig = plt.figure(figsize=(1, 1), dpi=100)
        fig.text(0.1, 0.2, text, fontsize=48)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., 0].copy()
        plt.close(fig)
        return pixels

    glyphs = [render(ch) for ch in "丹青图"]
    for pixels in glyphs:
        assert (pixels < 128).sum() > 100  # ink, not an empty glyph
    # Missing glyphs would all be drawn as the same box ("tofu").
    assert not np.array_equal(glyphs[0], glyphs[1]) and not np.array_equal(glyphs[1], glyphs[2])


# ---------------------------------------------------------------------------- helpers


def test_histogram_bins_overflow_and_underflow():
    left, right, counts = plotting.histogram(
        np.array([-5, 0, 99.9, 100, 250, 5000, np.nan]), [0, 100, 200]
    )
    assert left == [-math.inf, 0, 100, 200] and right == [0, 100, 200, math.inf]
    assert counts == [1, 2, 1, 2]


def test_sample_counts_are_proportional_and_exact():
    assert sampling.sample_counts([10, 30, 60], 1000) == [10, 30, 60]
    take = sampling.sample_counts([10, 30, 61], 50)
    assert sum(take) == 50 and take == [5, 15, 30]


def test_compare_reader_checks_columns(tmp_path):
    pl.DataFrame({"url": ["u"], "alt_text": ["中文"], "original_width": [300]}).write_parquet(
        tmp_path / "w.parquet"
    )
    frame = sampling.read_compare(str(tmp_path / "w.parquet"))
    assert "width" in frame.columns
    pl.DataFrame({"url": ["u"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="alt_text"):
        sampling.read_compare(str(tmp_path / "bad.parquet"))
    with pytest.raises(FileNotFoundError):
        sampling.read_compare(str(tmp_path / "none*.parquet"))


# ---------------------------------------------------------------------------- Fig. 2


def test_fig2_numbers_match_the_shards(tmp_path, cfg):
    rng = np.random.default_rng(0)
    frames = []
    for n in (40, 25):
        w = rng.integers(60, 3000, n)
        h = rng.integers(60, 3000, n)
        frames.append(
            pl.DataFrame(
                {
                    "uid": [f"x{i}" for i in range(n)],
                    "original_width": w,
                    "original_height": h,
                    "alt_text": ["字" * k for k in rng.integers(5, 61, n)],
                }
            )
        )
    paths = write_shards(tmp_path / "shards", frames)
    png, csv = tmp_path / "fig2.png", tmp_path / "fig2.csv"
    sizes.build_fig2(paths, png, csv, cfg)
    numbers = pl.read_csv(csv)
    data = pl.concat(frames)
    edges = cfg["size_bins"]
    for panel, values in (
        ("width", data["original_width"]),
        ("height", data["original_height"]),
        ("min_edge", np.minimum(data["original_width"], data["original_height"])),
    ):
        sub = numbers.filter(pl.col("panel") == panel)
        expected, _ = np.histogram(values, bins=[*edges, np.inf])
        assert sub["count"].to_list() == expected.tolist(), panel
        assert sub["bin_left"].to_list() == edges
    lengths = numbers.filter(pl.col("panel") == "caption_words")
    counts = Counter(data["alt_text"].str.len_chars().to_list())
    assert dict(zip(lengths["bin_left"].cast(int), lengths["count"], strict=True)) == {
        k: counts.get(k, 0) for k in range(min(counts), max(counts) + 1)
    }
    assert math.isclose(lengths["share"].sum(), 1.0)
    assert png_size(png)[0] > 1000 and png_size(png)[1] > 800  # four panels, 2 x 2


def test_fig2_text_only_leaves_out_image_panels(tmp_path, cfg):
    paths = write_shards(
        tmp_path / "s", [pl.DataFrame({"uid": ["a", "b"], "alt_text": CAPTIONS[:2]})]
    )
    numbers, notes = sizes.fig2_numbers(
        sampling.iter_columns(paths, ["original_width", "alt_text"]), [0, 100]
    )
    assert set(numbers["panel"]) == {"caption_words"} and numbers["count"].sum() == 2
    assert "no images were downloaded" in notes[0]


# ---------------------------------------------------------------------------- Fig. 4


def test_fig4a_semantic_density_matches_jieba_pos(tmp_path, cfg):
    paths = write_shards(
        tmp_path / "s",
        [pl.DataFrame({"uid": [str(i) for i in range(len(CAPTIONS))], "alt_text": CAPTIONS})],
    )
    other = tmp_path / "wukong.parquet"
    pl.DataFrame({"url": ["u"] * 3, "alt_text": ["的了吗", "今天天气很好", "图片"]}).write_parquet(
        other
    )
    numbers = semantic_density.build_fig4a(
        paths,
        tmp_path / "f.png",
        tmp_path / "f.csv",
        {**cfg, "compare": {"name": "Wukong", "parquet": str(other)}},
    )
    assert numbers.equals(pl.read_csv(tmp_path / "f.csv", schema=numbers.schema))

    shares = []
    for text in CAPTIONS:  # an independent count straight from jieba.posseg
        flags = [p.flag for p in jieba.posseg.lcut(text) if any(c.isalnum() for c in p.word)]
        shares.append([sum(f.startswith(x) for f in flags) / len(flags) for x in "nva"])
    shares = np.array(shares)
    ours = numbers.filter((pl.col("dataset") == cfg["name"]) & (pl.col("panel") == "pos_share"))
    assert np.allclose(ours["share"].to_numpy()[:3], shares.mean(axis=0))
    density = ours.filter(pl.col("category") == "noun+verb+adjective")["share"][0]
    assert math.isclose(density, shares.sum(axis=1).mean())
    hist = numbers.filter((pl.col("dataset") == cfg["name"]) & (pl.col("panel") == "density"))
    expected, _ = np.histogram(np.minimum(shares.sum(axis=1), 0.999999), bins=np.linspace(0, 1, 11))
    assert hist["count"].to_list() == expected.tolist()
    wukong = numbers.filter((pl.col("dataset") == "Wukong") & (pl.col("panel") == "density"))
    assert wukong["count"].sum() == 3


def tiny_masked_lm(folder: Path) -> Path:
    """A randomly initialised 2-layer BERT with Chinese-CLIP's real Chinese WordPiece vocab."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    from danqing import cnclip

    torch.manual_seed(0)
    tokenizer = BertTokenizer(vocab=str(cnclip.vocab_path()))
    model = BertForMaskedLM(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_fig4b_pseudo_perplexity_with_a_tiny_bert(tmp_path, cfg):
    import torch

    paths = write_shards(
        tmp_path / "s", [pl.DataFrame({"uid": list("abcdef"), "alt_text": CAPTIONS})]
    )
    # No model configured: the rule fails with a message naming the key (no "not available" figure).
    with pytest.raises(plotting.PerplexityModelMissing, match="figures.perplexity.model"):
        plotting.run_or_note(
            perplexity.build_fig4b,
            tmp_path / "x.png",
            tmp_path / "x.csv",
            "Fig. 4b",
            paths,
            cfg=cfg,
        )
    assert not (tmp_path / "x.png").exists()
    model_dir = tiny_masked_lm(tmp_path / "bert")
    tokenizer, model = perplexity.load_masked_lm(str(model_dir))
    texts = [CAPTIONS[0], CAPTIONS[3], ""]
    ppl = perplexity.pseudo_perplexity(texts, tokenizer, model, batch_size=5)
    for text, value in zip(texts[:2], ppl[:2], strict=True):  # one masked position at a time
        ids = tokenizer(text)["input_ids"]
        nll = []
        with torch.no_grad():
            for pos in range(1, len(ids) - 1):
                masked = torch.tensor([ids])
                masked[0, pos] = tokenizer.mask_token_id
                logp = torch.log_softmax(model(input_ids=masked).logits[0, pos], -1)
                nll.append(-logp[ids[pos]].item())
        assert math.isclose(value, math.exp(np.mean(nll)), rel_tol=1e-4)
    assert math.isnan(ppl[2])
    assert 5_000 < ppl[0] < 80_000  # untrained: about the vocabulary size (21,128)

    pcfg = {
        **cfg["perplexity"],
        "model": str(model_dir),
        "sample_rows": 4,
        "bins": [1, 1000, 20000],
    }
    numbers = perplexity.build_fig4b(
        paths, tmp_path / "p.png", tmp_path / "p.csv", {**cfg, "perplexity": pcfg}
    )
    assert numbers["count"].sum() == 4
    assert pl.read_csv(tmp_path / "p.csv")["count"].to_list() == numbers["count"].to_list()
    with pytest.raises(ValueError, match="not a Chinese model"):
        perplexity.check_vocabulary(tokenizer, ["ﺏﺕﺙ ﺝﺡﺥ"])


# ---------------------------------------------------------------------------- Figs. 6 and 7


def embedding_run(tmp_path, n_clusters=4, per=50, dim=16, text=True):
    """Final shards plus per-shard .npz embeddings that also hold rows the filters dropped."""
    rng = np.random.default_rng(1)
    centres = l2_normalise(rng.normal(size=(n_clusters, dim)))
    image = l2_normalise(
        np.repeat(centres, per, axis=0) + 0.02 * rng.normal(size=(n_clusters * per, dim))
    )
    txt = l2_normalise(image + 0.8 * rng.normal(size=image.shape))
    uids = np.array([f"p{i:04d}" for i in range(len(image))])
    kept = np.arange(len(image)) % 5 != 0  # every fifth pair was dropped after embedding
    half = len(image) // 2
    shards, npz = [], []
    for k, sl in enumerate((slice(0, half), slice(half, None))):
        frame = pl.DataFrame(
            {"uid": uids[sl][kept[sl]].tolist(), "alt_text": ["中文"] * int(kept[sl].sum())}
        )
        shards += write_shards(tmp_path / "shards" / f"b{k}", [frame])
        path = tmp_path / "emb" / f"b{k}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_embeddings(
            Embeddings(uids[sl].tolist(), image[sl], txt[sl] if text else None, "test"), path
        )
        npz.append(str(path))
    return shards, npz, image[kept], txt[kept], uids[kept]


def test_fig6_clusters_only_the_final_images(tmp_path, cfg):
    shards, npz, image, _, _ = embedding_run(tmp_path)
    other = tmp_path / "wukong.parquet"
    rng = np.random.default_rng(2)
    pl.DataFrame(
        {
            "url": ["u"] * 300,
            "alt_text": ["中"] * 300,
            "embeddings": rng.normal(size=(300, 16)).tolist(),
        }
    ).write_parquet(other)
    c = {
        **cfg,
        "clusters": {"k": 10_000, "niter": 10, "min_points_per_cluster": 20},
        "compare": {"name": "Wukong", "parquet": str(other)},
    }
    numbers = clusters.build_fig6(shards, npz, tmp_path / "f6.png", tmp_path / "f6.csv", c)
    assert numbers.equals(pl.read_csv(tmp_path / "f6.csv", schema=numbers.schema))
    for name in (cfg["name"], "Wukong"):
        sub = numbers.filter(pl.col("dataset") == name)
        # Equal-size samples (the 160 final images), k lowered to 160 // 20 = 8.
        assert sub["cluster_size"].sum() == len(image) == 160 and sub.height == 8
        assert sub["rank"].to_list() == list(range(1, 9))
        assert sub["cluster_size"].to_list() == sorted(sub["cluster_size"].to_list(), reverse=True)
    sizes, k = clusters.cluster_sizes(image, 4, min_points_per_cluster=1)
    assert k == 4 and sizes.sum() == 160


def test_fig7_similarity_histogram_matches_the_embeddings(tmp_path, cfg):
    shards, npz, image, txt, _ = embedding_run(tmp_path)
    numbers = similarity.build_fig7(
        shards, npz, tmp_path / "f7.png", tmp_path / "f7.csv", {**cfg, "similarity_bin_width": 0.05}
    )
    sims = np.einsum(
        "ij,ij->i", l2_normalise(image.astype(np.float16)), l2_normalise(txt.astype(np.float16))
    )
    edges = np.append(numbers["bin_left"].to_numpy(), numbers["bin_right"][-1])
    expected, _ = np.histogram(sims, bins=edges)
    assert numbers["count"].to_list() == expected.tolist() and numbers["count"].sum() == 160
    assert pl.read_csv(tmp_path / "f7.csv")["count"].to_list() == expected.tolist()


def test_fig7_without_a_text_tower_says_so(tmp_path, cfg):
    shards, npz, *_ = embedding_run(tmp_path, text=False)
    result = plotting.run_or_note(
        similarity.build_fig7,
        tmp_path / "f7.png",
        tmp_path / "f7.csv",
        "Fig. 7",
        shards,
        npz,
        cfg=cfg,
    )
    assert result is None
    assert "no text tower" in pl.read_csv(tmp_path / "f7.csv")["note"][0]
    assert png_size(tmp_path / "f7.png")[0] > 500
    # With the alignment step's distances, cos = 1 - d^2/2.
    d = np.array([0.9, 1.1, 1.2, 1.3])
    with_distance = write_shards(
        tmp_path / "d", [pl.DataFrame({"uid": list("abcd"), "alignment_distance": d})]
    )
    numbers = similarity.build_fig7(
        with_distance,
        [],
        tmp_path / "g.png",
        tmp_path / "g.csv",
        {**cfg, "similarity_bin_width": 0.1},
    )
    expected, _ = np.histogram(
        1 - d**2 / 2, bins=np.append(numbers["bin_left"], numbers["bin_right"][-1])
    )
    assert numbers["count"].to_list() == expected.tolist()


# ---------------------------------------------------------------------------- Fig. 11, Table 7


def test_word_cloud_counts_match_the_words(tmp_path, cfg):
    words = ["新款 手机 发布 的 2024", "手机 新款 推荐", "新款 a 的"]
    paths = write_shards(
        tmp_path / "s", [pl.DataFrame({"uid": ["1", "2", "3"], "alt_text": words, "words": words})]
    )
    stop = tmp_path / "stop.txt"
    stop.write_text("的\n推荐\n", encoding="utf-8")
    numbers = wordcloud.build_wordcloud(
        paths,
        tmp_path / "w.png",
        tmp_path / "w.csv",
        {**cfg, "wordcloud": {**cfg["wordcloud"], "width": 400, "height": 300}},
        stop_lists=[str(stop)],
    )
    assert dict(zip(numbers["word"], numbers["count"], strict=True)) == {
        "新款": 3,
        "手机": 2,
        "发布": 1,
        "2024": 1,
    }
    assert numbers["rank"].to_list() == [1, 2, 3, 4]
    assert pl.read_csv(tmp_path / "w.csv")["word"].to_list() == numbers["word"].to_list()
    assert png_size(tmp_path / "w.png")[0] == 400


def test_top_domains_counts_and_shares(tmp_path, cfg):
    domains = ["alicdn.com"] * 5 + ["baidu.com"] * 3 + ["wp.com"] * 2 + ["a.cn", "b.cn"]
    paths = write_shards(
        tmp_path / "s",
        [pl.DataFrame({"domain": domains[:7]}), pl.DataFrame({"domain": domains[7:]})],
    )
    out = {k: tmp_path / f"t7.{k}" for k in ("csv", "md", "html")}
    top_domains.build_top_domains(
        paths, out["csv"], out["md"], out["html"], {**cfg, "top_domains": 3}
    )
    table = pl.read_csv(out["csv"])
    assert table["source_domain"].to_list() == ["alicdn.com", "baidu.com", "wp.com"]
    assert table["total_count"].to_list() == [5, 3, 2]
    assert table["share_pct"].to_list() == [41.67, 25.0, 16.67]
    assert "| 1 | alicdn.com | 5 | 41.67% |" in out["md"].read_text()
    assert (
        "10 of 12 pairs" in out["md"].read_text()
        and "<td>alicdn.com</td>" in out["html"].read_text()
    )


# ---------------------------------------------------------------------------- topics


def test_class_tfidf_by_hand():
    docs = [["猫", "狗"], ["猫", "猫"], ["鱼"]]
    weights = topics.class_tfidf(docs, [0, 0, 1], top_n=3)
    # class 0: 猫 x3, 狗 x1 (4 words); class 1: 鱼 x1; A = 2.5 words per class.
    assert weights[0][0][0] == "猫"
    assert math.isclose(weights[0][0][1], 3 / 4 * math.log(1 + 2.5 / 3))
    assert math.isclose(dict(weights[0])["狗"], 1 / 4 * math.log(1 + 2.5 / 1))
    assert weights[1] == [("鱼", pytest.approx(1.0 * math.log(1 + 2.5)))]


def test_topic_model_finds_separated_topics():
    rng = np.random.default_rng(3)
    vocab = [["手机", "屏幕", "性能"], ["美食", "做法", "好吃"], ["旅游", "风景", "游客"]]
    words, vectors = [], []
    for t, topic_words in enumerate(vocab):
        centre = np.eye(5)[t] * 10
        for _ in range(30):
            words.append(list(rng.choice(topic_words, 4)) + ["新款"])
            vectors.append(centre + rng.normal(size=5))
    # 5-dimensional embeddings: UMAP to 5 dimensions is skipped, HDBSCAN clusters directly.
    labels, table = topics.topic_model(
        words, np.array(vectors), min_cluster_size=10, n_components=5, keywords=3
    )
    found = table.filter(pl.col("topic") >= 0)
    assert found.height == 3 and found["size"].to_list() == [30, 30, 30]
    assert sorted(frozenset(k.split()) for k in found["keywords"]) == sorted(
        frozenset(v) for v in vocab
    )
