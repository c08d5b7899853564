"""The Tune page: on the tiny data for every control, and once on the bundled data."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, two_taste_groups
from dashboard.charts import percent_ticks
from dashboard.tuning import COLLABORATIVE
from recommender.config import EngineParams
from recommender.evaluation import ALGORITHMS

TIMEOUT = 600
#: Every parameter of the page's address, none at its default.
EVERY_PARAMETER = {"split": "test", "users": "0", "k": "5", "seed": "1", "metric": "recall",
                   "segment": "light", "collab": "ease", "weight": "0.55",
                   "against": "novelty", "div": "0.3"}


@pytest.fixture
def tiny_tune(monkeypatch, tmp_path_factory):
    """The page evaluates the tiny two-taste data, with its own cache on disk."""
    import dashboard.tuning

    frames = two_taste_groups()
    monkeypatch.setattr(dashboard.tuning, "tune_frames", lambda: frames)
    monkeypatch.setenv("ANIREC_TUNE_USERS", "0")
    cache = tmp_path_factory.getbasetemp() / "tune-cache"  # shared: later runs read it
    monkeypatch.setenv("ANIREC_EVAL_CACHE_DIR", str(cache))
    return cache


def page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "tune.py"), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def controls(at: AppTest) -> dict:
    return {"split": at.radio(key="tune_split").value,
            "users": str(int(at.number_input(key="tune_users").value)),
            "k": str(int(at.number_input(key="tune_k").value)),
            "seed": str(int(at.number_input(key="tune_seed").value)),
            "metric": at.selectbox(key="tune_metric").value,
            "segment": at.session_state["tune_segment"],
            "collab": at.session_state["tune_collab"],
            "weight": f"{at.slider(key='tune_weight').value:.2f}",
            "against": at.radio(key="tune_against").value,
            "div": f"{at.slider(key='tune_div').value:.1f}"}


def test_the_address_holds_every_choice_and_rebuilds_the_view(tiny_tune):
    at = page(EVERY_PARAMETER)
    assert not at.exception, at.exception
    assert controls(at) == EVERY_PARAMETER  # main kept nothing in the URL
    assert dict(at.query_params) == EVERY_PARAMETER
    readout = [(m.label, m.value, m.delta) for m in at.metric]

    at.radio(key="tune_split").set_value("validation")
    at.number_input(key="tune_k").set_value(10)
    at.selectbox(key="tune_metric").set_value("ndcg")
    at.slider(key="tune_weight").set_value(0.35)
    at.radio(key="tune_against").set_value("diversity")
    at.slider(key="tune_div").set_value(0.7).run()
    assert not at.exception, at.exception
    changed = dict(EVERY_PARAMETER, split="validation", k="10", metric="ndcg", weight="0.35",
                   against="diversity", div="0.7")
    assert dict(at.query_params) == changed
    again = page(changed)
    assert controls(again) == changed
    assert [(m.label, m.value, m.delta) for m in again.metric] == \
        [(m.label, m.value, m.delta) for m in at.metric] != readout


def test_bad_address_values_get_plain_messages_and_defaults(tiny_tune):
    at = page({"weight": "2", "collab": "<b>mf</b>", "k": "[k](https://evil.example)"})
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "<b>" not in warnings and "](https://evil" not in warnings
    assert warnings.count("is not a valid") == 3
    assert at.slider(key="tune_weight").value == EngineParams().hybrid_weight
    assert at.session_state["tune_collab"] == EngineParams().hybrid_collaborative


def test_the_hybrid_on_ease_is_evaluated_with_a_readout_and_a_link(tiny_tune):
    at = page({"collab": "ease", "weight": "0.55"})
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    ease = table[table["collaborative"] == "ease"]
    assert sorted(ease["weight"].unique()) == [round(0.05 * i, 2) for i in range(21)]
    assert {"hybrid on EASE", "hybrid on user-user", "hybrid on learned ranker"} <= {
        t["name"] for t in figures(at)[0]["data"]}
    # The readout is the table's row at the chosen weight, and its change from the default.
    row = ease[(ease["segment"] == "all") & (ease["weight"] == 0.55)].iloc[0]
    served = EngineParams()
    default = table[(table["collaborative"] == served.hybrid_collaborative)
                    & (table["segment"] == "all")
                    & ((table["weight"] - served.hybrid_weight).abs() < 1e-9)].iloc[0]
    metrics = {m.label: m for m in at.metric}
    assert metrics["NDCG@10"].value == f"{row['ndcg']:.4f}"
    assert metrics["NDCG@10"].delta == f"{row['ndcg'] - default['ndcg']:+.4f}"
    assert metrics["Catalogue coverage"].value == f"{row['coverage']:.1%}"
    assert metrics["Novelty"].value == f"{row['novelty']:.2f} bits"
    link = next(c.value for c in at.caption if "Use this weight on Recommend" in c.value)
    assert link.replace("\\", "").endswith("/recommend?algorithm=hybrid&weight=0.55&collab=ease")
    # The same step as Recommend's slider.
    assert at.slider(key="tune_weight").proto.step == pytest.approx(0.05)


def test_charts_have_no_overlapping_labels_percent_coverage_and_no_toolbar(tiny_tune):
    at = page({"against": "coverage"})
    assert all(json.loads(c.proto.config) == {"displayModeBar": False}
               for c in at.get("plotly_chart"))
    curve, tradeoff, variety = figures(at)
    for figure in (curve, tradeoff, variety):
        assert not any("text" in t.get("mode", "") for t in figure["data"])
    # The only label drawn on a chart is the current weight's: algorithms are in the legend.
    assert [a["text"] for a in curve["layout"]["annotations"]] == [
        f"current {EngineParams().hybrid_weight:.2f}"]
    # Coverage is in percent, with the decimals its span needs to label ticks apart.
    plotted = [x for trace in tradeoff["data"] for x in numbers(trace["x"])]
    assert tradeoff["layout"]["xaxis"]["tickformat"] == percent_ticks(plotted)
    assert tradeoff["layout"]["xaxis"]["title"]["text"] == "Catalogue coverage"
    assert [a["text"] for a in variety["layout"]["annotations"]] == ["variety 0.0"]


def numbers(values) -> list[float]:
    """A figure's data array: a plain list, or Plotly's typed-array form (base64 bytes)."""
    if isinstance(values, dict):
        raw = base64.b64decode(values["bdata"])
        return np.frombuffer(raw, dtype=np.dtype(values["dtype"])).tolist()
    return list(values)


def variety_readout(at: AppTest) -> dict:
    return {m.label.split(" at variety")[0]: (m.label, m.value, m.delta) for m in at.metric
            if " at variety " in m.label}


def test_the_variety_curve_is_computed_and_the_readout_follows_the_slider(tiny_tune):
    from dashboard import tuning
    from recommender.evaluation import DIVERSITIES

    # Top 4 of the 12 titles each user has not rated: room to trade accuracy for variety.
    at = page({"k": "4"})
    assert not at.exception, at.exception
    curve = figures(at)[2]
    assert [t["name"] for t in curve["data"]] == ["NDCG@4", "Catalogue coverage",
                                                   "Genre diversity@4"]
    for trace in curve["data"]:
        assert numbers(trace["x"]) == list(DIVERSITIES)
        assert len(numbers(trace["y"])) == len(DIVERSITIES)
    # The points are the sweep on the users and split the rest of the page evaluates.
    frames = tuning.tune_frames()
    sweep = tuning.evaluate_variety(*frames, split="validation", n_users=0, k=4, seed=0,
                                    cache_dir=None, progress=lambda f, t: None).table
    mine = sweep[sweep["segment"] == "all"].sort_values("diversity")
    assert numbers(curve["data"][0]["y"]) == pytest.approx(mine["ndcg"].tolist())
    assert numbers(curve["data"][2]["y"]) == pytest.approx(
        mine["intra_list_diversity"].tolist())
    users = at.dataframe[-1].value
    assert set(mine["users"]) == {int(users.loc[users["segment"] == "all", "users"].iloc[0])}
    # Variety mixes the two genre groups into each list, at some cost in accuracy.
    assert mine["intra_list_diversity"].iloc[-1] > mine["intra_list_diversity"].iloc[0]
    assert mine["ndcg"].iloc[-1] < mine["ndcg"].iloc[0]

    before = variety_readout(at)
    assert before["Genre diversity"][2] == "+0.000"  # at 0, the change from 0 is none
    at.slider(key="tune_div").set_value(1.0).run()
    assert not at.exception, at.exception
    after = variety_readout(at)
    assert after != before
    top = mine[mine["diversity"] == 1.0].iloc[0]
    plain = mine[mine["diversity"] == 0.0].iloc[0]
    assert after["NDCG@4"][1] == f"{top['ndcg']:.4f}"
    assert after["Genre diversity"][1] == f"{top['intra_list_diversity']:.3f}"
    assert after["Genre diversity"][2] == \
        f"{top['intra_list_diversity'] - plain['intra_list_diversity']:+.3f}"
    assert at.query_params["div"] == "1.0"
    link = next(c.value for c in at.caption if "Use this variety on Recommend" in c.value)
    assert link.replace("\\", "").endswith("/recommend?div=1.0")


def test_fitting_is_inside_the_progress(tmp_path):
    from dashboard import tuning

    calls = []
    tuning.evaluate_hybrids(*two_taste_groups(), split="validation", n_users=0, k=10, seed=0,
                            cache_dir=tmp_path, progress=lambda f, text: calls.append((f, text)))
    fitting = [(f, t) for f, t in calls if t.startswith("Fitting")]
    assert calls[0] == fitting[0] and calls[0][0] == 0.0  # the bar starts with the fitting
    assert [t.split(": ")[1].split(" (")[0] for _, t in fitting][:3] == [
        "Popularity", "Random", "Content"]
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert max(f for f, _ in fitting) <= 0.4 < min(f for f, t in calls if "Scoring" in t) + 0.01


@pytest.mark.realdata
def test_tune_page_on_the_bundled_data(monkeypatch, tmp_path):
    monkeypatch.setenv("ANIREC_TUNE_USERS", "15")
    monkeypatch.setenv("ANIREC_EVAL_CACHE_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "tune.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    charts = figures(at)
    assert len(charts) == 3
    names = [trace.get("name") for trace in charts[0]["data"]]
    assert "hybrid on user-user" in names and "best weight" in names
    current = f"current {EngineParams().hybrid_weight:.2f}"  # the slider starts at the default
    assert any(current in a.get("text", "") for a in charts[0]["layout"]["annotations"])
    table = at.dataframe[-1].value
    assert len(table) == (21 * len(COLLABORATIVE) + len(ALGORITHMS)) * 3
    assert {"ndcg", "coverage", "novelty"} <= set(table.columns)
    # Computed once per hybrid and once for the variety sweep, cached on disk.
    assert len(list(tmp_path.glob("*.json"))) == len(COLLABORATIVE) + 1
    assert len(list(tmp_path.glob("diversity-*.json"))) == 1

    at.slider(key="tune_weight").set_value(0.9).run()  # moving the weight only redraws
    assert not at.exception
    curve = figures(at)[0]
    assert any("current 0.90" in a.get("text", "") for a in curve["layout"]["annotations"])
    assert "scored in" in at.caption[-1].value
