"""Release shards: Parquet + WebDataset round trip on real images, manifest, dataset card."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
import pytest
import skimage
import yaml
from PIL import Image

from danqing import release
from danqing.report import card

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
MPL_DATA = Path(matplotlib.get_data_path()) / "sample_data"


def real_images() -> list[tuple[str, bytes]]:
    """Photos that ship inside the installed wheels: JPEG files as they are, PNG files as they
    are and re-encoded to JPEG (the download stage stores either)."""
    out = []
    for path in [
        MPL_DATA / "grace_hopper.jpg",
        SKIMAGE_DATA / "rocket.jpg",
        SKIMAGE_DATA / "retina.jpg",
        SKIMAGE_DATA / "hubble_deep_field.jpg",
    ]:
        out.append((path.name, path.read_bytes()))
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "camera.png"):
        data = (SKIMAGE_DATA / name).read_bytes()
        out.append((name, data))
        buffer = io.BytesIO()
        Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=85)
        out.append((name.replace(".png", ".jpg"), buffer.getvalue()))
    return out


def image_store(tmp_path: Path, n_tars: int = 2):
    """Tars of images in the download stage's layout and the shard rows that point into them."""
    images = real_images()
    rows = []
    for i, (name, data) in enumerate(images):
        tar_path = tmp_path / "store" / f"{i % n_tars:05d}.tar"
        tar_path.parent.mkdir(parents=True, exist_ok=True)
        member = f"{i:09d}.{name.rsplit('.', 1)[1]}"
        with tarfile.open(tar_path, "a") as tar:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        width, height = Image.open(io.BytesIO(data)).size
        rows.append(
            {
                "uid": f"u{i:03d}" if i % 3 else f"cc/{i}.x",  # some uids are not file-name safe
                "url": f"https://img.example.cn/{name}",
                "alt_text": f"真实图片 {name} 第{i}张",
                "alt_text_raw": f"真实图片 {name} 第{i}张!!",
                "page_url": "https://www.example.cn/",
                "domain": "example.cn",
                "languages": "zho",
                "crawl": "CC-MAIN-2024-10",
                "batch": "b1",
                "words": f"真实 图片 {i}",
                "word_count": 3,
                "chinese_score": 0.9 - i / 100,
                "text_safety_score": None,
                "image_tar": str(tar_path),
                "image_member": member,
                "original_width": width,
                "original_height": height,
                "width": width,
                "height": height,
                "image_sha256": hashlib.sha256(data).hexdigest(),
                "image_format": name.rsplit(".", 1)[1],
                "img_blur": 1500.0 + i,
            }
        )
    return pl.DataFrame(rows), dict(images)


def tar_reader(frame: pl.DataFrame):
    """The read_images(frame) -> (uid, bytes) contract, over plain tarfile."""
    for (tar_path,), group in frame.group_by("image_tar", maintain_order=True):
        with tarfile.open(tar_path) as tar:
            for uid, member in zip(group["uid"], group["image_member"], strict=True):
                yield uid, tar.extractfile(member).read()


def readers():
    out = [pytest.param(tar_reader, id="tarfile")]
    try:
        from danqing.images.store import read_images, read_images_in_order
    except ImportError:
        return out
    return out + [
        pytest.param(read_images, id="danqing.images.store"),
        pytest.param(read_images_in_order, id="in_order"),
    ]


CARD_CFG = {
    "license": "cc-by-4.0",
    "pretty_name": "DanQing test",
    "tags": ["chinese"],
    "task_categories": ["image-to-text", "text-to-image"],
}
TABLE_MD = "| Stage | Steps |\n|---|---|\n|  | Final image-text pairs |\n"


