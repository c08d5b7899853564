"""The Recommend page as a demo uses it: controls that stick, complete share links, cards.

AppTest on the bundled data (the engine is shared with test_pages.py's module
through ``app_state``'s cache when both run in one process).
"""

from __future__ import annotations

import numpy as np
import pytest

from app_state import md_escape
from dashboard import cards, share
from recommender.data.catalog import anime_url
from test_pages import isolated_settings, page, results_table, some_users, texts  # noqa: F401

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine(isolated_settings):  # noqa: F811
    import app_state

    return app_state.get_engine()


def controls(at) -> dict:
    return {"weight": at.slider(key="rec_weight").value, "k": at.slider(key="rec_k").value,
            "n": at.slider(key="rec_n").value, "algorithm": at.radio(key="rec_algorithm").value}


def test_controls_survive_a_run_that_stops_before_drawing_them(engine):
    user = some_users(engine)[0]
    at = page("recommend.py", query={"user": str(user), "algorithm": "hybrid",
                                     "collab": "user-user", "weight": "0.35", "k": "35",
                                     "n": "7"})
    chosen = controls(at)
    assert chosen == {"weight": 0.35, "k": 35, "n": 7, "algorithm": "hybrid"}
    # An empty built list stops the page before the controls are drawn ...
    at.radio(key="rec_mode").set_value("Build your own list").run()
    assert any("Your list is empty" in w for w in texts(at.warning))
    at.radio(key="rec_mode").set_value("Existing user").run()
    # ... and coming back, nothing fell to its minimum, and the results agree.
    assert not at.exception
    assert controls(at) == chosen
    assert len(results_table(at)) == 7
    assert at.query_params["weight"] == "0.35" and at.query_params["k"] == "35"


def test_the_user_stepper_moves_to_real_users_only(engine):
    ids = engine.user_ids()
    gaps = np.flatnonzero(np.diff(ids) > 1)
    low, high = int(ids[gaps[0]]), int(ids[gaps[0] + 1])
    at = page("recommend.py", query={"user": str(low)})
    at.number_input(key="rec_user").set_value(low + 1).run()  # a step up into the gap
    assert not at.exception and not at.error
    assert at.number_input(key="rec_user").value == high
    at.number_input(key="rec_user").set_value(high - 1).run()  # and a step back down
    assert at.number_input(key="rec_user").value == low
    assert any(f"There is no user {high - 1}" in s for s in texts(at.info))


