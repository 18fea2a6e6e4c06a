"""The whole pipeline end to end on a slice of the demo corpus (the `full_run` fixture of
conftest.py), images fetched over real HTTP from the demo image server: Table 6 against the shard
outputs, no row lost, every image case dropped by the step its label names, each duplicate set
keeping exactly one image, and a rerun with nothing to do."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from danqing.embed import read_embeddings
from danqing.steps import STEPS
from tests.conftest import make_workdir, run_snakemake, same_decisions

# The tests of this file share one run: `pytest -n 2 --dist loadfile` keeps them on one worker.
pytestmark = pytest.mark.e2e

ALL_STEPS = [step.name for step in STEPS]
TEXT_STEPS = [s.name for s in STEPS if s.stage in ("Data Source Selection", "Text Refinement")]
IMAGE_FILTERS = ["image_geometry", "low_textual_images", "blurry_images", "image_entropy"]


@pytest.fixture(scope="module")
def labels(full_run):
    return pl.read_parquet(full_run / "demo/labels.parquet")


@pytest.fixture(scope="module")
def drops(full_run):
    return pl.read_parquet(full_run / "results/report/drop_reasons.parquet")


def kept_uids(workdir, step: str) -> set[str]:
    files = glob.glob(str(workdir / f"results/steps/{step}/*/s*[0-9].parquet"))
    return set(pl.concat([pl.read_parquet(f, columns=["uid"]) for f in files])["uid"])


def step_input_uids(workdir, step: str) -> set[str]:
    before = ALL_STEPS[ALL_STEPS.index(step) - 1]
    return kept_uids(workdir, before)


def test_image_cases_are_dropped_by_the_step_their_label_names(full_run, labels, drops):
    """Per image filter: of the rows it received, it drops the labelled ones (recall) and little
    else (precision)."""
    dropped_by = dict(zip(drops["uid"], drops["step"], strict=True))
    for step in ["download_images", *IMAGE_FILTERS]:
        entering = step_input_uids(full_run, step)
        expected = set(labels.filter(pl.col("expected_step") == step)["uid"]) & entering
        removed = {u for u in entering if dropped_by.get(u) == step}
        assert expected, f"the demo slice has no {step} case"
        recall = len(expected & removed) / len(expected)
        precision = len(expected & removed) / len(removed)
        assert recall >= 0.9 and precision >= 0.9, (
            step,
            recall,
            precision,
            sorted(expected ^ removed)[:5],
        )
    # Download failures are exact: the server's failure cases and nothing else.
    entering = step_input_uids(full_run, "download_images")
    expected = set(labels.filter(pl.col("expected_step") == "download_images")["uid"]) & entering
    assert {u for u in entering if dropped_by.get(u) == "download_images"} == expected


def _duplicate_sets(workdir, labels: pl.DataFrame, case: str) -> dict[str, set[str]]:
    """Photo key -> uids of the original photo and its copies of `case`."""
    urls = pl.concat(
        [
            pl.read_parquet(f, columns=["uid", "url"])
            for f in glob.glob(str(workdir / "results/partition/*/s*[0-9].parquet"))
        ]
    )
    originals = (
        labels.filter(pl.col("image_case") == "photo")
        .join(urls, on="uid")
        .with_columns(key=pl.col("url").str.extract(r"/photo/(\d+)\.jpg$"))
    )
    uid_of = dict(zip(originals["key"], originals["uid"], strict=True))
    sets: dict[str, set[str]] = {}
    for uid, key in labels.filter(pl.col("image_case") == case).select("uid", "dup_of").iter_rows():
        sets.setdefault(key, {uid_of[key]}).add(uid)
    return sets


@pytest.mark.parametrize(
    ("case", "step"),
    [
        ("exact_dup", "exact_dedup"),
        ("near_dup", "semantic_dedup"),
        ("cross_batch_dup", "cross_batch_dedup"),
    ],
)
def test_each_duplicate_set_keeps_exactly_one_image(full_run, labels, drops, case, step):
    entering = step_input_uids(full_run, step)
    kept = kept_uids(full_run, step)
    reasons = drops.filter(pl.col("step") == step)
    representative = dict(zip(reasons["uid"], reasons["value"], strict=True))
    checked = 0
    for members in _duplicate_sets(full_run, labels, case).values():
        members &= entering
        if len(members) < 2:
            continue
        checked += 1
        survivors = members & kept
        assert len(survivors) == 1, (case, sorted(members), sorted(survivors))
        (survivor,) = survivors
        for uid in members - survivors:
            assert representative[uid] == survivor, (uid, representative.get(uid), survivor)
    assert checked >= 3, f"only {checked} {case} sets reached {step}"


def test_clean_photos_survive_the_image_stages(full_run, labels):
    """Real-looking photos with clean captions: the image filters, dedup and NSFW keep them."""
    clean = set(
        labels.filter(
            pl.col("expected_step").is_null()
            & pl.col("image_case").is_in(["photo", "redirect", "huge"])
        )["uid"]
    )
    entering = clean & step_input_uids(full_run, "image_geometry")
    final = kept_uids(full_run, ALL_STEPS[-1])
    assert len(entering & final) / len(entering) >= 0.9


def test_table_has_every_row_from_the_shard_counts(full_run, drops):
    table = pl.read_csv(full_run / "results/report/filtration_table.csv")
    rows = {r["step"]: r for r in table.iter_rows(named=True)}
    assert set(ALL_STEPS) <= set(rows)
    for step in ALL_STEPS:
        records = [
            json.loads(Path(f).read_text())
            for f in glob.glob(str(full_run / f"results/steps/{step}/*/*.counts.json"))
        ]
        assert rows[step]["Left Data Num"] == sum(r["kept"] for r in records), step
        assert drops.filter(pl.col("step") == step).height == sum(r["dropped"] for r in records)
        for r in records:
            assert r["input"] == r["kept"] + r["dropped"]
    assert rows[ALL_STEPS[-1]]["Left Data Num"] == len(kept_uids(full_run, ALL_STEPS[-1]))
    # No text tower in the offline embedder: the alignment row says so instead of filtering.
    assert rows["cross_modal_alignment"]["Left Data Num"] == rows["image_safety"]["Left Data Num"]
    assert "not run" in (rows["cross_modal_alignment"]["Note"] or "")
    # IVF recall or the exact index is recorded for every dedup run.
    for path in glob.glob(str(full_run / "results/dedup/*/*.json")):
        stats = json.loads(Path(path).read_text())
        assert stats["input"] == stats["kept"] + stats["removed"]


def test_embeddings_are_float16_and_aligned_with_uids(full_run):
    for path in glob.glob(str(full_run / "results/embeddings/*/*.npz")):
        emb = read_embeddings(path)
        assert emb.image.dtype == np.float16
        assert emb.image.shape[0] == len(emb.uids) == len(set(emb.uids))
        norms = np.linalg.norm(emb.image.astype(np.float32), axis=1)
        assert np.allclose(norms, 1.0, atol=1e-2)


def test_kept_rows_carry_the_image_scores(full_run):
    final = pl.concat(
        [
            pl.read_parquet(f)
            for f in glob.glob(str(full_run / f"results/steps/{ALL_STEPS[-1]}/*/s*[0-9].parquet"))
        ]
    )
    for column in ("img_std", "img_blur", "img_entropy", "img_entropy_rgb", "nsfw_score"):
        assert column in final.columns and final[column].null_count() == 0, column
    assert (final["img_blur"] >= 1000).all() and (final["img_entropy_rgb"] >= 3).all()
    assert (final["nsfw_score"] < 0.8).all()


def test_table_matches_the_shard_outputs(full_run):
    table = pl.read_csv(full_run / "results/report/filtration_table.csv")
    left = dict(zip(table["step"], table["Left Data Num"], strict=True))
    partition_rows = sum(
        pl.read_parquet(p).height
        for p in glob.glob(str(full_run / "results/partition/*/*.parquet"))
    )
    assert left["collected"] == partition_rows
    for step in TEXT_STEPS:
        files = glob.glob(str(full_run / f"results/steps/{step}/*/*[0-9].parquet"))
        assert len(files) == 2, step
        assert left[step] == sum(pl.read_parquet(f).height for f in files), step
    assert left["final"] == left[ALL_STEPS[-1]]
    md = (full_run / "results/report/filtration_table.md").read_text()
    assert "Linguistic Structure (CN-Detect)" in md and "Final image-text pairs" in md
    assert (
        (full_run / "results/report/filtration_table.tex")
        .read_text()
        .startswith(r"\begin{tabular}")
    )


def test_every_input_row_is_kept_or_has_a_drop_reason(full_run):
    with open(full_run / "pairs.jsonl", "rb") as handle:
        n_input = sum(1 for line in handle if line.strip())
    drops = pl.read_parquet(full_run / "results/report/drop_reasons.parquet")
    final = pl.concat(
        [
            pl.read_parquet(f)
            for f in glob.glob(str(full_run / f"results/steps/{ALL_STEPS[-1]}/*/*[0-9].parquet"))
        ]
    )
    assert n_input == final.height + drops.height
    assert drops["reason"].null_count() == 0 and drops["step"].null_count() == 0
    # A uid is dropped at most once (duplicate-uid copies aside) and never also kept.
    real = drops.filter(pl.col("reason") != "duplicate_uid")
    assert real["uid"].n_unique() == real.height
    assert not set(real["uid"]) & set(final["uid"])
    summary = pl.read_csv(full_run / "results/report/drop_reason_summary.csv")
    assert summary["rows"].sum() == drops.height


def test_threshold_sweep_matches_the_steps_at_the_configured_thresholds(full_run):
    sweep = pl.read_csv(full_run / "results/report/threshold_sweep.csv")
    assert (full_run / "results/report/threshold_sweep.png").stat().st_size > 10_000
    at_config = sweep.filter(pl.col("configured"))
    assert {"blurry_images", "text_constraints", "cn_detect"} <= set(at_config["step"])
    for step in ("blurry_images", "cn_detect", "low_textual_images"):
        kept = sum(
            pl.read_parquet(f).height
            for f in glob.glob(str(full_run / f"results/steps/{step}/*/*[0-9].parquet"))
        )
        dropped = sum(
            pl.read_parquet(f).height
            for f in glob.glob(str(full_run / f"results/steps/{step}/*/*.drops.parquet"))
        )
        row = at_config.filter(pl.col("step") == step).row(0, named=True)
        assert row["rows"] == kept + dropped, step
        assert row["kept_share"] == pytest.approx(kept / (kept + dropped)), step


def test_a_rerun_has_nothing_to_do(full_run):
    proc = run_snakemake(full_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_every_dedup_job_is_in_the_report_with_its_recall(full_run):
    runs = pl.read_csv(full_run / "results/report/dedup_runs.csv")
    batches = sorted({p.parent.name for p in (full_run / "results/partition").glob("*/*.parquet")})
    assert runs.filter(pl.col("scope") == "exact")["batch"].to_list() == batches
    assert runs.filter(pl.col("scope") == "batch")["batch"].to_list() == batches
    assert runs.filter(pl.col("scope") == "cross_batch").height == 1
    assert runs["pair_recall"].null_count() == 0 and (runs["pair_recall"] >= 0.99).all()
    assert (full_run / "results/report/dedup_runs.html").is_file()


def copy_of_run(full_run, tmp_path, change, redo: str) -> Path:
    """A working directory with the full run's input and results, less those matching `redo`
    (and the report, release and figures), and its config changed by `change(config)`."""
    import shutil

    import yaml

    workdir = make_workdir(tmp_path / "wf")
    config = yaml.safe_load((full_run / "config" / "test.yaml").read_text())
    change(config)
    (workdir / "config" / "test.yaml").write_text(yaml.safe_dump(config))
    shutil.copy2(full_run / "pairs.jsonl", workdir / "pairs.jsonl")  # its mtime too
    shutil.copytree(
        full_run / "results",
        workdir / "results",
        ignore=shutil.ignore_patterns(redo, "report", "release", "figures"),
    )
    return workdir


def test_the_partitioned_rules_give_the_single_job_sets(full_run, tmp_path):
    """The full run's inputs of the per-batch dedup, decided again by the partitioned rules (4
    partitions, 3 search jobs): the same decisions as the single job's."""
    workdir = copy_of_run(
        full_run,
        tmp_path,
        lambda config: config["filters"]["semantic_dedup"].update(
            {"partitions": 4, "partition_jobs": 3, "train_sample": 100}
        ),
        "semantic",
    )
    batches = sorted(p.stem for p in (full_run / "results/dedup/semantic").glob("*.parquet"))
    targets = [f"results/dedup/semantic/{b}.parquet" for b in batches]
    run_snakemake(workdir, *targets, timeout=600)
    for batch, target in zip(batches, targets, strict=True):
        single = pl.read_parquet(full_run / target).sort("uid")
        split = pl.read_parquet(workdir / target).sort("uid")
        assert same_decisions(split, single), batch
    assert len(list(workdir.glob("results/dedup/semantic/*/pairs/*.parquet"))) == 3 * len(batches)


