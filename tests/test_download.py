"""The download_images stage against the demo image server: real HTTP, real img2dataset."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from danqing.config import load
from danqing.demo import corpus, images
from danqing.demo.server import serve
from danqing.download import classify_error, download_shard, looks_like_image, partial_dir
from danqing.images.store import MissingImageError, read_images
from tests.conftest import ROOT, make_workdir, run_snakemake

# What each failing case must be dropped as; every other case is kept.
EXPECTED_DROP = {
    "http_404": "download:http_404",
    "http_500": "download:http_500",
    "timeout": "download:timeout",
    "truncated": "download:decode_error",
    "not_image": "download:not_image",
    "opted_out": "download:opted_out",
}
PER_CASE = 4
# 70 rows in 5 tars: img2dataset restarts a worker process after 5 tars (maxtasksperchild), which
# costs a second library import; 5 tars stay within one worker's life.
SAMPLES_PER_TAR = 15
TEST_SETTINGS = {
    "processes": 1,
    "thread_count": 8,
    "timeout": 2,
    "retries": 0,
    "samples_per_tar": SAMPLES_PER_TAR,
}


# The demo image server is on 127.0.0.1, which only an explicit allowance lets a download reach.
LOOPBACK = {"allowed_networks": ["127.0.0.1/32"]}


def download_cfg(**extra) -> dict:
    return load()["filters"]["download_images"] | TEST_SETTINGS | extra


def case_slice(port: int) -> pl.DataFrame:
    """PER_CASE clean demo rows of every image case, plus opted-out images, as a shard frame.

    Rows are ordered so that every tar holds one `timeout` row: each tar then takes at least the
    download timeout, which leaves the kill-and-resume test time to kill between tars.
    """
    rows = corpus.generate(4000, 20260115, port)
    picked: dict[str, list[corpus.DemoRow]] = {}
    for row in rows:
        if row.category == "clean" and len(picked.setdefault(row.image_case, [])) < PER_CASE:
            picked[row.image_case].append(row)
    assert set(picked) == set(corpus.IMAGE_CASES), "the corpus slice misses an image case"
    records = [
        {
            "uid": r.uid,
            "url": r.url,
            "alt_text": r.alt_text,
            "image_case": r.image_case,
            "expected_step": r.expected_step,
            "page_url": r.page_url,
            "domain": r.domain,
            "languages": r.languages,
            "crawl": r.crawl,
            "batch": r.batch,
        }
        for case in sorted(picked)
        for r in picked[case]
    ]
    for i in range(2):
        records.append(
            {
                **records[0],
                "uid": f"optout{i}",
                "image_case": "opted_out",
                "expected_step": "download_images",
                "url": f"http://127.0.0.1:{port}/img.example.cn/opted_out/9{i:05d}.jpg",
            }
        )
    timeouts = [r for r in records if r["image_case"] == "timeout"]
    others = [r for r in records if r["image_case"] != "timeout"]
    ordered = []
    while timeouts or others:
        if timeouts:
            ordered.append(timeouts.pop())
        ordered.extend(others[: SAMPLES_PER_TAR - 1])
        others = others[SAMPLES_PER_TAR - 1 :]
    return pl.DataFrame(ordered)


@pytest.fixture(scope="module")
def server():
    with serve(0, slow_seconds=6) as srv:
        yield srv


@pytest.fixture(scope="module")
def shard(server):
    frame = case_slice(server.port)
    # The server renders an image on its first request; a 6000x4000 JPEG takes about a second
    # (several on a busy machine), which must not count against the 2 s download timeout here.
    for url in frame.filter(pl.col("image_case") == "huge")["url"]:
        server.cache.get("huge", url.rsplit("/", 1)[1][: -len(".jpg")])
    return frame


@pytest.fixture(scope="module")
def reference(server, shard, tmp_path_factory):
    """One uninterrupted download of the slice."""
    images_dir = tmp_path_factory.mktemp("reference") / "images" / "b1" / "s00000"
    result = download_shard(
        shard.select("uid", "url", "alt_text"),
        download_cfg(),
        images_dir,
        processes=1,
        network=LOOPBACK,
    )
    return result, images_dir


def test_kept_and_dropped_exactly_as_labelled(shard, reference):
    result, _ = reference
    assert result.kept.height + result.dropped.height == shard.height
    case = dict(zip(shard["uid"], shard["image_case"], strict=True))
    expected_kept = {
        u
        for u, s in zip(shard["uid"], shard["expected_step"], strict=True)
        if s != "download_images"
    }
    assert set(result.kept["uid"]) == expected_kept
    for uid, reason, value in result.dropped.select("uid", "reason", "value").iter_rows():
        assert reason == EXPECTED_DROP[case[uid]], (uid, case[uid], value)
        assert value and len(value) <= 200
    assert set(result.dropped["step"]) == {"download_images"}
    # Every failure kind of the demo server is there.
    assert set(result.dropped["reason"]) == set(EXPECTED_DROP.values())
    assert result.extra == {"tars": -(-shard.height // SAMPLES_PER_TAR)}


def test_sizes_original_and_stored(shard, reference):
    result, _ = reference
    kept = result.kept.join(shard.select("uid", "image_case"), on="uid")
    limit = download_cfg()["image_size"]
    for row in kept.iter_rows(named=True):
        assert max(row["width"], row["height"]) <= limit
        assert row["width"] <= row["original_width"] and row["height"] <= row["original_height"]
        ratio = row["original_width"] / row["original_height"]
        assert abs(row["width"] / row["height"] - ratio) / ratio < 0.02
        if row["image_case"] == "huge":
            assert {row["original_width"], row["original_height"]} == {6000, 4000}
            assert max(row["width"], row["height"]) == limit
        if row["image_case"] == "tiny":
            assert max(row["original_width"], row["original_height"]) < 100
    # Geometry is left to the image_geometry step: extreme aspect ratios are stored, not dropped.
    assert (kept["image_case"] == "extreme_aspect").sum() == PER_CASE


def test_tar_members_round_trip_through_read_images(shard, reference):
    result, images_dir = reference
    kept = result.kept
    assert kept["image_tar"].str.starts_with(str(images_dir)).all()
    got = dict(read_images(kept, verify=True))
    assert set(got) == set(kept["uid"])
    case = dict(zip(shard["uid"], shard["image_case"], strict=True))
    url = dict(zip(shard["uid"], shard["url"], strict=True))
    for row in kept.iter_rows(named=True):
        data = got[row["uid"]]
        assert hashlib.sha256(data).hexdigest() == row["image_sha256"]
        assert row["image_format"] == "jpg" and row["image_member"].endswith(".jpg")
        if case[row["uid"]] in ("photo", "exact_dup", "cross_batch_dup"):
            # Not resized, so stored as downloaded (skip_reencode): the server's exact bytes.
            stem = url[row["uid"]].rsplit("/", 1)[1][: -len(".jpg")]
            assert data == images.render(case[row["uid"]], stem)
    # A subset reads only what it asks for; a wrong member name is an error, not a silent skip.
    some = kept.sample(5, seed=1)
    assert {u for u, _ in read_images(some)} == set(some["uid"])
    broken = some.with_columns(pl.lit("9999999.jpg").alias("image_member")).head(1)
    with pytest.raises(MissingImageError):
        list(read_images(broken))


def test_img2dataset_outputs_are_published_complete(shard, reference):
    _, images_dir = reference
    n_tars = -(-shard.height // SAMPLES_PER_TAR)
    for i in range(n_tars):
        for suffix in (".tar", ".parquet", "_stats.json"):
            assert (images_dir / f"{i:05d}{suffix}").is_file()
    stats = [json.loads((images_dir / f"{i:05d}_stats.json").read_text()) for i in range(n_tars)]
    assert sum(s["count"] for s in stats) == shard.height
    assert not partial_dir(images_dir).exists()
    assert not (images_dir / "_tmp").exists()


KILLED_RUN = """
import sys, polars as pl, json
from danqing.download import download_shard
if __name__ == "__main__":
    frame = pl.read_parquet(sys.argv[1])
    download_shard(frame, json.loads(sys.argv[2]), sys.argv[3], processes=1,
                   network={"allowed_networks": ["127.0.0.1/32"]})