@pytest.mark.parametrize("length", [201, 300, 5000])
def test_a_long_search_is_capped_and_the_page_keeps_working(engine, length):
    steins = engine.resolve_title("steins gate")
    at = page("recommend.py", query={"mode": "list"},
              state={"my_list": {steins: 9}, "anime_search": {
                  "result": None, "search": "steins gate " * (length // 12 + 1),
                  "options_js": [], "key_react": "anime_search_react_0"}})
    assert not at.exception
    assert any("characters long" in w for w in texts(at.warning))
    assert len(results_table(at)) == 10  # the list and its results are still there


def test_a_share_link_rebuilds_the_view_for_every_parameter(engine):
    user = some_users(engine)[1]
    cases = [
        {"user": str(user), "algorithm": "hybrid", "collab": "user-user", "weight": "0.45",
         "k": "25", "n": "6", "div": "0.3"},
        {"user": str(user), "algorithm": "hybrid", "collab": "ease", "weight": "0.80", "n": "9"},
        {"user": str(user), "algorithm": "user-user", "k": "15", "n": "5"},
        {"user": str(user), "algorithm": "content", "n": "12"},
    ]
    for query in cases:
        first = page("recommend.py", query=query)
        assert not first.exception
        link = {k: first.query_params[k] for k in first.query_params}
        for key, value in query.items():
            assert link[key] == value, (key, link)
        again = page("recommend.py", query=link)
        assert results_table(again).equals(results_table(first))
        assert controls(again) == controls(first)


def test_a_share_link_carries_a_built_list_with_its_ratings(engine):
    ids = [engine.resolve_title(t) for t in ("steins gate", "madoka magica", "toradora")]
    built = {ids[0]: 9, ids[1]: None, ids[2]: -1}
    first = page("recommend.py", query={"mode": "list", "algorithm": "content"},
                 state={"my_list": dict(built)})
    link = {k: first.query_params[k] for k in first.query_params}
    assert link["mode"] == "list" and share.decode_list(link["list"]).items == built
    again = page("recommend.py", query=link)  # a new session: only the address
    assert not again.exception
    assert again.session_state["my_list"] == built
    assert results_table(again).equals(results_table(first))


@pytest.mark.parametrize("text", ["abc", "1:11", "1:x~2", "-5", "1:-2", "99999999999999999999",
                                  "~~~", "1_0:5", "١٢:5"])
def test_a_bad_list_in_the_address_is_a_message(engine, text):
    at = page("recommend.py", query={"mode": "list", "list": text})
    assert not at.exception
    assert at.session_state["my_list"] == share.decode_list(text).items
    assert any("could not be read" in w or "Your list is empty" in w for w in texts(at.warning))


def test_cards_link_to_myanimelist_and_name_the_blend(engine):
    user = some_users(engine)[0]
    at = page("recommend.py", query={"user": str(user), "algorithm": "hybrid",
                                     "collab": "user-user", "weight": "0.50"})
    shown = results_table(at)
    top = int(engine.recommend(user, algorithm="hybrid", collaborative="user-user",
                               weight=0.5)["anime_id"].iloc[0])
    assert any(f"]({anime_url(top)})" in m for m in texts(at.markdown))
    assert shown["url"].iloc[0] == anime_url(top)
    assert any("from User\\-user" in c and "% from content" in c for c in texts(at.caption))
    assert any("User-user + content" in s for s in texts(at.subheader))
    # Looking at someone else, the reasons name them instead of "your".
    assert any(f"of user {user}'s " in c for c in texts(at.caption))
    assert not any("of your " in c for c in texts(at.caption))


def test_a_franchise_gets_one_card_with_the_others_named_under_it(engine):
    gintama = engine.resolve_title("gintama")
    liked = {gintama: 10}
    recs = engine.recommend(liked=liked, algorithm="content", n=10)
    folded = engine.group_franchises(recs)
    assert (recs["franchise_more"] > 0).any()  # the data has two of one franchise
    at = page("recommend.py", query={"mode": "list", "algorithm": "content", "n": "10"},
              state={"my_list": dict(liked)})
    assert not at.exception
    titles = [m for m in texts(at.markdown) if m.startswith("**") and "](https://" in m]
    assert len(titles) == len(folded) < len(recs)  # folded rows have no card of their own
    assert [int(t[2:t.index(".**")]) for t in titles] == folded["rank"].tolist()
    notes = {e.label: e for e in at.expander if "of this franchise in the list" in e.label}
    lead = folded[folded["also_ids"].map(len) > 0].iloc[0]
    note = f"+ {len(lead['also_ids'])} more of this franchise in the list"
    assert note in notes
    named = " ".join(texts(notes[note].markdown))
    for anime_id, name in zip(lead["also_ids"], lead["also_names"]):
        assert f"]({anime_url(anime_id)})" in named
        assert md_escape(name) in named
    assert len(results_table(at)) == len(recs)  # the Table tab still lists every row


def test_franchise_notes_count_the_folded_titles():
    from types import SimpleNamespace

    assert cards.franchise_note(SimpleNamespace(also_names=["a", "b", "c"])) == \
        "+ 3 more of this franchise in the list"
    assert cards.franchise_note(SimpleNamespace(also_names=[])) == ""
    assert cards.franchise_note(SimpleNamespace()) == ""


def test_remaining_saves_are_shown(engine):
    steins = engine.resolve_title("steins gate")
    at = page("recommend.py", query={"mode": "list"}, state={"my_list": {steins: None}})
    assert any("saves left in this session" in c for c in texts(at.caption))
    assert any("counts as a 10" in c for c in texts(at.caption))


def test_search_leaves_adult_titles_out_unless_they_are_served(engine):
    from recommender.serving.ranking import ADULT_GENRE

    anime = engine.data.anime
    adult = set(anime.loc[anime["genre"].fillna("").str.contains(ADULT_GENRE), "anime_id"])
    assert adult and not engine.params.include_adult
    for word in ("sister", "teacher", "love", "nurse", "imouto", "bible black"):
        found = set(engine.search(word, limit=50)["anime_id"])
        assert found and not found & adult, word


@pytest.mark.parametrize("name,genre", [("<b>x</b>", "Hentai"), ("", ""), ("\u202eabc", "A,B"),
                                        ("a" * 5000, "x" * 300), ('"><script>', '"&')])
def test_generated_posters_are_well_formed_svg_for_any_name(name, genre):
    import xml.dom.minidom

    svg = cards.poster_svg(name, genre)
    xml.dom.minidom.parseString(svg)  # raises on broken markup
    assert "<script" not in svg and "<b>" not in svg


def test_reasons_for_someone_else_keep_titles_intact():
    reason = "liked by 3 of your 20 nearest users (mean 9.0); because you liked Your Lie in April"
    assert cards.reason_for(reason, "user 7") == (
        "liked by 3 of user 7's 20 nearest users (mean 9.0); because user 7 liked Your Lie in "
        "April")
    assert cards.reason_for(reason, None) == reason