def final_embeddings(workdir, batches=None):
    """(uids, float16 vectors) of the final rows (of `batches` when given)."""
    final = ALL_STEPS[-1]
    uids, vectors = [], []
    for path in sorted(glob.glob(str(workdir / f"results/steps/{final}/*/s*[0-9].parquet"))):
        batch, shard = Path(path).parent.name, Path(path).stem
        if batches is not None and batch not in batches:
            continue
        rows = pl.read_parquet(path, columns=["uid"])["uid"].to_list()
        if rows:
            emb = read_embeddings(workdir / f"results/embeddings/{batch}/{shard}.npz", rows)
            uids += emb.uids
            vectors.append(emb.image)
    return uids, np.concatenate(vectors)


def test_the_release_dedup_index_holds_every_released_image(full_run, tmp_path):
    from danqing.dedup import MODEL_BETA
    from danqing.dedup_index import ReleaseIndex, search_index

    index = ReleaseIndex.open(full_run / "results/release/dedup_index")
    uids, vectors = final_embeddings(full_run)
    assert index.vectors == len(uids) and index.groups == 2 and index.partitions > 2
    found = search_index(index, uids, vectors, MODEL_BETA[index.model], str(tmp_path))
    # Released images are no near-duplicates of each other: each finds itself.
    assert found["uid"].to_list() == found["released_uid"].to_list()
    assert sorted(found["uid"]) == sorted(uids)