"""


def test_kill_and_resume_gives_identical_outputs(server, shard, tmp_path):
    """A download killed mid-shard resumes: completed tars are neither fetched nor written again,
    and the outputs are those of an uninterrupted run (test_kept_and_dropped_exactly_as_labelled,
    and the server's deterministic bytes). Self-contained so that pytest-xdist workers do not
    each run the reference download."""
    frame = shard.select("uid", "url", "alt_text")
    frame.write_parquet(tmp_path / "shard.parquet")
    images_dir = tmp_path / "images" / "b1" / "s00000"
    work = partial_dir(images_dir) / "img2dataset"
    cfg = download_cfg()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_RUN,
            str(tmp_path / "shard.parquet"),
            json.dumps(cfg),
            str(images_dir),
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(work.glob("*_stats.json")):
        assert proc.poll() is None, "the download ended before it could be killed"
        assert time.monotonic() < deadline, "no tar completed in time"
        time.sleep(0.05)
    # Only the job's own process: img2dataset's workers must not outlive it (they would go on
    # writing tars into the partial folder).
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans_deadline = time.monotonic() + 15
    while left := _group_alive(proc.pid):
        assert time.monotonic() < orphans_deadline, f"processes outlived their job: {left}"
        time.sleep(0.1)
    done = sorted(p.name[: -len("_stats.json")] for p in work.glob("*_stats.json"))
    n_tars = -(-shard.height // SAMPLES_PER_TAR)
    assert 0 < len(done) < n_tars
    assert not images_dir.exists(), "an unfinished shard must not be published"
    done_urls = pl.concat([pl.read_parquet(work / f"{s}.parquet") for s in done])["url"].to_list()
    requests_before = {u: server.requests[_path(u)] for u in done_urls}
    tars_before = {s: _sha256_file(work / f"{s}.tar") for s in done}

    result = download_shard(frame, cfg, images_dir, processes=1, network=LOOPBACK)

    # Completed tars were neither fetched nor written again.
    assert {u: server.requests[_path(u)] for u in done_urls} == requests_before
    assert {s: _sha256_file(images_dir / f"{s}.tar") for s in done} == tars_before
    # The outputs of an uninterrupted run.
    case = dict(zip(shard["uid"], shard["image_case"], strict=True))
    expected_kept = [
        u
        for u, s in zip(shard["uid"], shard["expected_step"], strict=True)
        if s != "download_images"
    ]
    assert result.kept["uid"].to_list() == expected_kept
    assert {(u, r) for u, r in result.dropped.select("uid", "reason").iter_rows()} == {
        (u, EXPECTED_DROP[case[u]]) for u in shard["uid"] if case[u] in EXPECTED_DROP
    }
    url = dict(zip(shard["uid"], shard["url"], strict=True))
    for uid, data in read_images(result.kept, verify=True):
        stem = url[uid].rsplit("/", 1)[1][: -len(".jpg")]
        served = images.render("photo" if case[uid] == "redirect" else case[uid], stem)
        if max(size_of(served)) <= cfg["image_size"]:
            assert data == served, (uid, case[uid])
        else:
            assert max(size_of(data)) == cfg["image_size"], (uid, case[uid])
    assert not partial_dir(images_dir).exists()


def _group_alive(pgid: int) -> str:
    """`ps` lines of the processes left in process group `pgid` ('' when none is)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return ""
    listing = subprocess.run(
        ["ps", "-o", "pid,args", "-g", str(pgid)], capture_output=True, text=True
    )
    return listing.stdout.strip() or "(ps found none)"


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def size_of(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.size


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_changed_rows_discard_a_partial_download(tmp_path):
    images_dir = tmp_path / "images" / "b1" / "s00000"
    work = partial_dir(images_dir)
    (work / "img2dataset").mkdir(parents=True)
    (work / "fingerprint.txt").write_text("made from other rows\n")
    (work / "img2dataset" / "00000_stats.json").write_text("{}")
    frame = pl.DataFrame(schema={"uid": pl.String, "url": pl.String, "alt_text": pl.String})
    download_shard(frame, download_cfg(), images_dir)
    assert not work.exists()
    assert list(images_dir.iterdir()) == []


def test_unreachable_network_fails_the_shard_instead_of_dropping_it(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    frame = pl.DataFrame(
        {
            "uid": ["a", "b"],
            "alt_text": ["甲", "乙"],
            "url": [f"http://127.0.0.1:{port}/h/photo/{k}.jpg" for k in "ab"],
        }
    )
    images_dir = tmp_path / "images" / "b1" / "s00000"
    with pytest.raises(ConnectionError, match="demo image server"):
        download_shard(frame, download_cfg(), images_dir, network=LOOPBACK)
    assert not images_dir.exists() and not partial_dir(images_dir).exists()


def test_empty_shard(tmp_path):
    frame = pl.DataFrame(schema={"uid": pl.String, "url": pl.String, "alt_text": pl.String})
    result = download_shard(frame, download_cfg(), tmp_path / "images" / "b1" / "s00000")
    assert result.kept.height == 0 and result.dropped.height == 0
    assert "image_tar" in result.kept.columns
    assert (tmp_path / "images" / "b1" / "s00000").is_dir()


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("HTTP Error 404: Not Found", "http_404"),
        ("HTTP Error 503: Service Unavailable", "http_503"),
        ("timed out", "timeout"),
        ("The read operation timed out", "timeout"),
        ("<urlopen error timed out>", "timeout"),
        ("Image decoding error", "decode_error"),
        ("not an image: no image signature", "not_image"),
        ("image too small", "too_small"),
        ("Use of image disallowed by X-Robots-Tag directive", "opted_out"),
        ("<urlopen error [Errno 111] Connection refused>", "connection_error"),
        ("<urlopen error [Errno -2] Name or service not known>", "connection_error"),
        ("something new", "other"),
        (None, "other"),
    ],
)
def test_classify_error(message, kind):
    assert classify_error(message) == kind


def test_looks_like_image():
    assert looks_like_image(images.photo_bytes("000001")[:32])
    assert looks_like_image(images.truncated("000001")[:32])
    assert not looks_like_image(b"<!DOCTYPE html><html>")
    assert not looks_like_image(b"")


@pytest.mark.e2e
def test_rule_download_images_in_the_workflow(server, shard, tmp_path):
    """The rule through snakemake: per-shard outputs, image folders and the Download Success row."""
    workdir = make_workdir(
        tmp_path / "wf",
        {
            "input": {"path": "pairs.jsonl", "format": "jsonl"},
            "partition": {"shard_size": 100},
            "steps": ["download_images"],
            "filters": {"download_images": TEST_SETTINGS},
        },
    )
    # One batch, one shard: one download job (each img2dataset start costs seconds of imports).
    records = shard.drop("image_case", "expected_step").with_columns(batch=pl.lit("b1")).to_dicts()
    (workdir / "pairs.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    )
    run_snakemake(workdir)

    kept_files = sorted(workdir.glob("results/steps/download_images/*/s*[0-9].parquet"))
    kept = pl.concat([pl.read_parquet(f) for f in kept_files])
    drops = pl.concat(
        [
            pl.read_parquet(f)
            for f in workdir.glob("results/steps/download_images/*/*.drops.parquet")
        ]
    )
    expected_kept = set(shard.filter(pl.col("expected_step").ne_missing("download_images"))["uid"])
    assert set(kept["uid"]) == expected_kept
    assert kept.height + drops.height == shard.height
    # image_tar is relative to the working directory and points into the shard's image folder.
    assert not kept["image_tar"].str.starts_with("/").any()
    assert kept["image_tar"].str.starts_with("results/images/").all()
    assert {u for u, _ in read_images(kept, root=workdir, verify=True)} == expected_kept
    for counts in workdir.glob("results/steps/download_images/*/*.counts.json"):
        record = json.loads(counts.read_text())
        assert record["input"] == record["kept"] + record["dropped"]
        assert (workdir / "results/images" / record["batch"] / record["shard"]).is_dir()
    assert not list(workdir.glob("results/images/*/.*.partial"))
    table = pl.read_csv(workdir / "results/report/filtration_table.csv")
    left = dict(zip(table["step"], table["Left Data Num"], strict=True))
    assert left["download_images"] == len(expected_kept)
    summary = pl.read_csv(workdir / "results/report/drop_reason_summary.csv")
    assert set(summary["reason"]) >= set(EXPECTED_DROP.values())


@pytest.mark.e2e
def test_benchmark_quick_mode():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.download", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    numbers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert numbers["images"] == 100
    assert numbers["ceiling_per_s"] > 0 and numbers["stage_steady_per_s"] > 0
    assert "ratio stage/ceiling" in proc.stdout


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height in its header and holds no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch):
    import io

    from danqing import download

    assert download.header_pixels(io.BytesIO(_png_header(30000, 30000))) == 900_000_000
    assert download.header_pixels(io.BytesIO(b"<html>")) is None
    monkeypatch.setenv(download.MAX_PIXELS_ENV, "89478485")
    resizer = download.SniffingResizer(image_size=256, resize_mode="no", resize_only_if_bigger=True)
    result = resizer(io.BytesIO(_png_header(30000, 30000)))
    assert result[0] is None and result[-1] == "image area too large: 900000000 pixels"
    assert download.classify_error(result[-1]) == "too_large"
    html = resizer(io.BytesIO(b"<html>secret token</html>"))
    assert html[-1] == "not an image: no image signature"
