"""The first page before the learned models: served by user-user, content and search,
with the learned models fitted in the background and offered as "still preparing".

EASE's fit is held on an event, so the "while preparing" state lasts exactly as
long as each test needs, on any machine.
"""

from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, TINY_ENV, TINY_PARAMS, environment, fill_tiny_database
from recommender import RecommenderEngine
from recommender.config import Settings
from recommender.errors import ModelPreparingError, RecommenderError
from recommender.models.ease import EASE

LEARNED = ("mf", "ease", "blend", "ranker")
WAIT = 120  # seconds: generous, the tiny data fit in about one


@pytest.fixture
def held_ease(monkeypatch):
    """EASE's fit waits until the test sets the returned event (or fails, if told to)."""
    gate = threading.Event()
    failure: list[Exception] = []
    fit = EASE.fit

    def held_fit(self, data):
        assert gate.wait(WAIT), "the test never released EASE's fit"
        if failure:
            raise failure[0]
        return fit(self, data)

    monkeypatch.setattr(EASE, "fit", held_fit)
    gate.failure = failure
    yield gate
    gate.set()  # never leave a background thread waiting


@pytest.fixture
def settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    fill_tiny_database(url, tmp_path)
    return Settings(database_url=url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)


def test_the_engine_serves_at_once_and_publishes_the_learned_models_when_fitted(
        settings, held_ease):
    engine = RecommenderEngine.from_settings(settings, background=True)
    user = int(engine.user_ids()[0])
    assert engine.preparing == LEARNED
    assert engine.build_info["deferred"] == list(LEARNED)
    assert "ease" not in engine.algorithms and "ease" not in engine.collaborative_algorithms
    # The default call is served by the ready models meanwhile, not refused.
    recs = engine.recommend(user, n=5)
    assert len(recs) == 5 and recs.attrs["method"] == "hybrid"
    assert set(recs["source"]) <= {"hybrid", "content", "popularity"}
    for call in (lambda: engine.recommend(user, algorithm="ease"),
                 lambda: engine.recommend(user, algorithm="hybrid", collaborative="mf"),
                 lambda: engine.similar_anime(1, model="ease"),
                 lambda: engine.scorer("blend")):
        with pytest.raises(ModelPreparingError, match="still being prepared"):
            call()
    assert issubclass(ModelPreparingError, RecommenderError)
    # ALS fits first (not held), then the fit waits in EASE, and says so.
    deadline = time.monotonic() + WAIT
    while not engine.background.progress[0].startswith("fitting EASE"):
        assert time.monotonic() < deadline, engine.background.progress
        time.sleep(0.05)
    assert 0.0 < engine.background.progress[1] < 1.0
    # A user saved meanwhile is kept, and served by the models published later.
    new_id = engine.add_user({1: 10, 2: 9, 3: 10})
    assert not (settings.cache_dir / "manifest.json").exists()  # saved after each round

    held_ease.set()
    assert engine.background.wait(WAIT)
    assert engine.preparing == () and engine.background.problem is None
    assert set(LEARNED) <= set(engine.algorithms)
    assert engine.default_algorithm == "hybrid" and engine.default_collaborative == "ranker"
    assert engine.recommend(user, n=5).attrs["collaborative"] == "ranker"
    assert len(engine.recommend(new_id, algorithm="ease", n=5)) == 5

    # The background fit saved the cache: the next start loads everything, fits nothing.
    warm = RecommenderEngine.from_settings(settings, background=True)
    assert warm.background is None and warm.preparing == ()
    assert {"ease", "mf", "ranker"} <= set(warm.build_info["models_loaded"])
    assert warm.has_user(new_id)
    assert warm.recommend(user, n=5)["anime_id"].tolist() == \
        engine.recommend(user, n=5)["anime_id"].tolist()


