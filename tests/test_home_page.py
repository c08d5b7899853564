"""Home as a demo audience meets it: a start button, the whole guide, honest charts."""

from __future__ import annotations

import json

import pytest

from test_pages import isolated_settings, page, texts  # noqa: F401

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine(isolated_settings):  # noqa: F811
    import app_state

    return app_state.get_engine()


def test_home_has_a_start_button_and_lists_every_page(engine):
    at = page("home.py")
    assert not at.exception
    start = [b for b in at.button if b.label.startswith("Start")]
    assert start and start[0].proto.type == "primary"
    guide = " ".join(texts(at.markdown))
    for name in ("Recommend", "Neighbours", "Performance", "Tune"):
        assert f"**{name}**" in guide


def test_home_charts_leave_out_adult_genres_and_developer_stages(engine):
    at = page("home.py")
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    titles = [spec["layout"]["title"]["text"] for spec in specs]
    assert not any("stages" in t.lower() for t in titles)  # it lives on Performance now
    genre = next(s for s, t in zip(specs, titles) if "genres" in t)
    shown = [label for trace in genre["data"] for label in trace["y"]]
    assert "Comedy" in shown and "Hentai" not in shown
    configs = [json.loads(chart.proto.config) for chart in at.get("plotly_chart")]
    assert all(c.get("displayModeBar") is False for c in configs)
