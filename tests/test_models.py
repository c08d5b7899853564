"""The learned models ("mf", "ease") and their "blend": contract, known answers, closed form."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import TINY_PARAMS, copy_bundled_site, two_taste_groups
from recommender import RecommenderEngine
from recommender.errors import ConfigurationError, UnknownAlgorithmError, UnknownAnimeError
from recommender.models.blend import parse_weights
from recommender.models.ease import EASE, ease_weights, gram_matrix
from recommender.models.mf import ALSFactorization

MODELS = ["mf", "ease", "blend"]
#: λ and regularisation scale with the data: the bundled defaults would swamp 40 users.
MODEL_PARAMS = (TINY_PARAMS.with_model("mf", factors=4, regularization=0.5, alpha=10.0)
                .with_model("ease", l2=2.0, min_support=2))


@pytest.fixture(scope="module")
def engine():
    anime, ratings = two_taste_groups()
    return RecommenderEngine.from_frames(anime, ratings, MODEL_PARAMS)


def group(anime_id: int) -> int:
    return 0 if anime_id <= 10 else 1  # 1-10 sci-fi, 11-20 romance


@pytest.mark.parametrize("algorithm", MODELS)
@pytest.mark.parametrize("n", [1, 5, 15])
def test_contract_for_a_known_user(engine, algorithm, n):
    recs = engine.recommend(4, algorithm=algorithm, n=n)
    watched = set(engine.user_ratings(4)["anime_id"])
    assert 0 < len(recs) <= n
    assert not set(recs["anime_id"]) & watched
    assert recs["anime_id"].is_unique
    assert recs["rank"].tolist() == list(range(1, len(recs) + 1))
    for _, block in recs.groupby("source", sort=False):
        assert (np.diff(block["score"].to_numpy()) <= 1e-6).all()
    assert recs["source"].iloc[0] == algorithm


@pytest.mark.parametrize("algorithm", MODELS)
def test_contract_for_a_what_if_list(engine, algorithm):
    liked = {3: 10, 4: None, 15: -1}
    recs = engine.recommend(liked=liked, algorithm=algorithm, n=8)
    assert 0 < len(recs) <= 8
    assert not set(recs["anime_id"]) & set(liked)
    assert recs["anime_id"].is_unique


@pytest.mark.parametrize("algorithm", MODELS)
@pytest.mark.parametrize("user_id", [2, 3, 8, 11, 20, 31])
def test_users_stay_inside_their_taste_group(engine, algorithm, user_id):
    recs = engine.recommend(user_id, algorithm=algorithm, n=3)
    assert (recs["source"] == algorithm).all()
    assert {group(a) for a in recs["anime_id"]} == {user_id % 2 and 1 or 0}


@pytest.mark.parametrize("algorithm", ["mf", "ease"])
def test_what_if_lists_are_scored_without_retraining(engine, algorithm):
    model = engine.scorer(algorithm)
    state = {k: v.copy() for k, v in model.state_dict().items() if isinstance(v, np.ndarray)}
    recs = engine.recommend(liked={1: 10, 2: 9, 5: 10}, algorithm=algorithm, n=5)
    assert {group(a) for a in recs["anime_id"]} == {0}
    for key, before in state.items():
        assert np.array_equal(model.state_dict()[key], before), key


def test_a_what_if_copy_of_a_user_scores_like_the_user(engine):
    """EASE reads only the list; MF's on-the-fly factors agree with the learned ones."""
    profile = engine.profile(6)
    copy = replace(profile, user_idx=None, user_id=None)
    ease = engine.scorer("ease")
    assert np.allclose(ease.score(profile).values, ease.score(copy).values)
    mf = engine.scorer("mf")
    learned = mf.item_factors_ @ mf.user_vector(profile)
    solved = mf.item_factors_ @ mf.user_vector(copy)
    assert np.corrcoef(learned, solved)[0, 1] > 0.95


@pytest.mark.parametrize("algorithm", ["mf", "ease", "blend"])
def test_explanations_name_a_listed_anime(engine, algorithm):
    liked = {1: 10, 2: 10, 3: 9}
    recs = engine.recommend(liked=liked, algorithm=algorithm, n=4)
    mine = recs[recs["source"] == algorithm]
    assert len(mine)
    names = set(engine.anime_by_id(liked)["name"])
    for _, row in mine.iterrows():
        assert row["because_anime_ids"] and set(row["because_anime_ids"]) <= set(liked)
        assert row["reason"].startswith("because you liked ")
        assert row["because_names"][0] in row["reason"] and row["because_names"][0] in names


def test_hybrid_reasons_keep_both_parts(engine):
    recs = engine.recommend(liked={1: 10, 2: 9}, algorithm="hybrid", collaborative="ease",
                            weight=0.7, n=4)
    assert recs["because_names"].map(len).gt(0).any()
    assert recs["because_name"].notna().any()  # content's own column is still there


