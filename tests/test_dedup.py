import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from danqing import dedup as D


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def with_distance(v: np.ndarray, distance: float, rng) -> np.ndarray:
    """A unit vector at exactly `distance` cosine distance from unit vector v."""
    noise = rng.standard_normal(v.shape)
    noise -= (noise @ v) * v
    noise /= np.linalg.norm(noise)
    cos = 1.0 - distance
    return cos * v + np.sqrt(1 - cos**2) * noise


def known_clusters(n_sets=60, dim=48, seed=0):
    """Sets of 1-5 vectors within 0.03 of their seed, seeds far apart (random directions)."""
    rng = np.random.default_rng(seed)
    vectors, uids, truth = [], [], {}
    for s in range(n_sets):
        seed_vec = unit(rng.standard_normal((1, dim)))[0]
        for m in range(int(rng.integers(1, 6))):
            vec = seed_vec if m == 0 else with_distance(seed_vec, rng.uniform(0.005, 0.03), rng)
            uid = f"s{s:03d}m{m}"
            vectors.append(vec)
            uids.append(uid)
            truth[uid] = s
    order = rng.permutation(len(uids))  # sets interleaved in the input
    return [uids[i] for i in order], np.array(vectors)[order].astype(np.float32), truth


def sets_of(frame):
    return sorted(sorted(g) for g in frame.group_by("cluster_id").agg("uid")["uid"].to_list())


def test_union_find_equals_connected_components():
    rng = np.random.default_rng(3)
    for n, m in ((1, 0), (50, 0), (400, 300), (2000, 1900), (3000, 6000)):
        i, j = rng.integers(0, n, m), rng.integers(0, n, m)
        labels = D.union_find(n, i, j)
        _, reference = connected_components(
            coo_matrix((np.ones(m), (i, j)), shape=(n, n)), directed=False
        )
        pairs_seen = set(zip(labels.tolist(), reference.tolist(), strict=True))
        assert len(pairs_seen) == len(set(reference.tolist()))
        # The label of a set is its smallest member.
        for label in set(labels.tolist()):
            assert np.flatnonzero(labels == label)[0] == label
    chain = D.union_find(1000, np.arange(999, 0, -1), np.arange(998, -1, -1))  # long path
    assert set(chain.tolist()) == {0}


@pytest.mark.parametrize("exact", [True, False])
def test_dedup_finds_the_known_sets_and_keeps_the_centroid_nearest(exact):
    uids, x, truth = known_clusters()
    settings = D.DedupSettings(nlist=8, nprobe=3, recall_sample=100)
    frame, stats = D.dedup(uids, x.astype(np.float16), settings, exact=exact)
    expected = {}
    for uid in uids:
        expected.setdefault(truth[uid], []).append(uid)
    assert sets_of(frame) == sorted(sorted(g) for g in expected.values())
    assert frame["uid"].to_list() == uids  # input order
    assert stats["kept"] == len(expected) == frame["keep"].sum()
    assert stats["index"] == ("flat-cpu" if exact else "ivf-cpu")
    if not exact:
        assert stats["recall"]["recall"] == 1.0 and stats["recall"]["exact_pairs"] > 0
    xn = D.normalise(x.astype(np.float16)).astype(np.float64)
    rows = {u: k for k, u in enumerate(uids)}
    for members in expected.values():
        centroid = xn[[rows[u] for u in members]].mean(axis=0)
        centroid /= np.linalg.norm(centroid)
        distances = {u: 1 - xn[rows[u]] @ centroid for u in members}
        nearest = min(members, key=lambda u: (distances[u], u))
        sub = frame.filter(frame["uid"].is_in(members))
        assert sub.filter(sub["keep"])["uid"].to_list() == [nearest]
        assert set(sub["representative_uid"].to_list()) == {nearest}
        assert set(sub["cluster_size"].to_list()) == {len(members)}
        got = dict(zip(sub["uid"].to_list(), sub["distance_to_centroid"].to_list(), strict=True))
        for u in members:
            assert got[u] == pytest.approx(distances[u] if len(members) > 1 else 0.0, abs=2e-3)


