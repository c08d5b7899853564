"""The Neighbours page on the tiny two-taste data: share links, tie-aware recall, and
explanations an analyst can check (why similar, thin overlap, baseline, heat-map columns)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, TINY_ENV, environment, two_taste_groups, write_csvs

pytestmark = pytest.mark.slow
TIMEOUT = 300


#: Every tiny user has a twin with the same ratings (id + TWIN), so ties are everywhere.
TWIN = 100
#: A user with two ratings only, both shared with most sci-fi fans.
THIN_USER = 500


def tiny_data_with_twins():
    import pandas as pd

    anime, ratings = two_taste_groups()
    twins = ratings.assign(user_id=ratings["user_id"] + TWIN)
    # SciFi 1 and 2 are rated by many sci-fi fans: a high cosine over only two titles.
    thin = pd.DataFrame({"user_id": [THIN_USER] * 2, "anime_id": [1, 2], "rating": [10, 10]})
    return anime, pd.concat([ratings, twins, thin], ignore_index=True)


@pytest.fixture(scope="module", autouse=True)
def tiny_dashboard(tmp_path_factory):
    """The dashboard over a database holding the tiny data (a fresh engine, built in ~1 s)."""
    from recommender.data.database import create_db_engine, create_tables
    from recommender.data.ingest import ingest

    tmp = tmp_path_factory.mktemp("neighbours")
    url = f"sqlite:///{tmp / 'tiny.db'}"
    database = create_db_engine(url)
    create_tables(database)
    ingest(database, *write_csvs(tmp, *tiny_data_with_twins()))
    database.dispose()
    env = {"DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp / "cache"), **TINY_ENV}
    with environment(env):
        yield


@pytest.fixture(scope="module")
def engine(tiny_dashboard):
    import app_state

    return app_state.get_engine()


def page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "neighbours.py"), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


# ---------------------------------------------------------------------- share links
def test_the_address_rebuilds_the_view_and_follows_every_control(engine):
    user = 2
    at = page({"user": str(user), "k": "35", "exact": "1"})
    assert not at.exception, at.exception
    assert at.number_input(key="nb_user").value == user
    assert at.slider(key="nb_k").value == 35  # main ignored k: it showed 20
    assert at.toggle(key="nb_exact").value is True
    table = at.dataframe[0].value
    assert table["user_id"].tolist() == engine.neighbors(user, k=35, exact=True)[
        "user_id"].tolist()
    assert dict(at.query_params) == {"user": str(user), "k": "35", "exact": "1"}

    # Every control writes the address, and that address opens the same view.
    at.number_input(key="nb_user").set_value(4)
    at.slider(key="nb_k").set_value(10)
    at.toggle(key="nb_exact").set_value(False).run()
    assert dict(at.query_params) == {"user": "4", "k": "10"}
    again = page(dict(at.query_params))
    assert again.slider(key="nb_k").value == 10 and again.toggle(key="nb_exact").value is False
    assert again.dataframe[0].value["user_id"].tolist() == \
        at.dataframe[0].value["user_id"].tolist()


def test_a_run_that_stops_early_keeps_the_controls(engine):
    at = page({"user": "2", "k": "35"})
    at.number_input(key="nb_user").set_value(99_999).run()  # no such user: the page stops
    assert any("There is no user 99999" in e for e in texts(at.error))
    at.number_input(key="nb_user").set_value(2).run()
    assert at.slider(key="nb_k").value == 35
    assert len(at.dataframe[0].value) == 35


def test_bad_address_values_get_plain_escaped_messages(engine):
    at = page({"user": "2", "k": "[x](https://evil.example)", "exact": "<b>yes</b>"})
    assert not at.exception
    warnings = " ".join(texts(at.warning))
    assert "k must be one of 5" in warnings and "exact must be 0 or 1" in warnings
    assert "](https://evil" not in warnings and "<b>" not in warnings
    assert at.slider(key="nb_k").value == 20 and at.toggle(key="nb_exact").value is False


# ---------------------------------------------------------------------- tie-aware recall
def test_an_index_neighbour_tied_with_the_kth_exact_one_counts_as_found(engine, monkeypatch):
    from recommender.serving.engine import RecommenderEngine

    user, k = 2, 10
    top_k = engine.neighbors(user, k=k, exact=True)
    wider = engine.neighbors(user, k=k + 1, exact=True)
    # The twins: the (k+1)-th exact neighbour is exactly as similar as the k-th.
    outsider = wider[~wider["user_id"].isin(top_k["user_id"])].iloc[0]
    assert outsider["similarity"] == top_k["similarity"].iloc[-1]
    twin = int(outsider["user_id"])
    kth = int(top_k["user_id"].iloc[-1])
    original = RecommenderEngine.neighbors

    def index_found_the_twin(self, user_id=None, *, liked=None, k=20, exact=False):
        found = original(self, user_id, liked=liked, k=k, exact=True)
        if exact:
            return found
        # The index returned the other twin in place of the k-th exact neighbour.
        swapped = found["user_id"].replace({kth: twin})
        return found.assign(user_id=swapped)

    monkeypatch.setattr(RecommenderEngine, "neighbors", index_found_the_twin)
    at = page({"user": str(user), "k": str(k)})
    assert not at.exception, at.exception
    assert at.metric[0].value == "100%"  # main: 90%, and "missed by the index: <kth>"
    captions = " ".join(texts(at.caption))
    assert "Ties count as found" in captions and str(twin) in captions
    assert "Missed by the index" not in captions


# ---------------------------------------------------------------------- explanations
def test_each_neighbour_says_which_shared_titles_made_them_similar(engine):
    user = 2
    at = page({"user": str(user), "k": "50"})
    table = at.dataframe[0].value
    assert "why" in table.columns
    mine = set(engine.user_ratings(user)["name"])
    top = table.iloc[0]
    theirs = set(engine.user_ratings(int(top["user_id"]))["name"])
    named = [part.rsplit(" (", 1)[0] for part in top["why"].split("; ")]
    assert named and set(named) <= mine & theirs
    # The long table links every title to MyAnimeList.
    evidence = at.dataframe[1]
    assert evidence.value["url"].str.fullmatch(r"https://myanimelist\.net/anime/\d+").all()
    assert json.loads(evidence.proto.columns)["url"]["type_config"]["type"] == "link"


def test_a_neighbour_with_almost_no_overlap_is_flagged(engine):
    user = next(u for u in range(2, 41, 2) if {1, 2} <= set(
        engine.user_ratings(u)["anime_id"]))
    at = page({"user": str(user), "k": "50"})
    table = at.dataframe[0].value
    row = table[table["user_id"] == THIN_USER]
    assert len(row) == 1 and row["shared"].iloc[0] == 2 and row["thin"].iloc[0].startswith("⚠")
    assert (table.loc[table["shared"] >= 4, "thin"] == "").all()
    assert any("share fewer than 4 watched titles" in w for w in texts(at.warning))
    dots = charts(at)[0]["data"][0]
    symbols = dict(zip(dots["x"], dots["marker"]["symbol"]))
    assert symbols[str(THIN_USER)] == "circle-open"


def test_charts_baseline_axis_heatmap_and_no_toolbar(engine):
    at = page({"user": "3", "k": "20"})
    figures = charts(at)
    assert all(json.loads(c.proto.config) == {"displayModeBar": False}
               for c in at.get("plotly_chart"))
    dots = figures[0]
    low = dots["layout"]["yaxis"]["range"][0]
    lowest = at.dataframe[0].value["similarity"].min()
    assert 0 < low < lowest and low > lowest - 0.2  # fitted to the data, not from 0
    genres = next(f for f in figures if "Genres" in f["layout"]["title"]["text"])
    assert "everyone (baseline)" in [t["name"] for t in genres["data"]]
    heat = next(f for f in figures if f["data"][0]["type"] == "heatmap")["data"][0]
    # Titles down the side (readable on a phone), each a link to its MyAnimeList page.
    assert all(len(label.split(" ·")[0]) <= 22 for label in heat["y"])
    axis = next(f for f in figures if f["data"][0]["type"] == "heatmap")["layout"]["yaxis"]
    assert axis["tickvals"] == heat["y"]
    assert all(re.fullmatch(r'<a href="https://myanimelist\.net/anime/\d+" target="_blank">'
                            + re.escape(label) + "</a>", tick)
               for label, tick in zip(heat["y"], axis["ticktext"]))
    links = at.dataframe[2]  # the heat map's titles, each linked
    assert len(links.value) == len(heat["y"])
    assert links.value["url"].str.fullmatch(r"https://myanimelist\.net/anime/\d+").all()
    assert json.loads(links.proto.columns)["url"]["type_config"]["type"] == "link"


def test_heatmap_columns_tell_the_users_apart():
    from recommender.models.neighbour_insight import discriminative_columns

    nan = np.nan
    grid = np.array([
        [9, 8, 7, 10],     # the chosen user watched every column
        [9, nan, 2, 10],   # column 0: everyone 9 (popular, no information)
        [9, 8, 10, nan],   # column 1: half watched; column 2: ratings far apart
        [9, nan, 9, 10],
        [9, 8, 3, nan],
    ], dtype=float)
    order = discriminative_columns(grid, 4).tolist()
    assert order[-1] == 0  # the title every neighbour rated alike comes last
    assert order[0] == 2   # the one that splits them most comes first
    assert discriminative_columns(grid, 2).tolist() == order[:2]


def test_a_missing_id_offers_the_nearest_real_users(engine):
    at = page({"user": "50"})  # between the tiny users (1-40) and their twins (101-140)
    assert any("There is no user 50" in e for e in texts(at.error))
    buttons = [b.label for b in at.button if b.label.startswith("Open user")]
    assert buttons == ["Open user 40", "Open user 101"]  # nearest first
    next(b for b in at.button if b.label == "Open user 40").click().run()
    assert at.number_input(key="nb_user").value == 40
    assert not at.error and len(at.dataframe[0].value) == 20