def rerun_cross_batch(full_run, tmp_path, cross_batch=None, dedup_index=None):
    """The full run's results up to the cross-batch dedup, with config changes; the final shards
    are rebuilt. Returns (the working directory, the final shards' paths, relative)."""

    def change(config):
        config["filters"]["cross_batch_dedup"].update(cross_batch or {})
        config["release"]["dedup_index"] = dedup_index or {"write": False}

    workdir = copy_of_run(full_run, tmp_path, change, "cross_batch*")
    final = ALL_STEPS[-1]
    targets = [
        str(Path(p).relative_to(full_run))
        for p in glob.glob(str(full_run / f"results/steps/{final}/*/s*[0-9].parquet"))
    ]
    run_snakemake(workdir, *targets, "results/dedup/cross_batch/clusters.parquet", timeout=600)
    return workdir, targets


PARTITIONED = {"partitions": 4, "partition_jobs": 3, "train_sample": 100}


def test_the_partitioned_cross_batch_rules_give_the_single_job_sets(full_run, tmp_path):
    workdir, targets = rerun_cross_batch(full_run, tmp_path, PARTITIONED)
    clusters = "results/dedup/cross_batch/clusters.parquet"
    single = pl.read_parquet(full_run / clusters).sort("uid")
    split = pl.read_parquet(workdir / clusters).sort("uid")
    assert same_decisions(split, single)
    assert len(list(workdir.glob("results/dedup/cross_batch/pairs/*.parquet"))) == 3
    for target in targets:
        assert pl.read_parquet(workdir / target).equals(pl.read_parquet(full_run / target))
    stats = json.loads((workdir / "results/dedup/cross_batch/stats.json").read_text())
    assert stats["index"] == "partitioned-flat" and stats["recall"]["recall"] in (1.0, None)


