"""The learned ranker: no held-out rating reaches its training, real reasons, persistence."""

from dataclasses import replace

import numpy as np
import pytest

from conftest import TINY_PARAMS, two_taste_groups
from recommender import RecommenderEngine
from recommender.core.profiling import PROFILER
from recommender.evaluation import EvalSpec, prepare, split_ratings
from recommender.models import features as F
from recommender.models.franchise import franchise_groups, franchise_key
from recommender.models.ranker import LearnedRanker
from recommender.models.ranker_reasons import FAMILIES, reasons_from_contributions
from recommender.serving.ranking import diversity_vectors, franchise_runs


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine


def _pairs(frame):
    return set(zip(frame["user_id"].astype(int), frame["anime_id"].astype(int)))


@pytest.mark.parametrize("target", ["validation", "test"])
def test_no_held_out_rating_reaches_the_ranker(monkeypatch, target):
    """The ranker is fitted on the evaluation's training side only, and carves its own labels."""
    seen = []
    original_fit, original_holdout = LearnedRanker.fit, F.holdout

    def spy_fit(self, data):
        seen.append(data)
        return original_fit(self, data)

    def spy_holdout(ratings, fraction, **kw):
        kept, held = original_holdout(ratings, fraction, **kw)
        seen.append((ratings, kept, held))
        return kept, held

    monkeypatch.setattr(LearnedRanker, "fit", spy_fit)
    monkeypatch.setattr(F, "holdout", spy_holdout)
    anime, ratings = two_taste_groups()
    split = split_ratings(ratings, random_state=0)
    setup = prepare(anime, ratings, EvalSpec(split=target, n_users=0, params=TINY_PARAMS,
                                             algorithms=("ranker",)), split=split)
    data, folds = seen[0], seen[1:]
    forbidden = _pairs(split.test) | (_pairs(split.validation) if target == "validation"
                                      else set())
    rows, cols = data.ratings.nonzero()
    fitted = set(zip(data.users.ids[rows].tolist(), data.items.ids[cols].tolist()))
    assert fitted and not fitted & forbidden
    ranker = setup.engine.models["ranker"]
    assert len(folds) == ranker.config.folds >= 2  # every fold carves its own labels
    for given, kept, held in folds:
        assert given is data.ratings
        # The ranker's own labels are not among the inputs of its stage-1 models.
        assert kept.multiply(held).nnz == 0 and held.nnz > 0
        assert (kept + held - given).nnz == 0
    assert folds[0][2].nnz and (folds[0][2] != folds[1][2]).nnz  # other seeds, other labels
    assert ranker.trained_users_ > 0


def test_hybrid_ends_are_exactly_the_parts(engine):
    for user in (2, 3):
        for weight, pure in ((1.0, "ranker"), (0.0, "content")):
            mixed = engine.recommend(user, algorithm="hybrid", collaborative="ranker",
                                     weight=weight, n=6)
            alone = engine.recommend(user, algorithm=pure, n=6)
            assert mixed["anime_id"].tolist() == alone["anime_id"].tolist()


def test_the_default_call_uses_the_recorded_default(engine):
    plain = engine.recommend(2)
    params = engine.params
    spelled = engine.recommend(2, algorithm=params.default_algorithm,
                               collaborative=params.hybrid_collaborative,
                               weight=params.hybrid_weight)
    assert plain["anime_id"].tolist() == spelled["anime_id"].tolist()
    assert plain.attrs["requested"] == params.default_algorithm


def test_ranker_keeps_users_in_their_taste_and_what_if_lists_work(engine):
    anime = engine.anime.set_index("anime_id")
    recs = engine.recommend(2, algorithm="ranker", n=4)  # even users love sci-fi
    assert (recs["source"] == "ranker").all()
    assert anime.loc[recs["anime_id"], "genre"].str.contains("Sci-Fi").all()
    what_if = engine.recommend(liked={11: 10, 12: 9, 13: 10}, algorithm="ranker", n=4)
    assert anime.loc[what_if["anime_id"], "genre"].str.contains("Romance").all()
    assert not set(what_if["anime_id"]) & {11, 12, 13}


def test_reasons_come_from_the_contributions_and_follow_a_changed_feature(engine):
    ranker = engine.models["ranker"]
    profile = engine.profile(user_id=2)
    scores = engine.scores(profile, "ranker")
    items, x = scores.context["items"], scores.context["features"]
    contrib = ranker.contributions(x)
    # pred_contrib is a real decomposition: per row it sums to the raw prediction.
    raw = ranker.booster_.predict(x, raw_score=True)
    assert np.allclose(contrib.sum(axis=1), raw, atol=1e-6)
    explained = ranker.explain(profile, items[:3], scores)
    top = max(explained.columns["contributions"][0].items(), key=lambda kv: kv[1])
    assert top[1] > 0
    args = (profile, scores.context["parts"], ranker.parts, ranker.table_, ranker.names_)
    before, _ = reasons_from_contributions(x[:1], contrib[:1], items[:1], *args)
    assert before == explained.reasons[:1]
    # Take away the evidence of the family that raised the item most: its reason goes.
    changed = x[:1].copy()
    for name in FAMILIES[top[0]]:
        changed[0, F.COLUMN[name]] = np.nan if name.endswith(("rank", "mean")) else 0.0
    after, families = reasons_from_contributions(changed, ranker.contributions(changed),
                                                 items[:1], *args)
    assert families[0][top[0]] < top[1]
    assert after != before
    # Contributions decide which families are named: flip them and the reason changes.
    flipped, _ = reasons_from_contributions(x[:1], -contrib[:1], items[:1], *args)
    assert flipped != before