def test_ease_closed_form_matches_a_direct_inverse():
    rng = np.random.default_rng(3)
    x = sp.random(60, 12, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    x.data = np.ceil(x.data * 10) / 10
    for threads in (1, 2, 5):  # one band, and several bands of rows on their own threads
        assert np.allclose(gram_matrix(x, threads=threads), (x.T @ x).toarray(), atol=1e-5)
    # Unsorted indices and duplicate entries sum as in a sparse product.
    messy = sp.csr_matrix((np.array([1.0, 2.0, 0.5, 3.0], np.float32), np.array([3, 1, 3, 0]),
                           np.array([0, 3, 4])), shape=(2, 12))
    assert not messy.has_canonical_format
    assert np.allclose(gram_matrix(messy, threads=2), (messy.T @ messy).toarray())
    gram = gram_matrix(x)
    lam = 1.5
    inverse = np.linalg.inv((x.T @ x).toarray().astype(np.float64) + lam * np.eye(12))
    expected = np.eye(12) - inverse / np.diag(inverse)[None, :]
    weights = ease_weights(gram, lam)
    assert np.shares_memory(weights, gram)  # solved in place
    assert np.allclose(weights, expected, atol=1e-5)
    assert np.allclose(np.diag(weights), 0)


def test_ease_fit_restricts_to_supported_anime_and_matches_numpy(engine):
    data = engine.data
    model = EASE(l2=2.0, min_support=17, weighting="rating", dislike_below=0.0).fit(data)
    support = np.bincount(data.ratings.indices, minlength=data.ratings.shape[1])
    assert model.items_.tolist() == np.flatnonzero(support >= 17).tolist()
    raw = data.ratings[:, model.items_].toarray().astype(np.float64)
    x = np.where(raw < 0, 0.5, raw / 10.0)
    inverse = np.linalg.inv(x.T @ x + 2.0 * np.eye(len(model.items_)))
    expected = np.eye(len(model.items_)) - inverse / np.diag(inverse)[None, :]
    assert np.allclose(model.weights_, expected, atol=1e-4)
    profile = engine.profile(9)
    outside = np.setdiff1d(np.arange(data.ratings.shape[1]), model.items_)
    assert (model.score(profile).values[outside] == 0).all()


@pytest.mark.parametrize("model", ["ease", "mf", "content"])
def test_similar_anime(engine, model):
    similar = engine.similar_anime(3, n=5, model=model)
    assert 0 < len(similar) <= 5
    assert 3 not in set(similar["anime_id"]) and similar["anime_id"].is_unique
    assert (np.diff(similar["similarity"].to_numpy()) <= 1e-6).all()
    assert (similar["similarity"] > 0).all()
    assert {"anime_id", "name", "similarity", "genre"} <= set(similar.columns)
    assert group(int(similar["anime_id"].iloc[0])) == 0


def test_similar_anime_validates(engine):
    with pytest.raises(UnknownAnimeError):
        engine.similar_anime(999)
    with pytest.raises(UnknownAlgorithmError):
        engine.similar_anime(3, model="user-user")


@pytest.mark.parametrize("cf", ["mf", "ease"])
@pytest.mark.parametrize("user_id", [2, 7, 12])
def test_hybrid_with_a_learned_model_at_the_weight_extremes(engine, cf, user_id):
    pure = engine.recommend(user_id, algorithm=cf, n=8)
    at_one = engine.recommend(user_id, algorithm="hybrid", collaborative=cf, weight=1.0, n=8)
    at_zero = engine.recommend(user_id, algorithm="hybrid", collaborative=cf, weight=0.0, n=8)
    content = engine.recommend(user_id, algorithm="content", n=8)
    assert at_one["anime_id"].tolist() == pure["anime_id"].tolist()
    assert at_zero["anime_id"].tolist() == content["anime_id"].tolist()


def test_collaborative_defaults_to_the_part_chosen_on_validation(engine):
    # The default part is recorded once, in EngineParams (README, "Evaluation").
    assert engine.collaborative_algorithms == ("user-user", "mf", "ease", "ranker")
    chosen = engine.params.hybrid_collaborative
    assert engine.default_collaborative == chosen
    default = engine.recommend(5, algorithm="hybrid", weight=0.7, n=6)
    explicit = engine.recommend(5, algorithm="hybrid", weight=0.7, n=6, collaborative=chosen)
    assert default["anime_id"].tolist() == explicit["anime_id"].tolist()


@pytest.mark.parametrize("cls, name", [(ALSFactorization, "mf"), (EASE, "ease")])
def test_state_round_trip_scores_the_same(engine, cls, name):
    model = engine.scorer(name)
    restored = cls.from_state(model.state_dict(), engine.data, model.config)
    for liked in ({1: 10, 4: 8}, {12: 9, 15: -1}):
        profile = engine.profile(liked=liked)
        assert np.array_equal(restored.score(profile).values, model.score(profile).values)
    profile = engine.profile(8)
    assert np.array_equal(restored.score(profile).values, model.score(profile).values)


def test_restored_models_are_used_as_they_are(engine):
    models = engine.models
    rebuilt = RecommenderEngine.fit(engine.data, engine.params, models=models)
    assert all(rebuilt.scorer(name) is model for name, model in models.items())


def test_models_can_be_switched_off():
    anime, ratings = two_taste_groups(n_users_per_group=5)
    plain = RecommenderEngine.from_frames(anime, ratings, replace(MODEL_PARAMS, use_models=False))
    assert plain.collaborative_algorithms == ("user-user",)
    # Without the learned models the defaults fall back to what is fitted.
    assert plain.default_collaborative == "user-user"
    assert plain.recommend(2, n=3).attrs["requested"] in plain.algorithms
    with pytest.raises(UnknownAlgorithmError):
        plain.recommend(2, algorithm="ease")


@pytest.mark.parametrize("text", ["", "ease", "ease:x", "ease:-1", "ease:0", ":1"])
def test_bad_blend_weights_are_configuration_errors(text):
    with pytest.raises(ConfigurationError):
        parse_weights(text)
    assert parse_weights("ease:1, user-user:0.5,mf:0") == {"ease": 1.0, "user-user": 0.5}


@pytest.mark.realdata
@pytest.mark.parametrize("algorithm", ["mf", "ease", "blend"])
def test_models_on_real_data(bundled_engine, algorithm):
    recs = bundled_engine.recommend(liked={9253: 10, 1535: 10}, algorithm=algorithm, n=10)
    assert len(recs) == 10 and (recs["source"] == algorithm).all()
    assert not {9253, 1535} & set(recs["anime_id"])
    assert recs["reason"].str.contains("Steins;Gate|Death Note").any()
    user = int(bundled_engine.user_ids()[10])
    if algorithm != "blend":
        pure = bundled_engine.recommend(user, algorithm=algorithm, n=20)
        at_one = bundled_engine.recommend(user, algorithm="hybrid", collaborative=algorithm,
                                          weight=1.0, n=20)
        assert at_one["anime_id"].tolist() == pure["anime_id"].tolist()
        similar = bundled_engine.similar_anime(9253, n=10, model=algorithm)
        assert len(similar) == 10


@pytest.mark.realdata
def test_cli_recommends_with_ease(bundled_site, tmp_path):
    from test_cli import run

    # On a copy of the bundled site, so the CLI loads the saved models.
    result = run("recommend", "--liked", "Steins;Gate", "--algorithm", "ease", "-n", "5",
                 env=copy_bundled_site(bundled_site, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "because you liked Steins;Gate" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 6


def _implicit_top(model: ALSFactorization, profile, item: int, n: int = 3):
    """implicit's own (per-item Python loop) explanation, the reference."""
    row = model._row(profile)
    _total, top, _weights = model.model_.explain(0, row, item, N=n)
    return [(int(i), float(s)) for i, s in top]


@pytest.mark.parametrize("source", ["toy", "real"])
def test_mf_contributions_are_implicit_s_explanation(engine, bundled_engine, source):
    # The vectorised explanation must name the same anime with the same shares as
    # implicit's ALS explain, for known users and what-if lists.
    eng = engine if source == "toy" else bundled_engine
    model = eng.scorer("mf")
    rng = np.random.default_rng(1)
    users = rng.choice(eng.user_ids(), 5, replace=False)
    profiles = [eng.profile(int(u)) for u in users]
    profiles.append(eng.profile(liked={int(a): 9 for a in eng.data.items.ids[:5]}))
    checked = 0
    for profile in profiles:
        items = rng.choice(len(eng.data.items), 4, replace=False)
        ours = model.contributions(profile, items, n=3)
        for item, mine in zip(items, ours):
            theirs = _implicit_top(model, profile, int(item))
            every = dict(_implicit_top(model, profile, int(item), n=len(profile.item_idx)))
            assert len(mine) == len(theirs)
            tolerance = 1e-3 * max([1e-6] + [abs(t) for _, t in theirs])
            for (i, s), (_j, t) in zip(mine, theirs):
                # The same shares in the same order, and each named anime's own
                # share is implicit's for that anime (so on a near-tie either of
                # two equal anime may be named, but never a wrong one).
                assert abs(s - t) <= tolerance
                assert abs(every[i] - s) <= tolerance
            checked += 1
    assert checked == len(profiles) * 4


def test_mf_confidences_from_a_read_only_matrix():
    """The cached matrix is memory-mapped read-only: the confidences must not write to it."""
    from recommender.models.mf import confidence_matrix

    ratings = sp.csr_matrix(np.array([[8, -1, 0, 3], [0, 10, 2, 0], [-1, 0, 7, 9]],
                                     dtype=np.float32))
    for array in (ratings.data, ratings.indices, ratings.indptr):
        array.setflags(write=False)
    before = ratings.toarray()
    conf = confidence_matrix(ratings, alpha=2.0, watched_value=0.5, dislike_below=5.0)
    # 1 + alpha * rating / 10; "watched" (-1) rows take watched_value; below 5 is a dislike.
    assert conf[0, 0] == pytest.approx(1.0 + 2.0 * 0.8)
    assert conf[0, 1] == pytest.approx(1.0 + 2.0 * 0.5)
    assert conf[0, 3] == pytest.approx(-(1.0 + 2.0 * (5.0 - 3.0) / 10.0))
    assert conf.nnz == ratings.nnz
    np.testing.assert_array_equal(ratings.toarray(), before)
