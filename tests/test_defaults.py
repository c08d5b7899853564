"""One source of defaults: a model built from its own defaults is the one the engine serves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import two_taste_groups
from recommender import EngineParams, RecommenderEngine
from recommender.config import load_settings, params_from_env, params_to_env
from recommender.core.params import fit_key, is_query_field
from recommender.core.types import Context, Snapshot
from recommender.data.catalog import clean_anime, clean_ratings
from recommender.errors import ConfigurationError
from recommender.models import registry
from recommender.models.baselines import Popularity, RandomScorer
from recommender.models.blend import Blend
from recommender.models.content import ContentTfidf
from recommender.models.ease import EASE
from recommender.models.mf import ALSFactorization
from recommender.models.user_knn import UserKNN

#: Each algorithm's class, built with no arguments at all (as a notebook would).
OWN_DEFAULTS = {
    "popularity": Popularity, "random": RandomScorer, "content": ContentTfidf,
    "user-user": UserKNN, "mf": ALSFactorization, "ease": EASE,
}


@pytest.fixture(scope="module")
def data():
    anime, ratings = two_taste_groups()
    return RecommenderEngine.training_data(clean_anime(anime), clean_ratings(ratings))


@pytest.fixture(scope="module")
def served(data):
    """The engine the product builds from ``EngineParams()`` (the ranker included)."""
    return RecommenderEngine.fit(data, EngineParams())


def test_every_algorithm_has_a_class_default_test():
    assert set(OWN_DEFAULTS) | {"blend", "ranker"} == set(registry.names())


@pytest.mark.parametrize("name", sorted(OWN_DEFAULTS))
def test_a_model_from_its_own_defaults_is_the_served_model(name, data, served):
    own = OWN_DEFAULTS[name]().fit(data)
    engine_model = served.scorer(name)
    assert own.config == engine_model.config == EngineParams().model(name)
    snapshot = served.snapshot
    profiles = [served.profile(u) for u in (2, 7, 18)]
    profiles.append(served.profile(liked={1: 10, 4: 9, 15: 2}))
    for profile in profiles:
        context = Context(snapshot)
        if name == "user-user":
            # The notebook model's own rows, indexed as the engine indexes them.
            context = Context(Snapshot(snapshot.data, own.rows(data.ratings)))
        a = own.score(profile, context).values
        b = engine_model.score(profile, Context(snapshot)).values
        assert np.allclose(a, b, atol=1e-6), name


def test_the_blend_from_its_own_defaults_is_the_served_blend(served):
    own = Blend(served.models)
    assert own.config == served.scorer("blend").config == EngineParams().model("blend")
    profile = served.profile(5)
    context = Context(served.snapshot)
    assert np.array_equal(own.score(profile, context).values,
                          served.scorer("blend").score(profile, context).values)


def test_the_ranker_from_its_own_defaults_is_the_served_ranker(data, served):
    from recommender.models.ranker import LearnedRanker

    own = LearnedRanker(served.models).fit(data)
    assert own.config == served.scorer("ranker").config == EngineParams().model("ranker")
    without = RecommenderEngine.fit(data, EngineParams(use_ranker=False))
    assert "ranker" not in without.algorithms
    # The defaults fall back to the best fitted algorithm on validation.
    assert (served.default_algorithm, served.default_collaborative) == ("hybrid", "ranker")
    assert (without.default_algorithm, without.default_collaborative) == ("hybrid", "ease")
    params = EngineParams(default_algorithm="ranker", use_ranker=False)
    assert RecommenderEngine.fit(data, params).default_algorithm == "blend"
    context = Context(served.snapshot)
    for profile in (served.profile(5), served.profile(liked={1: 10, 4: 9, 15: 2})):
        assert np.array_equal(own.score(profile, context).values,
                              served.scorer("ranker").score(profile, context).values)


def test_engine_params_refer_to_the_model_configs_instead_of_copying_them():
    params = EngineParams()
    for algorithm in registry.ALGORITHMS:
        assert params.model(algorithm.name) == algorithm.config()
        assert type(params.model(algorithm.name)) is algorithm.config
    assert not {f.name for f in dataclasses.fields(EngineParams)} - {
        "default_algorithm", "hybrid_collaborative", "hybrid_weight", "include_adult",
        "use_models", "use_ranker", "models"}


def test_every_field_is_settable_from_the_environment_and_round_trips():
    params = (EngineParams(hybrid_weight=0.4)
              .with_model("user-user", dim=12, centre=True, watched_weight=0.25)
              .with_model("ease", weighting="binary").with_model("blend", weights="ease:1"))
    assert params_from_env(params_to_env(params)) == params
    assert load_settings({"ANIREC_MF_FACTORS": "16"}).params.model("mf").factors == 16
    with pytest.raises(ConfigurationError, match="ANIREC_EASE_L2"):
        load_settings({"ANIREC_EASE_L2": "a lot"})
    with pytest.raises(ConfigurationError):
        load_settings({"ANIREC_EASE_WEIGHTING": "loud"})
    with pytest.raises(ConfigurationError):
        EngineParams(models={"no-such-model": object()})


def test_unknown_settings_are_reported_with_the_likely_name(caplog):
    load_settings({"ANIREC_DIM": "8"})
    assert "ANIREC_DIM is not a setting" in caplog.text
    assert "ANIREC_USER_USER_DIM" in caplog.text


def test_the_cache_key_is_only_what_a_fit_depends_on():
    config = EngineParams().model("user-user")
    key = fit_key(config)
    assert {"dim", "m", "ef_construction", "damping", "centre", "random_state"} <= set(key)
    assert not {"n_neighbours", "ef", "n_candidates", "posting_budget"} & set(key)
    query = {f.name for f in dataclasses.fields(config) if is_query_field(f)}
    assert query | set(key) == {f.name for f in dataclasses.fields(config)}
    # Serving settings are not in any model's key.
    served = EngineParams(hybrid_weight=0.1, include_adult=True)
    assert all(served.fit_key(n) == EngineParams().fit_key(n) for n in registry.names())
