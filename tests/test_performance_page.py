"""The Performance page on the tiny data: the index explained, ef shown where it acts,
the build stages moved here from Home, and no chart toolbar."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, TINY_ENV, environment, fill_tiny_database

pytestmark = pytest.mark.slow
TIMEOUT = 300


@pytest.fixture(scope="module", autouse=True)
def tiny_dashboard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("performance")
    url = f"sqlite:///{tmp / 'tiny.db'}"
    fill_tiny_database(url, tmp)
    env = {"DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp / "cache"), **TINY_ENV}
    with environment(env):
        yield


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "performance.py"),
                             default_timeout=TIMEOUT).run()


def titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")
            for c in at.get("plotly_chart")]


def test_the_page_says_why_the_index_alone_finds_few_and_which_search_is_faster():
    at = page()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "index alone finds" in text and "SVD vectors" in text
    assert "re-ranks them all by exact cosine" in text
    assert "exact search beats the index" in text or "the index is faster" in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Recall@20, index alone"] in text and metrics["Recall@20, re-ranked"] in text


def test_ef_is_shown_where_it_acts():
    at = page()
    # Default candidates (40) are below ef (50): ef widens the re-ranked search too.
    assert not any("set by the candidates, not by ef" in i.value for i in at.info)
    sweep = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if "against ef" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    assert {t["name"] for t in sweep["data"]} == {"re-ranked", "index alone"}
    assert any(a["text"] == "ef 50" for a in sweep["layout"]["annotations"])
    at.slider(key="perf_candidates").set_value(100)
    at.slider(key="perf_ef").set_value(60).run()
    assert not at.exception, at.exception
    assert any("set by the candidates, not by ef (60)" in i.value for i in at.info)


def test_build_stages_moved_here_and_no_chart_has_a_toolbar():
    at = page()
    assert "Build and load stages (latest run of each)" in titles(at)
    assert all(json.loads(c.proto.config) == {"displayModeBar": False}
               for c in at.get("plotly_chart"))