def test_ties_are_broken_by_uid_and_links_are_transitive():
    rng = np.random.default_rng(5)
    a = unit(rng.standard_normal((1, 32)))[0]
    far = unit(rng.standard_normal((1, 32)))[0]
    # Exact duplicates: identical vectors, identical distance to the centroid -> smallest uid.
    frame, _ = D.dedup(["zz", "bb", "cc"], np.stack([a, a, a]).astype(np.float32))
    assert frame.filter(frame["keep"])["uid"].to_list() == ["bb"]
    # b is 0.06 from a and from c, a and c are ~0.12 apart: one set through b.
    b = with_distance(a, 0.06, rng)
    c = with_distance(b, 0.06, rng)
    assert 1 - a @ c > 0.1
    frame, stats = D.dedup(["a", "b", "c", "far"], np.stack([a, b, c, far]).astype(np.float32))
    assert sets_of(frame) == [["a", "b", "c"], ["far"]]
    assert frame.filter(frame["keep"])["uid"].to_list() == ["b", "far"]  # b is the middle one
    assert stats["pairs"] == 2 and stats["sets"] == 1


def test_beta_is_a_strict_cosine_distance_bound():
    rng = np.random.default_rng(9)
    a = unit(rng.standard_normal((1, 16)))[0]
    near, far = with_distance(a, 0.099, rng), with_distance(a, 0.101, rng)
    frame, _ = D.dedup(["a", "near", "far"], np.stack([a, near, far]).astype(np.float32))
    assert sets_of(frame) == [["a", "near"], ["far"]]


def test_knn_search_with_doubling_gives_the_range_search_pairs():
    uids, x, _ = known_clusters(n_sets=40, dim=24, seed=2)
    x = D.normalise(x)
    flat = D.flat_index(x, D.DedupSettings())
    ids = np.arange(len(x), dtype=np.int64)
    expected = set(zip(*(a.tolist() for a in D.range_pairs(flat, x, ids, 0.9)), strict=True))
    for k0, k_max in ((1, 2048), (2, 4)):  # doubling; doubling then the range-search fallback
        i, j = D.knn_range_pairs(flat, x, ids, 0.9, k0=k0, k_max=k_max, fallback=flat)
        assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected


def test_ivf_join_compares_exactly_the_probed_lists_and_recall_counts_misses():
    rng = np.random.default_rng(4)
    dim = 16
    axis = unit(rng.standard_normal((1, dim)))[0]
    # Pairs straddling two lists whose centroids are +/- a direction: nprobe=1 misses them.
    rows = []
    for _ in range(30):
        v = with_distance(axis, rng.uniform(0.9, 1.1), rng)
        rows += [v, with_distance(v, 0.02, rng)]
    x = D.normalise(np.array(rows, np.float32))
    settings = D.DedupSettings(nprobe=1, recall_sample=len(x))
    centroids = D.normalise(np.stack([axis, -axis]).astype(np.float32))
    nearest = D.probe_lists(x, centroids, 1, settings)[:, 0]
    members = np.argsort(nearest, kind="stable")
    lists = D.InvertedLists(centroids, 1, members, np.searchsorted(nearest[members], [0, 1, 2]))
    sims = x @ x.T
    exact = {(a, b) for a, b in zip(*np.nonzero(sims > 0.9), strict=True) if a != b}
    same_list = {(a, b) for a, b in exact if nearest[a] == nearest[b]}
    i, j = D.ivf_join(x, lists, 0.9, settings)
    assert {(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True) if a != b} == same_list
    assert len(same_list) < len(exact)  # the construction does split some pairs
    report = D.pair_recall(x, lists, settings)
    assert report["exact_pairs"] == len(exact) and report["found_pairs"] == len(same_list)
    assert report["recall"] == pytest.approx(len(same_list) / len(exact))
    two = D.InvertedLists(centroids, 2, lists.members, lists.bounds)  # probing both: exact
    assert D.pair_recall(x, two, settings)["recall"] == 1.0


