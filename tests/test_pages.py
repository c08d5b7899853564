"""Every dashboard page under AppTest: renders, widgets drive the engine, errors are friendly.

AppTest runs a page in this process, so the engine cached by ``app_state`` is
started once (warm, from a copy of the bundled site) and shared by every test here.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, copy_bundled_site

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

TIMEOUT = 600  # the first page run starts the engine; a loaded CI machine is slow


@pytest.fixture(scope="module", autouse=True)
def isolated_settings(tmp_path_factory, bundled_site):
    """Point the database and the index cache at a temporary folder, never at data/.

    The folder is a copy of the bundled site (conftest), so the first page loads
    the saved models instead of fitting them again.
    """
    tmp = tmp_path_factory.mktemp("dashboard")
    saved = {k: os.environ.get(k)
             for k in ("DATABASE_URL", "ANIREC_CACHE_DIR", "ANIREC_BACKGROUND_FIT")}
    os.environ.update(copy_bundled_site(bundled_site, tmp))
    # Every model before the first page (tests/test_background_fit.py covers the other way).
    os.environ["ANIREC_BACKGROUND_FIT"] = "0"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def engine(isolated_settings):
    import app_state

    return app_state.get_engine()


def page(name: str, query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at.run()


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def results_table(at: AppTest):
    """The results table of the Recommend page (the last dataframe on it)."""
    return at.dataframe[-1].value


def neighbour_count(at: AppTest) -> dict:
    """``k`` as the page sends it: only while the slider is enabled (the part uses it).

    The learned ranker keeps the neighbour count it was trained with, so the
    page disables the slider and sends no ``k`` for it.
    """
    slider = at.slider(key="rec_k")
    return {} if slider.disabled else {"k": slider.value}


def some_users(engine, n: int = 3) -> list[int]:
    """Users with enough ratings that every algorithm has evidence for them."""
    ids = engine.user_ids()
    counts = engine.data.ratings.indptr[1:] - engine.data.ratings.indptr[:-1]
    return [int(u) for u in ids[counts >= 50][:n]]


# ---------------------------------------------------------------------- home
def test_home_renders_the_data_and_the_engine_status(engine):
    at = page("home.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    stats = engine.stats()
    assert metrics["Users"] == f"{stats['users']:,}"
    assert metrics["Ratings"] == f"{stats['ratings']:,}"
    assert metrics["Index"] in {"Built", "Loaded"}
    charts = at.get("plotly_chart")
    assert len(charts) >= 2


# ---------------------------------------------------------------------- recommend
def test_recommend_for_a_user_from_the_url_matches_the_engine(engine):
    user = some_users(engine)[0]
    at = page("recommend.py", query={"user": str(user), "algorithm": "hybrid",
                                     "weight": "0.3", "n": "8"})
    assert not at.exception
    shown = results_table(at)
    expected = engine.recommend(user, algorithm="hybrid", weight=0.3, n=8,
                                **neighbour_count(at))
    assert shown["name"].tolist() == expected["name"].tolist()
    assert any(f"user {user}" in s for s in texts(at.subheader))
    assert at.query_params["user"] == str(user)
    assert at.query_params["weight"] == "0.30"


def test_weight_changes_the_results_and_reports_what_entered_and_left(engine):
    user = some_users(engine)[1]
    at = page("recommend.py", query={"user": str(user), "algorithm": "hybrid", "weight": "0.0",
                                     "n": "10"})
    before = results_table(at)["anime_id"].tolist()
    at.slider(key="rec_weight").set_value(1.0).run()
    assert not at.exception
    after = results_table(at)["anime_id"].tolist()
    assert after != before
    expected = engine.recommend(user, algorithm="hybrid", weight=1.0, n=10,
                                **neighbour_count(at))
    assert after == expected["anime_id"].tolist()
    entered = len(set(after) - set(before))
    summary = [s for s in texts(at.markdown) if "0.00 → 1.00" in s]
    assert summary and f"{entered} entered and {entered} left" in summary[0]
    assert at.query_params["weight"] == "1.00"


def test_algorithm_and_user_widgets_drive_the_engine(engine):
    first, second = some_users(engine)[:2]
    at = page("recommend.py", query={"user": str(first)})
    hybrid = results_table(at)["name"].tolist()
    at.radio(key="rec_algorithm").set_value("content").run()
    content = results_table(at)["name"].tolist()
    assert content != hybrid
    assert content == engine.recommend(first, algorithm="content", n=10)["name"].tolist()
    at.number_input(key="rec_user").set_value(second).run()
    assert not at.exception
    assert results_table(at)["name"].tolist() == engine.recommend(
        second, algorithm="content", n=10)["name"].tolist()
    assert at.query_params["user"] == str(second)
    assert at.query_params["algorithm"] == "content"


def test_random_user_button_picks_a_known_user(engine):
    at = page("recommend.py")
    at.button[0].click().run()
    assert not at.exception
    assert engine.has_user(int(at.number_input(key="rec_user").value))
    assert not at.error


def test_unknown_user_id_gets_a_friendly_error(engine):
    missing = int(engine.user_ids()[-1]) + 1000
    at = page("recommend.py", query={"user": str(missing)})
    assert not at.exception
    assert any(f"There is no user {missing}" in e for e in texts(at.error))
    at = page("recommend.py", query={"user": "abc", "weight": "7"})
    assert not at.exception
    warnings = " ".join(texts(at.warning))
    assert "not a user id" in warnings and "weight must be" in warnings


def test_empty_list_gets_a_message(engine):
    at = page("recommend.py", query={"mode": "list"})
    assert not at.exception
    assert any("Your list is empty" in w for w in texts(at.warning))


def test_a_search_with_no_hits_gets_a_message(engine):
    term = "qqqzzzxxv"
    assert engine.search(term).empty
    # The searchbox component keeps the typed text in its session state.
    at = page("recommend.py", query={"mode": "list"}, state={"anime_search": {
        "result": None, "search": term, "options_js": [], "key_react": "anime_search_react_0"}})
    assert not at.exception
    assert any(f"No anime matches “{term}”" in w for w in texts(at.warning))


def test_a_built_list_is_recommended_and_ratings_matter(engine):
    steins = engine.resolve_title("stiens gate")
    madoka = engine.resolve_title("madoka magica")
    at = page("recommend.py", query={"mode": "list", "algorithm": "content"},
              state={"my_list": {steins: None, madoka: None}})
    assert not at.exception
    shown = results_table(at)
    expected = engine.recommend(liked={steins: None, madoka: None}, algorithm="content", n=10)
    assert shown["anime_id"].tolist() == expected["anime_id"].tolist()
    assert steins not in shown["anime_id"].tolist()
    at.selectbox(key=f"rate_{steins}").set_value(1).run()
    assert not at.exception
    rerated = engine.recommend(liked={steins: 1, madoka: None}, algorithm="content", n=10)
    assert results_table(at)["anime_id"].tolist() == rerated["anime_id"].tolist()
    assert rerated["anime_id"].tolist() != expected["anime_id"].tolist()


def test_saving_a_list(engine):
    steins = engine.resolve_title("stiens gate")
    at = page("recommend.py", query={"mode": "list"}, state={"my_list": {steins: 9}})
    save = next(b for b in at.button if "Save as a new user" in b.label)
    save.click().run()
    assert not at.exception
    success = [s for s in texts(at.success) if s.startswith("Saved as user")]
    assert success
    new_id = int(success[0].removeprefix("Saved as user ").rstrip("."))
    assert engine.has_user(new_id)
    assert engine.user_ratings(new_id)["anime_id"].tolist() == [steins]
    next(b for b in at.button if b.label == f"Open user {new_id}").click().run()
    assert at.number_input(key="rec_user").value == new_id
    assert not at.error
    assert any(f"user {new_id}" in s for s in texts(at.subheader))


# The per-session quota of saves is tested on a tiny database in test_admin_page.py.


def test_database_unreachable_is_a_friendly_error(engine, monkeypatch):
    # A closed port: nothing listens on port 9 of localhost. A new URL is a new cache
    # key, so the pages really try to connect.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/anime")
    for name in ("home.py", "recommend.py", "neighbours.py", "performance.py"):
        at = page(name)
        assert not at.exception, name
        assert any("database cannot be reached" in e for e in texts(at.error)), name


def test_cached_accessors_share_the_engine_state(engine):
    import app_state

    assert app_state.get_engine() is engine  # one engine per settings key
    assert app_state.get_matrix() is engine.data.ratings
    assert app_state.get_index() is engine.knn.index_
    key = app_state.settings_key(app_state.current_settings())
    other = app_state.settings_key(replace(app_state.current_settings(),
                                           params=engine.params.with_model("user-user",
                                                                           ef=17)))
    assert key != other  # new index parameters give a new cache entry


def test_markdown_escaping_shows_names_literally():
    from app_state import md_escape

    name = "*Bold* <b>x</b> [link](http://a) $x$ _it_"
    escaped = md_escape(name)
    assert "<b>" not in escaped and "*Bold*" not in escaped
    assert escaped.replace("\\", "") == name


# ---------------------------------------------------------------------- neighbours
def test_neighbours_page_matches_the_engine(engine):
    user = some_users(engine)[0]
    at = page("neighbours.py", query={"user": str(user)})
    assert not at.exception
    table = at.dataframe[0].value
    expected = engine.neighbors(user, k=20)
    assert table["user_id"].tolist() == expected["user_id"].tolist()
    exact = engine.neighbors(user, k=20, exact=True)
    recall = len(set(expected["user_id"]) & set(exact["user_id"])) / len(exact)
    assert at.metric[0].value == f"{recall:.0%}"
    assert len(at.get("plotly_chart")) >= 3
    at.slider(key="nb_k").set_value(10).run()
    assert len(at.dataframe[0].value) == 10
    assert at.metric[0].label == "Recall@10"


def test_a_user_saved_by_another_process_opens_at_once(engine):
    # A link shared straight after a save elsewhere (the API, another replica) must
    # work without waiting for the periodic look for new users.
    from recommender import RecommenderEngine

    liked = dict(zip(engine.recommend(some_users(engine)[0], n=3)["anime_id"], (10, 9, 9)))
    other = RecommenderEngine.from_settings()
    engine.catch_up()  # the periodic look has just run, so it will not find the user
    new_id = other.add_user(liked)
    assert not engine.has_user(new_id)
    at = page("recommend.py", query={"user": str(new_id)})
    assert not at.exception and not at.error
    assert at.number_input(key="rec_user").value == new_id
    assert engine.has_user(new_id) and len(results_table(at))
    at = page("neighbours.py", query={"user": str(new_id + 1)})
    assert any(f"There is no user {new_id + 1}" in e for e in texts(at.error))


def test_neighbours_page_user_widget_and_errors(engine):
    first, second = some_users(engine)[:2]
    at = page("neighbours.py", query={"user": str(first)})
    at.number_input(key="nb_user").set_value(second).run()
    assert at.dataframe[0].value["user_id"].tolist() == engine.neighbors(
        second, k=20)["user_id"].tolist()
    assert at.query_params["user"] == str(second)
    missing = int(engine.user_ids()[-1]) + 1000
    at.number_input(key="nb_user").set_value(missing).run()
    assert not at.exception
    assert any(f"There is no user {missing}" in e for e in texts(at.error))


# ---------------------------------------------------------------------- performance
def test_performance_page_memory_latency_and_ann(engine):
    at = page("performance.py")
    assert not at.exception
    stats = engine.stats()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sparse CSR matrix"] == f"{stats['matrix_bytes'] / 2**20:.1f} MiB"
    assert metrics["hnswlib index"] == f"{stats['index_bytes'] / 2**20:.1f} MiB"
    assert "Recall@20, re-ranked" in metrics
    config_before = engine.knn.config

    at.slider(key="perf_users").set_value(10)
    at.multiselect(key="perf_algorithms").set_value(["content", "user-user"])
    next(b for b in at.button if "latency sample" in b.label).click().run()
    assert not at.exception
    summary = at.dataframe[-1].value
    assert summary["algorithm"].tolist() == ["content", "user-user"]
    assert (summary["requests"] == 10).all()
    assert (summary["p95_ms"] >= summary["p50_ms"]).all()

    at.slider(key="perf_k").set_value(10)
    at.slider(key="perf_candidates").set_value(10)
    at.slider(key="perf_ef").set_value(20).run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert "Recall@10, re-ranked" in labels
    assert engine.knn.config == config_before  # the comparison changes nothing shared
