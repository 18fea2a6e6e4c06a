import numpy as np
import polars as pl
import pytest

from danqing import config
from danqing.dedup import dedup
from danqing.embed import Embeddings, alignment_frame
from danqing.filters import image, registry
from danqing.images.metrics import METRICS_SCHEMA, metrics_frame
from danqing.io import write_parquet
from tests.conftest import pairs
from tests.test_image_metrics import encode, photo, png

CFG = config.load()["filters"]
IMAGE_STEPS = [
    "image_geometry",
    "low_textual_images",
    "blurry_images",
    "image_entropy",
    "exact_dedup",
    "semantic_dedup",
    "image_safety",
    "cross_modal_alignment",
    "cross_batch_dedup",
]


def shard(n, **columns):
    return pairs([f"图片说明{i}" for i in range(n)], **columns)


def test_every_image_filter_is_registered_and_handles_an_empty_shard():
    funcs = registry()
    for step in IMAGE_STEPS:
        result = funcs[step](shard(0), CFG[step])
        assert result.kept.height == 0 and result.dropped.height == 0, step


def test_image_geometry_uses_the_original_size_and_drops_undecodable_images(tmp_path):
    sharp = encode(photo("chelsea"))
    df = shard(
        7,
        original_width=[500, 100, 101, 1000, 303, None, 640],
        original_height=[400, 400, 303, 300, 101, None, 480],
    )
    images = [(u, sharp) for u in df["uid"].to_list()]
    images[6] = ("u6", b"\x89PNG\r\n\x1a\n broken")
    write_parquet(metrics_frame(images, processes=1), tmp_path / "metrics.parquet")
    result = image.image_geometry(df, CFG["image_geometry"], metrics=tmp_path / "metrics.parquet")
    # 101x303 is exactly 1:3 and its shorter edge > 100: kept; u5 has no original size, so the
    # decoded 451x300 is used.
    assert result.kept["uid"].to_list() == ["u0", "u2", "u4", "u5"]
    drops = {r["uid"]: (r["reason"], r["value"]) for r in result.dropped.to_dicts()}
    assert drops["u1"] == ("min_edge", "100")
    assert drops["u3"][0] == "aspect_ratio" and float(drops["u3"][1]) == pytest.approx(
        10 / 3, rel=1e-5
    )
    assert drops["u6"][0] == "undecodable_image" and "UndecodableImage" in drops["u6"][1]
    assert set(METRICS_SCHEMA) <= set(result.kept.columns)  # metrics travel with the rows
    assert result.kept["img_width"].to_list() == [451] * 4


def test_a_uid_missing_from_the_metrics_is_an_error(tmp_path):
    df = shard(2, original_width=[500, 500], original_height=[400, 400])
    write_parquet(
        metrics_frame([("u0", encode(photo("coffee")))], processes=1), tmp_path / "m.parquet"
    )
    with pytest.raises(ValueError, match="no row for 1 uids"):
        image.image_geometry(df, CFG["image_geometry"], metrics=tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="metrics input is missing|image metric columns"):
        image.image_geometry(df, CFG["image_geometry"])


def with_metrics(std, blur, entropy, gray_entropy=None):
    n = len(std)
    return shard(
        n,
        img_width=[500] * n,
        img_height=[400] * n,
        img_std=std,
        img_blur=blur,
        img_entropy=gray_entropy or entropy,
        img_entropy_rgb=entropy,
        img_error=[None] * n,
    )


