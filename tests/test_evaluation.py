"""Offline evaluation: metrics by hand, split invariants, no leakage, sweep == direct."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, TINY_PARAMS, two_taste_groups
from recommender.errors import DataFormatError, InvalidParameterError
from recommender.evaluation import (
    ALGORITHMS,
    RELEVANT_RATING,
    WEIGHTS,
    EvalResult,
    EvalSpec,
    Variant,
    average_precision_at_k,
    best_weights,
    catalogue_coverage,
    evaluate,
    genre_matrix,
    hit_rate_at_k,
    intra_list_diversity,
    metrics_table,
    ndcg_at_k,
    novelty,
    precision_at_k,
    prepare,
    recall_at_k,
    recommend_lists,
    self_information,
    split_ratings,
    variants,
)
from recommender.evaluation.tuning import headline

LOG3, LOG5 = math.log2(3), math.log2(5)


# ---------------------------------------------------------------------------- metrics
def test_ranking_metrics_by_hand():
    ranked, relevant = [5, 3, 9, 1], {3, 1, 7}
    # hits at ranks 2 and 4
    assert precision_at_k(ranked, relevant, 4) == 0.5
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert hit_rate_at_k(ranked, relevant, 4) == 1.0
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(
        (1 / LOG3 + 1 / LOG5) / (1 + 1 / LOG3 + 0.5))
    assert average_precision_at_k(ranked, relevant, 4) == pytest.approx((1 / 2 + 2 / 4) / 3)
    # only the top 2 count at k=2
    assert precision_at_k(ranked, relevant, 2) == 0.5
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert ndcg_at_k(ranked, relevant, 2) == pytest.approx((1 / LOG3) / (1 + 1 / LOG3))
    assert average_precision_at_k(ranked, relevant, 2) == pytest.approx(0.5 / 2)
    assert hit_rate_at_k(ranked, relevant, 1) == 0.0


def test_perfect_empty_and_short_lists():
    assert ndcg_at_k([1, 2], {1, 2}, 10) == pytest.approx(1.0)
    assert average_precision_at_k([1, 2], {1, 2}, 10) == pytest.approx(1.0)
    assert precision_at_k([1, 2], {1, 2}, 10) == 0.2  # a short list is not excused
    for metric in (precision_at_k, recall_at_k, hit_rate_at_k, ndcg_at_k,
                   average_precision_at_k):
        assert metric([1, 2], set(), 5) == 0.0
        assert metric([], {1}, 5) == 0.0


def test_coverage_novelty_and_self_information_by_hand():
    assert catalogue_coverage([[0, 1], [1, 2]], 10) == pytest.approx(0.3)
    assert catalogue_coverage([], 10) == 0.0
    info = self_information(np.array([4, 1, 0]), 4)
    # everyone has item 0 (0 bits); 1 of 4 users has item 1 (2 bits); nobody has
    # item 2, which counts as one user
    assert info.tolist() == pytest.approx([0.0, 2.0, 2.0])
    assert novelty([0, 1], info) == pytest.approx(1.0)


def test_intra_list_diversity_is_mean_pairwise_jaccard_distance():
    anime = pd.DataFrame({"genre": ["Action, Comedy", "Comedy", "Drama", "", ""]})
    genres = genre_matrix(anime)
    assert genres.shape == (5, 3) and genres.sum() == 4
    # {A,C}-{C}: 1 - 1/2; {A,C}-{D}: 1; {C}-{D}: 1
    assert intra_list_diversity([0, 1, 2], genres) == pytest.approx(2.5 / 3)
    assert intra_list_diversity([0, 0], genres) == 0.0
    assert intra_list_diversity([3, 4], genres) == 0.0  # no genres at all: identical
    assert math.isnan(intra_list_diversity([0], genres))


# ---------------------------------------------------------------------------- split
ratings_frames = st.lists(
    st.tuples(st.integers(1, 12), st.integers(1, 40), st.sampled_from([-1, *range(1, 11)])),
    min_size=0, max_size=300,
).map(lambda rows: pd.DataFrame(rows, columns=["user_id", "anime_id", "rating"])
      .drop_duplicates(["user_id", "anime_id"]).reset_index(drop=True))


def _pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user_id"], frame["anime_id"]))


@settings(max_examples=60, deadline=None)
@given(ratings_frames, st.integers(0, 1000))
def test_split_is_a_partition_and_deterministic(ratings, seed):
    split = split_ratings(ratings, random_state=seed)
    parts = [split.train, split.validation, split.test]
    union = pd.concat(parts, ignore_index=True)
    key = ["user_id", "anime_id", "rating"]
    assert union.sort_values(key).reset_index(drop=True).equals(
        ratings.sort_values(key).reset_index(drop=True))
    assert sum(len(p) for p in parts) == len(ratings)
    assert not _pairs(split.train) & _pairs(split.validation)
    assert not _pairs(split.train) & _pairs(split.test)
    assert not _pairs(split.validation) & _pairs(split.test)
    again = split_ratings(ratings, random_state=seed)
    for a, b in zip(parts, [again.train, again.validation, again.test]):
        assert a.equals(b)
    # -1 rows are never held out, so they can never be relevant
    assert (split.validation["rating"] > 0).all() and (split.test["rating"] > 0).all()
    explicit = ratings[ratings["rating"] > 0].groupby("user_id").size()
    held = set(split.test["user_id"]) | set(split.validation["user_id"])
    assert held == set(explicit[explicit >= 5].index)
    assert set(split.test["user_id"]) == held == set(split.validation["user_id"])


def test_split_seed_changes_the_split_and_bad_input_fails():
    _anime, ratings = two_taste_groups()
    a, b = split_ratings(ratings, random_state=1), split_ratings(ratings, random_state=2)
    assert _pairs(a.test) != _pairs(b.test)
    with pytest.raises(DataFormatError):
        split_ratings(pd.concat([ratings, ratings.head(1)]))
    with pytest.raises(InvalidParameterError):
        split_ratings(ratings, validation_fraction=0.6, test_fraction=0.5)
    with pytest.raises(InvalidParameterError):
        a.frames("train")


def _with_watched(ratings: pd.DataFrame) -> pd.DataFrame:
    """Tiny ratings plus a -1 row per user, so -1 handling is exercised."""
    extra = pd.DataFrame({"user_id": ratings["user_id"].unique()})
    extra["anime_id"] = np.where(extra["user_id"] % 2 == 0, 20, 1)  # the other taste
    extra["rating"] = -1
    merged = pd.concat([ratings, extra]).drop_duplicates(["user_id", "anime_id"])
    return merged.reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny_setup():
    anime, ratings = two_taste_groups()
    ratings = _with_watched(ratings)
    spec = EvalSpec(n_users=0, k=5, params=TINY_PARAMS)
    return anime, ratings, prepare(anime, ratings, spec)


@pytest.mark.parametrize("target", ["validation", "test"])
def test_nothing_held_out_is_in_the_fitted_engine(target):
    anime, ratings = two_taste_groups()
    ratings = _with_watched(ratings)
    split = split_ratings(ratings, random_state=3)
    setup = prepare(anime, ratings, EvalSpec(split=target, n_users=0, k=5, params=TINY_PARAMS,
                                             random_state=3), split=split)
    data = setup.engine.data
    _fit_on, held_out = split.frames(target)
    rows = data.users.numbers(held_out["user_id"].to_numpy())
    cols = data.items.numbers(held_out["anime_id"].to_numpy())
    assert (rows >= 0).all()
    assert np.asarray(data.ratings[rows, cols]).ravel().tolist() == [0.0] * len(rows)
    assert data.ratings.nnz == len(_fit_on)
    # relevant items are exactly the held-out rows rated >= 8 of the evaluated users
    for user_id, relevant in zip(setup.user_ids, setup.relevant):
        mine = held_out[held_out["user_id"] == user_id]
        expected = data.items.numbers(mine.loc[mine["rating"] >= RELEVANT_RATING, "anime_id"])
        assert sorted(relevant.tolist()) == sorted(expected.tolist())
        assert not set(data.items.numbers(mine.loc[mine["rating"] < 0, "anime_id"])) & set(
            relevant.tolist())


# ---------------------------------------------------------------------------- sweep
def _direct_lists(setup, variant: Variant) -> list[np.ndarray]:
    engine = setup.engine
    out = []
    for user_id in setup.user_ids:
        recs = engine.recommend(int(user_id), algorithm=variant.algorithm,
                                weight=variant.weight, n=setup.spec.k)
        out.append(engine.data.items.numbers(recs["anime_id"].to_numpy()))
    return out


def test_sweep_equals_direct_evaluation_at_each_weight(tiny_setup):
    _anime, _ratings, setup = tiny_setup
    swept = recommend_lists(setup)
    assert set(swept) == set(variants(setup.spec))
    table = metrics_table(setup, swept)
    for variant in (Variant("hybrid", 0.3), Variant("hybrid", 0.7), Variant("user-user"),
                    Variant("content"), Variant("popularity"), Variant("random")):
        direct = _direct_lists(setup, variant)
        assert [x.tolist() for x in swept[variant]] == [x.tolist() for x in direct]
        one = metrics_table(setup, {variant: direct}).reset_index(drop=True)
        from_sweep = table[table["variant"] == variant.label].reset_index(drop=True)
        pd.testing.assert_frame_equal(one, from_sweep, check_exact=True)


def test_table_has_every_variant_and_segment_and_sane_values(tiny_setup):
    _anime, _ratings, setup = tiny_setup
    table = metrics_table(setup, recommend_lists(setup))
    assert len(table) == (len(WEIGHTS) + len(ALGORITHMS)) * 3
    assert set(table["segment"]) == {"all", "light", "heavy"}
    every = table[table["segment"] == "all"]
    assert (every["users"] == len(setup.user_ids)).all()
    for column in ("ndcg", "recall", "precision", "hit_rate", "map", "coverage"):
        assert table[column].dropna().between(0, 1).all()
    # the two taste groups are easy: the personal algorithms beat random by far
    ndcg = every.set_index("variant")["ndcg"]
    assert ndcg["user-user"] > 2 * ndcg["random"] and ndcg["content"] > 2 * ndcg["random"]
    best = best_weights(table)
    # every tiny user is light; a segment without users has no best weight
    assert list(best["segment"]) == ["all", "light"]
    hybrid = every[every["algorithm"] == "hybrid"]
    assert best.iloc[0]["ndcg"] == hybrid["ndcg"].max()


def test_evaluate_caches_on_disk_keyed_by_parameters(tmp_path):
    anime, ratings = two_taste_groups()
    spec = EvalSpec(n_users=0, k=5, params=TINY_PARAMS)
    calls = []
    first = evaluate(anime, ratings, spec, cache_dir=tmp_path,
                     progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] == first.meta["users"]
    assert not first.meta["cached"] and len(list(tmp_path.glob("*.json"))) == 1
    calls.clear()
    second = evaluate(anime, ratings, spec, cache_dir=tmp_path, progress=lambda *a: calls.append(a))
    assert second.meta["cached"] and not calls
    pd.testing.assert_frame_equal(first.table, second.table)
    assert second.spec == spec
    other = EvalSpec(n_users=0, k=5, params=TINY_PARAMS, random_state=1)
    evaluate(anime, ratings, other, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2
    round_trip = EvalResult.from_json(json.loads(json.dumps(first.to_json())))
    pd.testing.assert_frame_equal(round_trip.table, first.table)
    figures = headline(first)
    assert figures["hybrid best"] >= max(figures["user-user"], figures["content"])


def test_diversity_sweep_at_zero_is_the_served_algorithm_and_is_cached(tmp_path):
    from recommender.evaluation import DIVERSITIES, evaluate_diversity

    anime, ratings = two_taste_groups()
    spec = EvalSpec(n_users=0, k=4, params=TINY_PARAMS)
    curve = evaluate_diversity(anime, ratings, spec, cache_dir=tmp_path)
    assert curve.algorithm == TINY_PARAMS.default_algorithm and not curve.meta["cached"]
    table = curve.table
    assert sorted(table["diversity"].unique()) == list(DIVERSITIES)
    # At 0 MMR is off: the same users and lists as the protocol's row for that algorithm.
    plain = evaluate(anime, ratings, spec).table
    # The default is the hybrid: its row is the weight sweep's at the default weight.
    variant = (f"hybrid w={TINY_PARAMS.hybrid_weight:.1f}" if curve.algorithm == "hybrid"
               else curve.algorithm)
    for segment in ("all", "light", "heavy"):
        mine = table[(table["diversity"] == 0.0) & (table["segment"] == segment)].iloc[0]
        theirs = plain[(plain["variant"] == variant)
                       & (plain["segment"] == segment)].iloc[0]
        assert mine["users"] == theirs["users"]
        for metric, column in (("ndcg", "ndcg"), ("coverage", "coverage"),
                               ("intra_list_diversity", "diversity"), ("novelty", "novelty")):
            assert mine[metric] == pytest.approx(theirs[column], nan_ok=True), (segment, metric)
    again = evaluate_diversity(anime, ratings, spec, cache_dir=tmp_path)
    assert again.meta["cached"]
    pd.testing.assert_frame_equal(again.table, table, check_dtype=False)
    assert len(list(tmp_path.glob("diversity-*.json"))) == 1


def test_an_unknown_algorithm_fails_before_scoring():
    anime, ratings = two_taste_groups()
    with pytest.raises(InvalidParameterError):
        prepare(anime, ratings, EvalSpec(params=TINY_PARAMS, algorithms=("nope",)))


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_targets_on_the_bundled_validation_split(bundled_frames, tmp_path):
    anime, ratings = bundled_frames
    result = evaluate(anime, ratings, EvalSpec(n_users=300), cache_dir=tmp_path)
    figures = headline(result)
    assert figures["hybrid best"] >= max(figures["user-user"], figures["content"])
    # Measured at about 1.9x on 1000 users (README); the floor leaves room for sampling noise.
    assert figures["hybrid best"] >= 1.5 * figures["popularity"]
    assert figures["popularity"] > 5 * figures["random"]


@pytest.mark.realdata
def test_cli_evaluate_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "eval.json"
    # The command's output is under test, not the ranker's quality (the test above and
    # the README's figures use the shipped settings): a one-fold ranker on 500 users
    # halves its fit.
    small_ranker = {"ANIREC_RANKER_FOLDS": "1", "ANIREC_RANKER_TRAIN_USERS": "500"}
    result = subprocess.run([sys.executable, "-m", "recommender", "evaluate", "--users", "25",
                             "--k", "5", "--json", str(out), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, **small_ranker})
    assert result.returncode == 0, result.stderr
    assert "hybrid w=0.5" in result.stdout and "popularity" in result.stdout
    assert "best hybrid weight" in result.stdout
    assert "25/25" in result.stderr  # the progress bar reached the end
    payload = json.loads(out.read_text())
    assert payload["spec"]["k"] == 5 and payload["meta"]["users"] == 25
    assert len(payload["table"]) == (len(WEIGHTS) + len(ALGORITHMS)) * 3