@pytest.mark.parametrize("cross_batch", [{}, PARTITIONED], ids=["one job", "partitioned"])
def test_a_later_run_drops_the_images_an_earlier_release_holds(full_run, tmp_path, cross_batch):
    """Release A = the first batch's final images (an index written from them); run B = the full
    run's rows entering the cross-batch step, searched against A: every A image is dropped as a
    released duplicate of itself, and no image B keeps is within beta of an A image; with the
    cross-batch search in one job or partitioned."""
    from danqing.dedup import MODEL_BETA, normalise
    from danqing.dedup_index import build_index

    a_uids, a_vectors = final_embeddings(full_run, {"b1"})
    index_dir = tmp_path / "release_a"
    build_index(index_dir, a_uids, a_vectors, "efficientnet-lite0", partitions=5, groups=3)
    against = {"write": False, "against": [str(index_dir)]}
    workdir, _ = rerun_cross_batch(full_run, tmp_path, cross_batch, against)
    final = ALL_STEPS[-1]
    drops = pl.concat(
        [
            pl.read_parquet(p)
            for p in glob.glob(str(workdir / f"results/steps/{final}/*/*.drops.parquet"))
        ]
    )
    released = drops.filter(pl.col("reason") == "released_duplicate")
    assert sorted(a_uids) == sorted(released.filter(pl.col("uid") == pl.col("value"))["uid"])
    assert set(released["value"]) <= set(a_uids)
    b_uids, b_vectors = final_embeddings(workdir)
    assert b_uids and not set(b_uids) & set(a_uids)
    sims = normalise(b_vectors) @ normalise(a_vectors).T
    assert sims.max() <= 1 - MODEL_BETA["efficientnet-lite0"]
    stats = json.loads((workdir / "results/dedup/cross_batch/stats.json").read_text())
    assert stats["released_duplicates"] == released.height
    recall = stats["released_recall"]
    assert recall["exact_matches"] > 0 and recall["recall"] == 1.0  # exact copies by default
    assert len(list(workdir.glob("results/dedup/released/0/pairs/*.parquet"))) == 3