def test_quality_thresholds_keep_values_at_the_bound():
    df = with_metrics(
        std=[2.0, 1.999, 50.0, 50.0, 50.0, 50.0],
        blur=[5000.0, 5000.0, 1000.0, 999.9, 5000.0, 5000.0],
        entropy=[7.0, 7.0, 7.0, 7.0, 3.0, 2.99],
    )
    low = image.low_textual_images(df, CFG["low_textual_images"])
    assert low.dropped.select("uid", "reason", "value").rows() == [("u1", "low_pixel_std", "1.999")]
    blur = image.blurry_images(low.kept, CFG["blurry_images"])
    assert blur.dropped.select("uid", "reason", "value").rows() == [("u3", "blurry", "999.9")]
    ent = image.image_entropy(blur.kept, CFG["image_entropy"])
    assert ent.dropped.select("uid", "reason", "value").rows() == [("u5", "low_entropy", "2.99")]
    assert ent.kept["uid"].to_list() == ["u0", "u2", "u4"]


def test_image_entropy_reads_the_configured_measure():
    df = with_metrics(
        std=[50.0] * 2, blur=[5000.0] * 2, entropy=[4.05, 1.58], gray_entropy=[2.45, 0.0]
    )
    assert image.image_entropy(df, CFG["image_entropy"]).kept["uid"].to_list() == ["u0"]
    gray = image.image_entropy(df, {**CFG["image_entropy"], "measure": "gray"})
    assert gray.kept.height == 0


def test_quality_filters_can_join_the_metrics_themselves(tmp_path):
    df = shard(2)
    flat = png(np.full((200, 300), 90))
    write_parquet(
        metrics_frame([("u0", encode(photo("rocket"))), ("u1", flat)], processes=1),
        tmp_path / "m.parquet",
    )
    result = image.low_textual_images(df, CFG["low_textual_images"], metrics=tmp_path / "m.parquet")
    assert result.kept["uid"].to_list() == ["u0"]
    assert result.dropped.select("reason", "value").rows() == [("low_pixel_std", "0")]


def test_semantic_and_cross_batch_dedup_apply_the_decisions(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 32))
    vectors = np.stack([a, a + 0.01 * rng.standard_normal(32), b, a]).astype(np.float32)
    df = shard(4)
    clusters, _ = dedup(df["uid"].to_list(), vectors)
    write_parquet(clusters, tmp_path / "clusters.parquet")
    kept_uid = clusters.filter(clusters["keep"] & (clusters["cluster_size"] == 3))["uid"][0]
    for step in ("semantic_dedup", "cross_batch_dedup"):
        result = registry()[step](df, CFG[step], clusters=tmp_path / "clusters.parquet")
        assert sorted(result.kept["uid"].to_list()) == sorted([kept_uid, "u2"])
        assert result.dropped["reason"].unique().to_list() == ["duplicate"]
        assert set(result.dropped["value"].to_list()) == {kept_uid}
        assert "keep" not in result.kept.columns
    with pytest.raises(ValueError, match="no row for"):
        image.semantic_dedup(
            shard(5), CFG["semantic_dedup"], clusters=tmp_path / "clusters.parquet"
        )


def test_a_shard_reads_only_its_own_rows_of_the_batch_decisions(tmp_path):
    rng = np.random.default_rng(1)
    batch = pairs([f"说明{i}" for i in range(40)])
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    vectors[30] = vectors[3]
    clusters, _ = dedup(batch["uid"].to_list(), vectors)
    path = tmp_path / "clusters.parquet"
    write_parquet(clusters, path)
    mine = batch[:5]
    table = image._read(path, "dedup decisions", ["uid"], uids=mine["uid"])
    assert sorted(table["uid"].to_list()) == sorted(mine["uid"].to_list())
    result = image.semantic_dedup(mine, CFG["semantic_dedup"], clusters=path)
    # Row 3's duplicate lives in another shard: the decision still reaches this one.
    assert result.kept.height + result.dropped.height == 5
    third = clusters.filter(pl.col("uid") == mine["uid"][3])
    assert (mine["uid"][3] in result.kept["uid"].to_list()) == third["keep"][0]
    assert third["cluster_size"][0] == 2
    write_parquet(pl.concat([clusters, clusters[3:4]]), path)
    with pytest.raises(ValueError, match="duplicate uids"):
        image.semantic_dedup(mine, CFG["semantic_dedup"], clusters=path)