def test_a_reason_never_says_the_same_thing_twice(engine):
    ranker = engine.models["ranker"]
    profile = engine.profile(user_id=2)
    scores = engine.scores(profile, "ranker")
    items, x = scores.context["items"], scores.context["features"]
    args = (profile, scores.context["parts"], ranker.parts, ranker.table_, ranker.names_)
    # EASE and ALS raise every item most, then the item's quality: both models name a
    # title the user liked, and when it is the same one the quality phrase is next.
    contrib = np.zeros((len(items), len(F.FEATURES) + 1))
    for family, weight in (("ease", 3.0), ("mf", 2.0), ("quality", 1.0)):
        contrib[:, F.COLUMN[FAMILIES[family][0]]] = weight
    reasons, _ = reasons_from_contributions(x, contrib, items, *args)
    parts = [r.split(" · ") for r in reasons]
    assert all(len(p) == 2 and p[0] != p[1] for p in parts)
    models = ("fans of ", "people with your history")
    assert all(p[0].startswith(models) for p in parts)
    # ALS always has a phrase, so a quality phrase second means it repeated EASE's.
    repeated = [p for p in parts if p[1].startswith(("rated highly by", "community score"))]
    assert repeated, "no item had the same phrase from both models"
    assert all(p[1].startswith(models) for p in parts if p not in repeated)


def test_other_algorithms_keep_their_reasons(engine):
    uu = engine.recommend(2, algorithm="user-user", n=3)
    assert uu["reason"].str.contains("nearest users").all()
    content = engine.recommend(2, algorithm="content", n=3)
    assert content["reason"].str.startswith("close to").all()


def test_a_persisted_ranker_scores_the_same_and_a_warm_start_fits_nothing(tiny_settings):
    cold = RecommenderEngine.from_settings(tiny_settings)
    PROFILER.clear()
    warm = RecommenderEngine.from_settings(tiny_settings)
    assert "ranker" in warm.build_info["models_loaded"]
    fitted = {r.stage for r in PROFILER.records() if r.stage.endswith(" fit")}
    assert not fitted & {"ranker fit", "ease fit", "mf fit", "user-user fit", "content fit"}
    for user in (2, 5):
        a = cold.scores(cold.profile(user_id=user), "ranker").values
        b = warm.scores(warm.profile(user_id=user), "ranker").values
        assert np.array_equal(a, b)
    assert (cold.recommend(4, algorithm="ranker", n=5)["reason"].tolist()
            == warm.recommend(4, algorithm="ranker", n=5)["reason"].tolist())
    # A fit setting of a stage-1 model is part of the ranker's key: it refits.
    changed = replace(tiny_settings, params=tiny_settings.params.with_model("ease", l2=50.0))
    assert "ranker" not in RecommenderEngine.from_settings(changed).build_info["models_loaded"]
    cold.database.dispose()


def test_franchise_keys_group_sequels_and_seasons():
    assert len({franchise_key(n) for n in ("Gintama", "Gintama'", "Gintama°",
                                           "Gintama: Enchousen", "Gintama Movie")}) == 1
    assert franchise_key("Shingeki no Kyojin Season 2") == "shingeki no kyojin"
    assert franchise_key("Steins;Gate") != franchise_key("Death Note")
    import pandas as pd

    anime = pd.DataFrame({"name": ["Gintama", "Gintama'", "Death Note", "Monster"]})
    assert franchise_groups(anime).tolist()[2:] == [-1, -1]
    groups = franchise_groups(anime)
    assert groups[0] == groups[1] >= 0


def test_franchise_runs_and_grouping(engine):
    franchise = np.array([0, 0, -1, 1, 0, 1])
    lead, more = franchise_runs(np.array([4, 2, 0, 3, 5, 1]), franchise)
    assert lead.tolist() == [True, True, False, True, False, False]
    assert more.tolist() == [2, 0, 0, 1, 0, 0]
    recs = engine.recommend(2, algorithm="ranker", n=6)
    grouped = engine.group_franchises(recs)
    assert len(grouped) == int(recs["franchise_lead"].sum())
    assert sum(len(a) for a in grouped["also_ids"]) == len(recs) - len(grouped)


def test_mmr_similarity_counts_the_franchise(engine):
    import pandas as pd

    anime = pd.DataFrame({"genre": ["Action", "Action", "Action"]})
    vectors = diversity_vectors(anime, np.array([0, 0, -1]))
    sims = (vectors @ vectors.T).toarray()
    assert sims[0, 1] == pytest.approx(1.0) and sims[0, 2] == pytest.approx(0.5)


def test_graded_labels_and_folds(engine):
    """Graded labels give a 10 more gain than a 9; each fold adds its own users' rows."""
    ranker = engine.models["ranker"]
    labels = {}
    for graded in (False, True):
        variant = LearnedRanker(ranker.parts, replace(ranker.config, graded=graded))
        blocks, ys, groups = variant.training_rows(engine.data, 0)
        labels[graded] = np.concatenate(ys)
        assert len(blocks) == len(groups) > 0 and sum(groups) == len(labels[graded])
    assert set(labels[False].tolist()) == {0.0, 1.0}
    assert set(labels[True].tolist()) == {0.0, 2.0, 3.0}  # the tiny data rates 9 and 10
    assert np.array_equal(labels[True] > 0, labels[False] > 0)
    one = LearnedRanker(ranker.parts, replace(ranker.config, folds=1)).fit(engine.data)
    two = LearnedRanker(ranker.parts, replace(ranker.config, folds=2)).fit(engine.data)
    assert two.trained_users_ > one.trained_users_
