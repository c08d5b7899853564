"""The Tune page on the bundled data, with a handful of users to stay quick."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from recommender.config import EngineParams
from recommender.evaluation import ALGORITHMS, WEIGHTS

pytestmark = pytest.mark.realdata


def test_tune_page_draws_curves_best_weights_and_the_table(monkeypatch, tmp_path):
    monkeypatch.setenv("ANIREC_TUNE_USERS", "15")
    monkeypatch.setenv("ANIREC_EVAL_CACHE_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "tune.py"), default_timeout=600).run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    curve = json.loads(charts[0].proto.spec)
    names = [trace.get("name") for trace in curve["data"]]
    assert "hybrid" in names and "best weight" in names
    current = f"current {EngineParams().hybrid_weight:.2f}"  # the slider starts at the default
    assert any(current in a.get("text", "") for a in curve["layout"]["annotations"])
    table = at.dataframe[-1].value
    assert len(table) == (len(WEIGHTS) + len(ALGORITHMS)) * 3
    assert {"ndcg", "coverage", "novelty"} <= set(table.columns)
    assert len(list(tmp_path.glob("*.json"))) == 1  # computed once, cached on disk

    at.slider[0].set_value(0.9).run()  # moving the weight only redraws
    assert not at.exception
    curve = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any("current 0.90" in a.get("text", "") for a in curve["layout"]["annotations"])
    assert "scored in" in at.caption[-1].value