def test_bad_input_is_a_clear_error():
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="duplicate uids"):
        D.dedup(["a", "a", "b"], x)
    with pytest.raises(ValueError, match="2 uids for 3"):
        D.dedup(["a", "b"], x)
    with pytest.raises(ValueError, match="all-zero"):
        D.dedup(["a", "b", "c"], np.zeros((3, 3), np.float32))
    frame, stats = D.dedup([], np.zeros((0, 8), np.float32))
    assert frame.height == 0 and stats["input"] == 0
    single, _ = D.dedup(["only"], x[:1])
    assert single["keep"].to_list() == [True] and single["cluster_size"].to_list() == [1]


def test_a_null_beta_is_the_embedding_models(tmp_path):
    assert D.DedupSettings.from_config({"beta": None}, "chinese-clip").beta == 0.1
    assert D.DedupSettings.from_config({"beta": None}, "efficientnet-lite0").beta == 0.02
    assert D.DedupSettings.from_config({"beta": 0.3}, "chinese-clip").beta == 0.3
    with pytest.raises(ValueError, match="no calibrated beta"):
        D.DedupSettings.from_config({"beta": None}, "some-model")


def test_collect_embeddings_restricts_to_the_kept_uids(tmp_path):
    from danqing.embed import Embeddings, write_embeddings

    rng = np.random.default_rng(1)
    for name, uids in (("a", ["u0", "u1", "u2"]), ("b", ["u3", "u4"])):
        vectors = rng.standard_normal((len(uids), 8)).astype(np.float16)
        write_embeddings(Embeddings(uids, vectors, None, "m"), tmp_path / f"{name}.npz")
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    uids, vectors, model = D.collect_embeddings(paths, keep={"u1", "u3", "u4"})
    assert uids == ["u1", "u3", "u4"] and vectors.shape == (3, 8) and model == "m"
    assert D.collect_embeddings(paths)[1].shape == (5, 8)
    with pytest.raises(KeyError, match="no embedding for 1"):
        D.collect_embeddings(paths, keep={"u1", "u9"})


def test_a_uid_in_two_batches_is_one_pair_and_its_later_copy_is_dropped(tmp_path):
    """The same pair crawled in two batches (no uid of its own: the derived uid repeats) used to
    crash the cross-batch decisions; now the first batch's row stands for it."""
    import polars as pl

    from danqing.embed import Embeddings, write_embeddings
    from danqing.filters.image import cross_batch_dedup
    from danqing.images.shard_jobs import dedup_clusters

    rng = np.random.default_rng(3)
    batches = {"b1": ["same", "u1"], "b2": ["u2", "same"]}
    shards, embeddings = [], []
    for batch, uids in batches.items():
        shard = tmp_path / f"{batch}.parquet"
        pl.DataFrame({"uid": uids, "batch": [batch] * len(uids)}).write_parquet(shard)
        vectors = rng.standard_normal((len(uids), 16)).astype(np.float16)
        write_embeddings(
            Embeddings(uids, vectors, None, "efficientnet-lite0"), tmp_path / f"{batch}.npz"
        )
        shards.append(str(shard))
        embeddings.append(str(tmp_path / f"{batch}.npz"))
    clusters, stats = tmp_path / "clusters.parquet", tmp_path / "stats.json"
    result = dedup_clusters(
        shards, embeddings, str(clusters), str(stats), {"beta": None}, "cross_batch"
    )
    assert result["repeated_uids"] == 1 and result["input"] == 3
    kept, dropped = [], []
    for batch, uids in batches.items():
        step = cross_batch_dedup(
            pl.DataFrame({"uid": uids, "batch": [batch] * len(uids)}), {}, clusters=str(clusters)
        )
        assert step.kept.height + step.dropped.height == len(uids)
        kept += [(batch, u) for u in step.kept["uid"]]
        dropped += step.dropped.select("uid", "reason", "value").rows()
    assert sorted(kept) == [("b1", "same"), ("b1", "u1"), ("b2", "u2")]
    assert dropped == [("same", "duplicate_uid", "b1")]