def build_release(tmp_path, frame, reader, images=True, tar_samples=3, parquet_rows=4):
    shards = [frame.head(frame.height // 2), frame.slice(frame.height // 2)]
    records = []
    for k, shard in enumerate(shards):
        part = tmp_path / "parts" / "b1" / f"s{k:05d}"
        records.append(
            release.write_part(
                shard,
                f"{part}.parquet",
                f"{part}.json",
                f"{part}.wds" if images else None,
                prefix=f"b1-s{k:05d}",
                tar_samples=tar_samples,
                tar_max_bytes=10**9,
                read_images=reader,
            )
        )
    out = tmp_path / "dataset"
    manifest = release.assemble(records, out, parquet_rows=parquet_rows, images=images)
    release.write_manifest(manifest, out / "manifest.json")
    return out, manifest


def read_tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, ext = member.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


@pytest.mark.parametrize("reader", readers())
def test_round_trip_every_tar_key_has_its_row_and_sha256(tmp_path, reader):
    frame, _ = image_store(tmp_path)
    out, manifest = build_release(tmp_path, frame, reader)

    assert release.verify(out) == {"parquet": frame.height, "webdataset": frame.height}
    parquet_files = sorted((out / "data").glob("train-*.parquet"))
    tars = sorted((out / "webdataset").glob("train-*.tar"))
    n = frame.height
    assert [p.name for p in parquet_files] == [
        f"train-{i:05d}-of-{-(-n // 4):05d}.parquet" for i in range(-(-n // 4))
    ]
    assert len(tars) > 2 and all(t.name.endswith(f"-of-{len(tars):05d}.tar") for t in tars)
    rows = pl.concat([pl.read_parquet(p) for p in parquet_files])
    assert rows.height == n and rows["uid"].n_unique() == n
    assert not {"image_tar", "image_member", "words"} & set(rows.columns)
    assert rows.schema["text_safety_score"] == pl.Float64  # all-null score keeps a real type
    assert rows.columns[:4] == ["uid", "key", "url", "alt_text"] and "img_blur" in rows.columns

    by_key = {r["key"]: r for r in rows.iter_rows(named=True)}
    seen = set()
    for tar in tars:
        samples = read_tar_samples(tar)
        assert all(len(s) == 3 for s in samples.values())
        assert len(samples) <= 3  # tar_samples
        for key, sample in samples.items():
            row = by_key[key]  # every tar key has its Parquet row
            image = sample.get("jpg", sample.get("png"))
            assert hashlib.sha256(image).hexdigest() == row["image_sha256"]
            assert sample["txt"].decode() == row["alt_text"]
            meta = json.loads(sample["json"])
            assert meta["uid"] == row["uid"] and meta["image_sha256"] == row["image_sha256"]
            assert row["wds_shard"] == f"webdataset/{tar.name}"
            seen.add(key)
    assert seen == set(by_key)  # and every row has its sample
    original = dict(zip(frame["uid"], frame["image_sha256"], strict=True))
    assert {r["uid"]: r["image_sha256"] for r in by_key.values()} == original
    assert all(release.sample_key(u) == k for u, k in zip(rows["uid"], rows["key"], strict=True))
    assert manifest["samples"] == n and manifest["images"] is True


def test_webdataset_reads_the_tars(tmp_path):
    import webdataset as wds

    frame, images = image_store(tmp_path)
    out, _ = build_release(tmp_path, frame, tar_reader)
    rows = pl.read_parquet(out / "data")
    sizes = dict(zip(rows["key"], zip(rows["width"], rows["height"], strict=True), strict=True))
    urls = [str(p) for p in sorted((out / "webdataset").glob("*.tar"))]
    count = 0
    for key, image, caption in (
        wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg;png", "txt")
    ):
        assert image.size == sizes[key]
        assert caption == rows.filter(pl.col("key") == key)["alt_text"][0]
        count += 1
    assert count == len(images)


def test_a_changed_or_missing_image_is_an_error(tmp_path):
    frame, _ = image_store(tmp_path)
    bad = frame.with_columns(
        pl.when(pl.col("uid") == "u001")
        .then(pl.lit("0" * 64))
        .otherwise(pl.col("image_sha256"))
        .alias("image_sha256")
    )
    with pytest.raises(release.ReleaseError, match="u001"):
        release.write_part(
            bad,
            tmp_path / "p.parquet",
            tmp_path / "p.json",
            tmp_path / "p.wds",
            read_images=tar_reader,
        )

    def losing_reader(f):
        return (item for item in tar_reader(f) if item[0] != "u002")

    with pytest.raises(release.ReleaseError, match="no image"):
        release.write_part(
            frame,
            tmp_path / "p.parquet",
            tmp_path / "p.json",
            tmp_path / "p.wds",
            read_images=losing_reader,
        )
    assert not (tmp_path / "p.wds").exists() and not (tmp_path / "p.parquet").exists()


def test_tar_size_limit_and_byte_identical_rerun(tmp_path):
    frame, images = image_store(tmp_path)
    biggest = max(len(d) for d in images.values())
    a = release.write_part(
        frame,
        tmp_path / "a.parquet",
        tmp_path / "a.json",
        tmp_path / "a.wds",
        tar_samples=100,
        tar_max_bytes=biggest * 2,
        read_images=tar_reader,
    )
    assert len(a["tars"]) > 1 and sum(t["rows"] for t in a["tars"]) == frame.height
    for t in a["tars"]:
        assert t["rows"] == 1 or t["bytes"] <= biggest * 2 + 20 * 1024
    b = release.write_part(
        frame,
        tmp_path / "b.parquet",
        tmp_path / "b.json",
        tmp_path / "b.wds",
        tar_samples=100,
        tar_max_bytes=biggest * 2,
        read_images=tar_reader,
    )
    assert [t["sha256"] for t in a["tars"]] == [t["sha256"] for t in b["tars"]]


def test_sample_keys_are_safe_and_distinct():
    assert release.sample_key("dq1150000000") == "dq1150000000"
    odd = ["a.b", "a_b", "a/b", "网址.1"]
    keys = [release.sample_key(u) for u in odd]
    assert len(set(keys)) == 4 and keys[1] == "a_b"
    assert all("." not in k and "/" not in k for k in keys)
    # An escaped key is never a plain uid, so a uid spelled like another's key keeps its own.
    escaped = release.sample_key("x/y")
    assert release.sample_key(escaped) != escaped
    assert len({release.sample_key(u) for u in ["x/y", "x_y", escaped, "x_y_748fdbd6c0"]}) == 4
    # Bounded length, distinct however long and however alike the uids are.
    long = ["a" * 5000, "a" * 4999 + "b", "a" * 97, "a" * 96]
    keys = [release.sample_key(u) for u in long]
    assert len(set(keys)) == 4 and max(map(len, keys)) <= release.MAX_KEY_CHARS
    assert keys[3] == "a" * 96


def test_tars_are_byte_identical_whatever_order_the_downloads_stored_images_in(tmp_path):
    """Two releases of one shard whose store tars hold the same images in other orders (the
    order img2dataset's threads finish in) give equal tars, members in key order."""
    frame, images = image_store(tmp_path)
    first_dir, first = build_release(tmp_path / "first", frame, None)
    for tar_path in {Path(p) for p in frame["image_tar"]}:
        with tarfile.open(tar_path) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        tar_path.unlink()
        with tarfile.open(tar_path, "w") as tar:
            for member, data in reversed(members):
                tar.addfile(member, io.BytesIO(data))
    _, second = build_release(tmp_path / "second", frame, None)

    def tar_digests(manifest):
        return [(f["path"], f["sha256"]) for f in manifest["files"]]

    assert tar_digests(first) == tar_digests(second) and tar_digests(first)
    for path in sorted((first_dir / "webdataset").glob("*.tar")):
        with tarfile.open(path) as tar:
            keys = [m.name.split(".", 1)[0] for m in tar.getmembers()]
        assert keys == sorted(keys)


def test_text_only_release_and_its_card(tmp_path):
    frame = pl.DataFrame(
        {
            "uid": [f"u{i}" for i in range(7)],
            "url": ["http://x.cn/a.jpg"] * 7,
            "alt_text": ["中文标题"] * 7,
            "domain": ["x.cn"] * 7,
            "words": ["中文 标题"] * 7,
            "text_entropy": np.linspace(0.1, 0.7, 7),
        }
    )
    out, manifest = build_release(tmp_path, frame, reader=None, images=False, parquet_rows=5)
    assert not (out / "webdataset").exists()
    assert manifest["webdataset_files"] == 0 and manifest["parquet_files"] == 2
    assert release.verify(out) == {"parquet": 7}
    text = card.render(manifest, TABLE_MD, 70, CARD_CFG)
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "cc-by-4.0" and header["language"] == ["zh"]
    assert header["size_categories"] == ["n<1K"]
    assert [c["config_name"] for c in header["configs"]] == ["default"]
    assert "Text only" in text and "7 Chinese image-text pairs (10.00% of 70" in text
    assert TABLE_MD.strip() in text and "load_dataset" in text and "import webdataset" not in text


def test_card_with_images_tells_how_to_load_both_formats(tmp_path):
    frame, _ = image_store(tmp_path)
    out, manifest = build_release(tmp_path, frame, tar_reader)
    text = card.render(manifest, TABLE_MD, None, {**CARD_CFG, "license": "other"})
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "other"
    assert header["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
        }
    ]
    n_tars = manifest["webdataset_files"]
    pattern = f"webdataset/train-{{00000..{n_tars - 1:05d}}}-of-{n_tars:05d}.tar"
    assert pattern in text and "Text only" not in text
    import braceexpand

    expanded = list(braceexpand.braceexpand(pattern))
    assert expanded == [f["path"] for f in manifest["files"] if f["kind"] == "webdataset"]


@pytest.mark.parametrize(
    "n, label",
    [
        (0, "n<1K"),
        (999, "n<1K"),
        (1000, "1K<n<10K"),
        (99_892_381, "10M<n<100M"),
        (10**9, "1B<n<10B"),
    ],
)
def test_size_category(n, label):
    assert release.size_category(n) == label


def test_the_card_loads_with_the_datasets_library(tmp_path, monkeypatch):
    """Every `configs` entry of the card, and the tars as the card says to load them, through
    the real `datasets` (offline: the folder is local)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    frame, images = image_store(tmp_path)
    out, manifest = build_release(tmp_path, frame, None)
    text = card.render(manifest, TABLE_MD, None, CARD_CFG)
    (out / "README.md").write_text(text, encoding="utf-8")
    cache = str(tmp_path / "hf-cache")
    for config in yaml.safe_load(text.split("---\n")[1])["configs"]:
        loaded = datasets.load_dataset(
            str(out), config["config_name"], split="train", cache_dir=cache
        )
        assert loaded.num_rows == frame.height
        assert sorted(loaded["uid"]) == sorted(frame["uid"])
    tars = datasets.load_dataset(
        "webdataset", data_files=str(out / "webdataset" / "*.tar"), split="train", cache_dir=cache
    )
    assert tars.num_rows == frame.height
    assert sorted(tars["__key__"]) == sorted(release.sample_key(u) for u in frame["uid"])
