"""The dashboard's summaries (dashboard.summaries) and the engine measurements
(recommender.tools.measure), on the tiny two-taste data set."""

from __future__ import annotations

import numpy as np

from dashboard import summaries
from recommender.core.profiling import StageRecord
from recommender.tools import measure


def test_rating_distribution_counts_every_rating(tiny_engine):
    dist = summaries.rating_distribution(tiny_engine)
    assert dist["rating"].tolist() == [-1, *range(1, 11)]
    assert dist["count"].sum() == tiny_engine.data.ratings.nnz


def test_genre_counts_split_on_commas(tiny_engine):
    counts = dict(zip(*summaries.genre_counts(tiny_engine).T.to_numpy()))
    # conftest: ten "Action, Sci-Fi" and ten "Romance, Slice of Life" anime
    assert counts == {"Action": 10, "Sci-Fi": 10, "Romance": 10, "Slice of Life": 10}


def test_top_n_changes_keeps_list_order():
    entered, left = summaries.top_n_changes([1, 2, 3, 4], [3, 5, 1, 6])
    assert entered == [5, 6] and left == [2, 4]
    assert summaries.top_n_changes([1, 2], [2, 1]) == ([], [])


def test_recall_at_k():
    assert measure.recall_at_k([1, 2, 3], [3, 4]) == 0.5
    assert measure.recall_at_k([], []) == 1.0


def test_neighbours_of_a_taste_group_share_its_genre(tiny_engine):
    user = 2  # even users love sci-fi
    neigh = tiny_engine.neighbors(user, k=5)["user_id"].tolist()
    assert all(u % 2 == 0 for u in neigh)
    profile = summaries.genre_profile(tiny_engine, user, neigh)
    shares = profile.set_index(["group", "genre"])["share"]
    assert shares[("user", "Sci-Fi")] == 1.0 and shares[("neighbours", "Sci-Fi")] == 1.0
    # Likes of the other taste (rated 2-3) never count, so romance has no share at all.
    assert ("user", "Romance") not in shares.index or shares[("user", "Romance")] == 0.0


def test_shared_ratings_puts_the_user_first_with_raw_ratings(tiny_engine):
    user = 3
    neigh = tiny_engine.neighbors(user, k=4)["user_id"].tolist()
    heat = summaries.shared_ratings(tiny_engine, user, neigh)
    assert heat.index[0] == f"user {user} (chosen)" and len(heat) == 1 + len(neigh)
    mine = tiny_engine.user_ratings(user).set_index("name")["rating"]
    row = heat.iloc[0]
    assert all(row[name] == mine[name] for name in heat.columns)
    assert heat.iloc[1:].notna().any(axis=0).all()  # every column is shared by someone


def test_request_breakdown_assigns_inner_stages_to_their_request():
    records = [
        StageRecord("recommend", 0.010, None, 100.0),
        StageRecord("content", 0.004, None, 100.001),
        StageRecord("explain", 0.003, None, 100.006),
        StageRecord("search", 0.5, None, 150.0),  # outside every request
        StageRecord("recommend", 0.020, None, 200.0),
        StageRecord("user-user", 0.015, None, 200.001),
    ]
    frame = summaries.request_breakdown(records)
    totals = frame.groupby("request")["ms"].sum()
    assert np.allclose(totals.to_numpy(), [10.0, 20.0])
    assert set(frame[frame["request"] == 1]["stage"]) == {"content", "explain", "other"}
    assert "search" not in set(frame["stage"])


def test_latency_sample_and_summary(tiny_engine):
    users = measure.sample_users(tiny_engine, 6)
    sample = measure.latency_sample(tiny_engine, users, ["content", "user-user"], n=3)
    assert len(sample) == 12 and (sample["ms"] > 0).all()
    summary = measure.latency_summary(sample)
    assert summary["algorithm"].tolist() == ["content", "user-user"]
    assert (summary["p95_ms"] >= summary["p50_ms"]).all()


def test_ann_vs_exact_finds_everyone_with_every_candidate_and_leaves_the_engine(tiny_engine):
    config = tiny_engine.knn.config
    users = tiny_engine.user_ids()[:8]
    n_users = len(tiny_engine.user_ids())
    result = measure.ann_vs_exact(tiny_engine, users, k=5, ef=n_users, n_candidates=n_users)
    assert tiny_engine.knn.config == config
    # Every user is a candidate, so the exact re-rank returns the exact neighbours.
    assert result["summary"]["recall_reranked"] == 1.0
    assert len(result["per_user"]) == len(users)
    # With ef covering every user, "index alone" is brute force over the compact
    # vectors: recompute that with numpy and compare user by user.
    vectors = tiny_engine.snapshot.rows.vectors
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for row in result["per_user"].itertuples():
        idx = tiny_engine.data.users.number(row.user_id)
        cosine = unit @ unit[idx]
        cosine[idx] = -np.inf
        by_vector = set(np.argsort(-cosine, kind="stable")[:5].tolist())
        exact = tiny_engine.knn.neighbours(tiny_engine.profile(row.user_id),
                                          tiny_engine.snapshot, 5, exact=True)
        expected = len(by_vector & set(exact.user_idx.tolist())) / len(exact.user_idx)
        assert abs(row.recall_index_only - expected) < 1e-9


def test_build_stages_lists_the_warm_start_steps_and_leaves_out_requests():
    from recommender.core.profiling import Profiler

    profiler = Profiler()
    for name in ("load", "title index", "index load", "models load", "recommend"):
        with profiler.stage(name):
            pass
    stages = summaries.build_stages(profiler)["stage"].tolist()
    assert stages == ["load", "title index", "index load", "models load"]