def test_image_safety_threshold_and_unscored_images(tmp_path):
    df = shard(4)
    scores = pl.DataFrame(
        {
            "uid": ["u0", "u1", "u2", "u3"],
            "nsfw_score": [0.01, 0.8, 0.79, None],
            "nsfw_error": [None, None, None, "OSError: broken"],
        },
        schema={"uid": pl.String, "nsfw_score": pl.Float32, "nsfw_error": pl.String},
    )
    write_parquet(scores, tmp_path / "scores.parquet")
    result = image.image_safety(df, CFG["image_safety"], scores=tmp_path / "scores.parquet")
    assert result.kept["uid"].to_list() == ["u0", "u2"]
    assert result.dropped.select("uid", "reason").rows() == [
        ("u1", "nsfw"),
        ("u3", "nsfw_unscored"),
    ]
    assert result.dropped["value"].to_list() == ["0.8", "OSError: broken"]
    assert "nsfw_score" in result.kept.columns


def test_alignment_window_edges_are_kept(tmp_path):
    df = shard(5)
    distances = pl.DataFrame(
        {
            "uid": df["uid"],
            "distance": [1.06, 1.24, 1.0599, 1.2401, 1.15],
            "model": ["chinese-clip-ViT-L-14"] * 5,
        }
    )
    write_parquet(distances, tmp_path / "d.parquet")
    result = image.cross_modal_alignment(
        df, CFG["cross_modal_alignment"], distances=tmp_path / "d.parquet"
    )
    assert result.status == "ran"
    assert result.kept["uid"].to_list() == ["u0", "u1", "u4"]
    assert result.dropped.select("uid", "reason").rows() == [
        ("u2", "below_alignment_window"),
        ("u3", "above_alignment_window"),
    ]


def test_alignment_is_not_run_without_a_text_tower(tmp_path):
    df = shard(3)
    emb = Embeddings(df["uid"].to_list(), np.eye(3, dtype=np.float16), None, "efficientnet-lite0")
    write_parquet(alignment_frame(emb), tmp_path / "d.parquet")
    result = image.cross_modal_alignment(
        df, CFG["cross_modal_alignment"], distances=tmp_path / "d.parquet"
    )
    assert result.status == "not_run" and result.kept.height == 3 and result.dropped.height == 0
    assert "efficientnet-lite0" in result.note and "no text tower" in result.note


def test_exact_dedup_keeps_the_first_of_each_set_of_identical_images(tmp_path):
    from danqing.images.shard_jobs import exact_clusters

    digests = {"b1-s0": ["aa", "bb", "aa"], "b1-s1": ["cc", "aa", "bb"]}
    paths = []
    for name, shas in digests.items():
        frame = shard(len(shas), image_sha256=shas).with_columns(
            pl.format(f"{name}-{{}}", pl.col("uid")).alias("uid")
        )
        frame.write_parquet(tmp_path / f"{name}.parquet")
        paths.append(str(tmp_path / f"{name}.parquet"))
    clusters = tmp_path / "exact.parquet"
    stats = exact_clusters(paths, str(clusters), str(tmp_path / "exact.json"))
    assert stats == {"input": 6, "sets": 2, "removed": 3, "kept": 3}
    kept, dropped = [], []
    for path in paths:
        result = image.exact_dedup(pl.read_parquet(path), CFG["exact_dedup"], clusters=clusters)
        kept += result.kept["uid"].to_list()
        dropped += result.dropped.select("uid", "reason", "value").rows()
    assert kept == ["b1-s0-u0", "b1-s0-u1", "b1-s1-u0"]
    assert dropped == [
        ("b1-s0-u2", "identical_image", "b1-s0-u0"),
        ("b1-s1-u1", "identical_image", "b1-s0-u0"),
        ("b1-s1-u2", "identical_image", "b1-s0-u1"),
    ]
