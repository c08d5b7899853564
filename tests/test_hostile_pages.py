"""Every page renders data- and address-supplied text as text: no Markdown link, image or
HTML tag from a title, a genre or the URL ever becomes live, in text or in a chart."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, TINY_ENV, environment, two_taste_groups, write_csvs

pytestmark = pytest.mark.slow
TIMEOUT = 300

HOSTILE_NAMES = [
    "<a href='https://evil.example/a'>click</a>",
    "[Your session expired: log in](https://evil.example/login)",
    "![tracker](https://evil.example/pixel.png)",
    "**bold** _it_ `code` # Heading | table |",
    "<b>bold</b><br>line<script>alert(1)</script>",
    "L" + "o" * 400 + "ng",
    "\u202eevil\u202c عنوان عربي",
    "Ctrl\x07chars\x1b[31m",
    "$x^2$ :red[colour] :material/home:",
    "<img src=x onerror=alert(1)>",
]
HOSTILE_GENRE = "<b>Action</b>, [Link](https://evil.example/g), Sci-Fi"
HOSTILE_QUERY = {
    "user": "[Your session expired: log in](https://evil.example/login)",
    "algorithm": "<a href='https://evil.example/x'>x</a>",
    "weight": "![x](https://evil.example/i.png)",
    "n": "[n](https://evil.example/n)",
    "k": "<b>k</b>",
}
#: HTML that must never reach a page or a chart (Plotly renders a subset of tags).
HTML_LIVE = ["<a href", "<b>", "<br>", "<img", "<script", "<i>"]
#: Markdown that must never reach a text element (a link or an image).
MARKDOWN_LIVE = ["](https://evil"]
TEXT_ELEMENTS = ("markdown", "caption", "warning", "error", "info", "success", "subheader",
                 "title", "header")


@pytest.fixture(scope="module", autouse=True)
def hostile_database(tmp_path_factory):
    """A database of the tiny data whose titles and genres are hostile text."""
    from recommender.data.database import create_db_engine, create_tables
    from recommender.data.ingest import ingest

    tmp = tmp_path_factory.mktemp("hostile")
    anime, ratings = two_taste_groups()
    anime["name"] = [HOSTILE_NAMES[i % len(HOSTILE_NAMES)] + f" {i}" for i in range(len(anime))]
    anime["genre"] = [HOSTILE_GENRE if i < 10 else "Romance, <i>Slice</i> of Life"
                      for i in range(len(anime))]
    url = f"sqlite:///{tmp / 'hostile.db'}"
    database = create_db_engine(url)
    create_tables(database)
    ingest(database, *write_csvs(tmp, anime, ratings))
    database.dispose()
    env = {"DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp / "cache"), **TINY_ENV}
    with environment(env):
        yield


#: Keys of a Plotly figure whose strings come from the data (titles, genres, user ids).
DATA_KEYS = {"x", "y", "z", "text", "hovertext", "customdata", "labels", "ticktext", "name"}


def _data_strings(node, under_data_key: bool = False):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _data_strings(value, under_data_key or key in DATA_KEYS)
    elif isinstance(node, list):
        for value in node:
            yield from _data_strings(value, under_data_key)
    elif isinstance(node, str) and under_data_key:
        yield node


#: The one markup the dashboard puts in chart text itself: a heat-map title's link to its
#: MyAnimeList page, built from the integer id. What it wraps is data and must be escaped.
OUR_LINK = re.compile(r'^<a href="https://myanimelist\.net/anime/\d+" target="_blank">(.*)</a>$',
                      re.S)


def rendered(at: AppTest) -> list[tuple[str, list[str]]]:
    """(text, patterns that must not be in it) for everything a page drew."""
    out = []
    for kind in TEXT_ELEMENTS:
        out += [(str(e.value), HTML_LIVE + MARKDOWN_LIVE) for e in getattr(at, kind)]
    for chart in at.get("plotly_chart"):
        out += [(OUR_LINK.sub(r"\1", s), HTML_LIVE)
                for s in _data_strings(json.loads(chart.proto.spec))]
    return out


def _live(text: str, pattern: str) -> bool:
    """``pattern`` occurs in ``text`` without the backslash that makes Markdown show it."""
    return re.search(r"(?<!\\)" + re.escape(pattern), text) is not None


def assert_nothing_live(at: AppTest, where: str) -> None:
    assert not at.exception, (where, at.exception)
    for text, patterns in rendered(at):
        for pattern in patterns:
            assert not _live(text, pattern), (where, pattern, text[:300])


def page(name: str, query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at.run()


@pytest.mark.parametrize("name", ["home.py", "recommend.py", "neighbours.py", "performance.py"])
def test_hostile_titles_and_genres_render_as_text_on_every_page(name):
    at = page(name, query={"user": "2"})
    assert_nothing_live(at, name)
    if name in ("recommend.py", "neighbours.py"):
        assert at.get("plotly_chart") or at.markdown  # something real was drawn


@pytest.mark.parametrize("key", sorted(HOSTILE_QUERY))
@pytest.mark.parametrize("name", ["recommend.py", "neighbours.py"])
def test_hostile_address_parameters_are_shown_as_text(name, key):
    at = page(name, query={"user": "2", key: HOSTILE_QUERY[key]} if key != "user"
              else {key: HOSTILE_QUERY[key]})
    assert_nothing_live(at, f"{name}?{key}")


def test_recommend_cards_show_hostile_titles_literally():
    at = page("recommend.py", query={"user": "2", "n": "10"})
    assert_nothing_live(at, "cards")
    cards = [m for m in (str(e.value) for e in at.markdown) if "\\[Your session" in m
             or "\\<a href" in m or "\\<b\\>" in m]
    assert cards, "the hostile titles are on the cards, escaped"


@pytest.mark.parametrize("value", ["99999999999999999999999", str(2**63), str(2**31), "1_0",
                                   "١٢", "-5", "2.5", "1e3", " ", "0x10"])
@pytest.mark.parametrize("name", ["recommend.py", "neighbours.py"])
def test_out_of_range_ids_in_the_address_are_friendly(name, value):
    at = page(name, query={"user": value, "k": value, "n": value})
    assert not at.exception, (name, value, at.exception)


def test_a_built_list_with_a_hostile_title_and_a_long_search():
    state = {"my_list": {1: 9, 12: None},
             "anime_search": {"result": None, "search": "x" * 300, "options_js": [],
                              "key_react": "anime_search_react_0"}}
    at = page("recommend.py", query={"mode": "list"}, state=state)
    assert_nothing_live(at, "list")
    assert any("300 characters" in w for w in (str(e.value) for e in at.warning))