def test_the_ranker_comes_after_the_other_learned_models(settings, held_ease, monkeypatch):
    """EASE, ALS and the blend are published (and saved) while the ranker is still fitted."""
    from recommender.models.ranker import LearnedRanker

    gate, fit = threading.Event(), LearnedRanker.fit

    def held_fit(self, data):
        assert gate.wait(WAIT), "the test never released the ranker's fit"
        return fit(self, data)

    monkeypatch.setattr(LearnedRanker, "fit", held_fit)
    try:
        engine = RecommenderEngine.from_settings(settings, background=True)
        user = int(engine.user_ids()[0])
        held_ease.set()
        deadline = time.monotonic() + WAIT
        while engine.background.progress[0] != "fitting Learned ranker":
            assert time.monotonic() < deadline, engine.background.progress
            time.sleep(0.05)
        assert engine.preparing == ("ranker",) and 0.0 < engine.background.progress[1] < 1.0
        assert {"mf", "ease", "blend"} <= set(engine.algorithms)
        # The default falls back to the best ready model on validation meanwhile.
        assert (engine.default_algorithm, engine.default_collaborative) == ("hybrid", "ease")
        assert engine.recommend(user, n=5).attrs["collaborative"] == "ease"
        with pytest.raises(ModelPreparingError):
            engine.recommend(user, algorithm="ranker")
        manifest = settings.cache_dir / "manifest.json"
        deadline = time.monotonic() + WAIT
        while not manifest.exists():  # the first round is saved before the ranker's ends
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "ease" in manifest.read_text() and '"ranker"' not in manifest.read_text()
    finally:
        gate.set()
    assert engine.background.wait(WAIT) and engine.background.problem is None
    assert engine.preparing == () and engine.default_collaborative == "ranker"
    assert '"ranker"' in manifest.read_text()


def test_a_failed_background_fit_leaves_the_ready_models_serving(settings, held_ease):
    held_ease.failure.append(MemoryError("cannot allocate the Gram matrix"))
    engine = RecommenderEngine.from_settings(settings, background=True)
    held_ease.set()
    assert engine.background.wait(WAIT)
    assert engine.preparing == ()
    assert "MemoryError" in engine.background.problem
    assert "ease" not in engine.algorithms
    assert len(engine.recommend(int(engine.user_ids()[0]), n=5)) == 5
    with pytest.raises(RecommenderError):  # no longer "preparing": simply not offered
        engine.recommend(int(engine.user_ids()[0]), algorithm="ease")


def test_without_background_the_start_fits_everything_first(settings):
    engine = RecommenderEngine.from_settings(settings)
    assert engine.background is None and set(LEARNED) <= set(engine.algorithms)


# ---------------------------------------------------------------------- the dashboard
@pytest.fixture
def dashboard(settings, held_ease):
    env = {**TINY_ENV, "DATABASE_URL": settings.database_url,
           "ANIREC_CACHE_DIR": str(settings.cache_dir), "ANIREC_BACKGROUND_FIT": "1"}
    with environment(env):
        yield held_ease


def recommend_page(query: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "recommend.py"), default_timeout=WAIT)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_recommend_shows_the_learned_choices_as_still_preparing_until_ready(dashboard):
    import app_state

    at = recommend_page({"user": "2"})
    assert not at.exception
    radio = at.radio(key="rec_algorithm")
    # The default (the hybrid over the ranker) is chosen and labelled, not silently replaced.
    assert radio.value == "hybrid"
    captions = dict(zip(radio.options, radio.proto.captions))
    assert captions["Learned ranker"] == captions["Blend"] == captions["EASE"] == \
        "still preparing"
    assert captions["User-user"] == "" and captions["Hybrid"] == ""
    notice = " ".join(str(i.value) for i in at.info)
    assert "Learned ranker is still being prepared" in notice
    assert "Top 10 for user 2 · Hybrid (User-user + content" in at.subheader[0].value
    assert at.query_params["collab"] == "ranker"  # the link keeps the choice
    # A second visitor meanwhile sees the same state.
    other = recommend_page({"user": "4", "algorithm": "hybrid", "collab": "ease"})
    assert "EASE is still being prepared" in " ".join(str(i.value) for i in other.info)

    dashboard.set()
    assert app_state.get_engine().background.wait(WAIT)
    at.run()
    assert not at.exception and not at.info
    assert at.radio(key="rec_algorithm").value == "hybrid"
    assert not any(at.radio(key="rec_algorithm").proto.captions)
    assert at.subheader[0].value.startswith("Top 10 for user 2 · Hybrid (Learned ranker")
