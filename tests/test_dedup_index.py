"""An earlier release's dedup index: a later run's images within beta of a released image are
found, at any partition count, exactly as brute force finds them."""

from __future__ import annotations

import numpy as np
import pytest

from danqing import dedup as D
from danqing.dedup_index import ReleaseIndex, build_index, search_index


def released_and_new(dim=16, seed=3):
    """Released vectors, and new ones: near copies of released ones (some near partition
    boundaries, by their spread) among unrelated vectors."""
    rng = np.random.default_rng(seed)
    released = rng.standard_normal((600, dim)).astype(np.float16)
    copied = rng.choice(600, 150, replace=False)
    near = released[copied].astype(np.float32) + 0.12 * rng.standard_normal((150, dim))
    new = np.concatenate([near, rng.standard_normal((300, dim))]).astype(np.float16)
    return (
        [f"r{k:04d}" for k in range(600)],
        released,
        [f"n{k:04d}" for k in range(len(new))],
        new,
    )


def brute_force(released_uids, released, new_uids, new, beta):
    sims = D.normalise(new) @ D.normalise(released).T
    best = {}
    for q, r in zip(*np.nonzero(sims > 1 - beta), strict=True):
        current = best.get(new_uids[q])
        if current is None or (sims[q, r], -r) > (sims[q, current], -current):
            best[new_uids[q]] = r
    return {u: released_uids[r] for u, r in best.items()}


@pytest.mark.parametrize("partitions, groups", [(1, 1), (12, 3), (60, 7)])
def test_search_finds_exactly_the_released_duplicates(tmp_path, partitions, groups):
    r_uids, released, n_uids, new = released_and_new()
    beta = 0.02
    index = build_index(tmp_path / "index", r_uids, released, "m", partitions, groups)
    assert (index.vectors, index.partitions, index.groups) == (600, partitions, groups)
    found = search_index(index, n_uids, new, beta, str(tmp_path))
    expected = brute_force(r_uids, released, n_uids, new, beta)
    assert len(expected) > 50, "the test needs released duplicates"
    assert dict(zip(found["uid"], found["released_uid"], strict=True)) == expected
    assert (found["similarity"] > 1 - beta).all()


def test_duplicates_straddling_partitions_are_found(tmp_path):
    from danqing.dedup_partitioned import nearest_centroids

    r_uids, released, n_uids, new = released_and_new(seed=8)
    index = build_index(tmp_path / "index", r_uids, released, "m", 60, 4)
    found = search_index(index, n_uids, new, 0.02, str(tmp_path))
    home = dict(
        zip(r_uids, nearest_centroids(D.normalise(released), index.centroids()), strict=True)
    )
    new_home = dict(
        zip(n_uids, nearest_centroids(D.normalise(new), index.centroids()), strict=True)
    )
    straddling = [
        u
        for u, r in zip(found["uid"], found["released_uid"], strict=True)
        if new_home[u] != home[r]
    ]
    assert straddling, "no released duplicate lies in another partition than its new copy"


@pytest.mark.parametrize("copies", [None, 1])
def test_the_search_measures_its_recall_against_brute_force(tmp_path, copies):
    from danqing.dedup_index import released_pairs, released_recall, released_recall_summary
    from danqing.dedup_partitioned import write_assignment
    from danqing.io import write_json

    r_uids, released, n_uids, new = released_and_new(seed=8)
    index = build_index(tmp_path / "index", r_uids, released, "m", 60, 4)
    settings = D.DedupSettings(beta=0.02, recall_sample=len(n_uids))
    path = str(tmp_path / "assign.npz")
    write_assignment(path, n_uids, new, index.centroids(), settings.beta, copies)
    files = []
    for group in range(index.groups):
        found = released_pairs([path], index, group, settings.beta)
        files.append(str(tmp_path / f"{group}.json"))
        write_json(released_recall([path], index, group, found, settings), files[-1])
    summary = released_recall_summary(files)
    expected = brute_force(r_uids, released, n_uids, new, settings.beta)
    assert summary["queries"] == len(n_uids)
    # Every new image with a released one within beta, counted in each group that holds one.
    assert summary["exact_matches"] >= len(expected) > 50
    if copies is None:
        assert summary["recall"] == 1.0
    else:  # only the own partition searched: the straddling duplicates are missed, and counted
        assert summary["recall"] < 1.0


def test_an_index_of_another_model_or_format_is_refused(tmp_path):
    r_uids, released, _, _ = released_and_new()
    index = build_index(tmp_path / "index", r_uids, released, "efficientnet-lite0", 4, 2)
    with pytest.raises(ValueError, match="different models"):
        index.check_compatible("chinese-clip", 16)
    with pytest.raises(ValueError, match="different models"):
        index.check_compatible("efficientnet-lite0", 768)
    manifest = tmp_path / "index" / "index.json"
    manifest.write_text(manifest.read_text().replace('"format": 1', '"format": 99'))
    with pytest.raises(ValueError, match="format 99"):
        ReleaseIndex.open(tmp_path / "index")
    with pytest.raises(FileNotFoundError, match="release.dedup_index.write"):
        ReleaseIndex.open(tmp_path / "elsewhere")
