"""Tune: what the hybrid weight does to offline quality, measured on a held-out split."""

import os

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from app_state import md_escape, parse_in_range
from dashboard import state, tuning
from dashboard.charts import (
    CHART_CONFIG,
    LABELS,
    diversity_chart,
    tradeoff_chart,
    weight_curve,
)
from dashboard.choices import algorithm_label
from recommender.config import EngineParams, load_settings
from recommender.errors import RecommenderError
from recommender.evaluation import METRICS, SEGMENTS

# Tests and small machines lower the default user count (and may redirect the cache).
DEFAULT_USERS = int(os.environ.get("ANIREC_TUNE_USERS", "300"))
CACHE_DIR = os.environ.get("ANIREC_EVAL_CACHE_DIR") or str(load_settings().eval_cache_dir)
DEFAULT_WEIGHT = EngineParams().hybrid_weight
# The served hybrid's part, when Tune evaluates it (it evaluates every part it offers).
DEFAULT_COLLAB = (EngineParams().hybrid_collaborative
                  if EngineParams().hybrid_collaborative in tuning.COLLABORATIVE else "user-user")
ACCURACY = ("ndcg", "recall", "precision", "hit_rate", "map")
AGAINST = ("coverage", "novelty", "diversity")
SPLITS = ("validation", "test")

# ------------------------------------------------------------------ shareable URL -> state
# Every choice is in the address, so a copied link opens this exact view; a bad
# value gets a plain message and the default.
notices: list[str] = []
query = st.query_params


def from_url(name: str, default, parse):
    def read():
        raw = query.get(name)
        if raw is None:
            return default
        value = parse(raw)
        if value is None:
            notices.append(f"“{md_escape(raw)}” is not a valid {name} in the address; "
                           f"using {md_escape(default)}.")
            return default
        return value
    return read


def choice(options):
    return lambda raw: raw if raw in options else None


def weight(raw):
    value = parse_in_range(raw, float, 0.0, 1.0)
    if value is None:
        return None
    return round(round(value / tuning.WEIGHT_STEP) * tuning.WEIGHT_STEP, 2)


def variety(raw):
    value = parse_in_range(raw, float, 0.0, 1.0)
    if value is None:
        return None
    return round(round(value / tuning.DIVERSITY_STEP) * tuning.DIVERSITY_STEP, 1)


state.keep({
    "tune_split": from_url("split", "validation", choice(SPLITS)),
    "tune_users": from_url("users", DEFAULT_USERS, lambda r: parse_in_range(r, int, 0, 6000)),
    "tune_k": from_url("k", 10, lambda r: parse_in_range(r, int, 1, 50)),
    "tune_seed": from_url("seed", 0, lambda r: parse_in_range(r, int, 0, 10_000)),
    "tune_metric": from_url("metric", "ndcg", choice(METRICS)),
    "tune_segment": from_url("segment", "all", choice(SEGMENTS)),
    "tune_collab": from_url("collab", DEFAULT_COLLAB, choice(tuning.COLLABORATIVE)),
    "tune_weight": from_url("weight", DEFAULT_WEIGHT, weight),
    "tune_against": from_url("against", "coverage", choice(AGAINST)),
    "tune_div": from_url("div", 0.0, variety),
})

st.title("Tune")
for notice in notices:
    st.warning(notice)
st.caption("Each user's held-out anime rated 8 or more are the relevant ones; every model is "
           "fitted on the training side of the split only.")
with st.sidebar:
    split = st.radio("Split", SPLITS, horizontal=True, key="tune_split",
                     help="Tune on validation; look at test only once settings are chosen.")
    users = int(st.number_input("Users evaluated (0 = all)", 0, 6000, step=100,
                                key="tune_users"))
    k = int(st.number_input("List length k", 1, 50, key="tune_k"))
    seed = int(st.number_input("Split seed", 0, 10_000, key="tune_seed"))
c1, c2, c3 = st.columns([2, 2, 2])
metric = c1.selectbox("Metric", METRICS, format_func=LABELS.get, key="tune_metric")
collaborative = c2.segmented_control(
    "Collaborative part", tuning.COLLABORATIVE, key="tune_collab",
    format_func=tuning.COLLABORATIVE_LABELS.get,
    help="The hybrid blends this with content, as on the Recommend page") or DEFAULT_COLLAB
segment = c3.segmented_control("Users", SEGMENTS, key="tune_segment",
                               help="light: fewer than 20 training ratings") or "all"
chosen_weight = float(st.slider("Collaborative weight w", 0.0, 1.0, step=tuning.WEIGHT_STEP,
                                key="tune_weight"))
st.query_params.from_dict({
    "split": split, "users": str(users), "k": str(k), "seed": str(seed), "metric": metric,
    "segment": segment, "collab": collaborative, "weight": f"{chosen_weight:.2f}",
    "against": st.session_state["tune_against"],
    "div": f"{float(st.session_state['tune_div']):.1f}"})

key = f"tune-{split}-{users}-{k}-{seed}"
if key not in st.session_state:
    bar = st.progress(0.0, text="Fitting the models on the training split…")

    def report(fraction: float, text: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=text)

    anime, ratings = tuning.tune_frames()
    try:
        st.session_state[key] = tuning.evaluate_tune(
            anime, ratings, split=split, n_users=users, k=k, seed=seed, cache_dir=CACHE_DIR,
            progress=report)
    except RecommenderError as exc:
        bar.empty()
        st.error(f"Could not evaluate: {md_escape(exc)}")
        st.stop()
    bar.empty()
table, results, curve = st.session_state[key]

# ------------------------------------------------------------------ the chosen weight
name = tuning.COLLABORATIVE_LABELS[collaborative]
values = tuning.readout(table, segment, collaborative, chosen_weight,
                        default_collaborative=DEFAULT_COLLAB)
st.subheader(f"Hybrid on {name} at w = {chosen_weight:.2f}")
m1, m2, m3 = st.columns(3)
ndcg, coverage, novelty = values["ndcg"], values["coverage"], values["novelty"]
change = (f"from the default ({tuning.COLLABORATIVE_LABELS[DEFAULT_COLLAB]}, "
          f"w = {DEFAULT_WEIGHT:.2f})")
m1.metric(f"NDCG@{k}", f"{ndcg[0]:.4f}", f"{ndcg[1]:+.4f}", help=f"Change {change}")
m2.metric("Catalogue coverage", f"{coverage[0]:.1%}", f"{coverage[1] * 100:+.1f} points",
          help=f"Share of the catalogue in at least one list. Change {change}")
m3.metric("Novelty", f"{novelty[0]:.2f} bits", f"{novelty[1]:+.2f}",
          help=f"Mean self-information of the recommended titles. Change {change}")
link = tuning.recommend_link_params(chosen_weight, collaborative)
try:
    st.page_link("pages/recommend.py", label=f"Use w = {chosen_weight:.2f} on {name} on the "
                 "Recommend page", icon=":material/auto_awesome:", query_params=link)
except StreamlitPageNotFoundError:  # this page run on its own (tests): no other pages
    st.caption(f"Use this weight on Recommend: "
               f"{md_escape(tuning.recommend_address(chosen_weight, collaborative))}")

st.plotly_chart(weight_curve(table, metric, segment, chosen_weight, k, collaborative),
                width="stretch", config=CHART_CONFIG)

best = tuning.hybrid_rows(table, collaborative)
best = best[best[metric].notna()].sort_values(["segment", "weight"])
best = best.loc[best.groupby("segment", sort=False)[metric].idxmax(),
                ["segment", "weight", metric, "users"]]
st.subheader(f"Best weight per segment, hybrid on {name} ({LABELS[metric]}@{k})")
st.dataframe(best.reset_index(drop=True), hide_index=True)

st.subheader("Accuracy against coverage and novelty")
other = st.radio("Against", AGAINST, horizontal=True, format_func=LABELS.get,
                 key="tune_against")
accuracy = metric if metric in ACCURACY else "ndcg"
st.plotly_chart(tradeoff_chart(table, accuracy, other, segment, k), width="stretch",
                config=CHART_CONFIG)

# ------------------------------------------------------------------ variety (MMR)
served = algorithm_label(curve.algorithm)
st.subheader(f"Variety: MMR re-ranking of the served {served} over genres and franchises")
chosen_div = float(st.slider("Variety", 0.0, 1.0, step=tuning.DIVERSITY_STEP, key="tune_div",
                             help="As on the Recommend page: 0 = the plain ranking."))
at_div = tuning.diversity_readout(curve.table, segment, chosen_div)
d1, d2, d3 = st.columns(3)
plain = "from variety 0 (the plain ranking)"
d1.metric(f"NDCG@{k} at variety {chosen_div:.1f}", f"{at_div['ndcg'][0]:.4f}",
          f"{at_div['ndcg'][1]:+.4f}", help=f"Change {plain}")
d2.metric(f"Coverage at variety {chosen_div:.1f}", f"{at_div['coverage'][0]:.1%}",
          f"{at_div['coverage'][1] * 100:+.1f} points", help=f"Change {plain}")
d3.metric(f"Genre diversity at variety {chosen_div:.1f}",
          f"{at_div['intra_list_diversity'][0]:.3f}",
          f"{at_div['intra_list_diversity'][1]:+.3f}",
          help=f"Mean pairwise genre (Jaccard) distance within a top {k}. Change {plain}")
try:
    st.page_link("pages/recommend.py", label=f"Use variety {chosen_div:.1f} on the Recommend "
                 "page", icon=":material/auto_awesome:",
                 query_params=tuning.recommend_diversity_params(chosen_div))
except StreamlitPageNotFoundError:  # this page run on its own (tests): no other pages
    st.caption("Use this variety on Recommend: "
               f"{md_escape(tuning.recommend_diversity_address(chosen_div))}")
st.plotly_chart(diversity_chart(curve.table, segment, chosen_div, k, served), width="stretch",
                config=CHART_CONFIG)

st.subheader("All results")
shown = table.drop(columns=["algorithm"])
st.dataframe(shown, hide_index=True,
             column_config={"coverage": st.column_config.NumberColumn(format="percent")})
meta = results[0].meta
fits = [r.meta for r in (*results, curve) if not r.meta.get("cached")]
st.caption(f"{meta['users']} users ({meta['light_users']} light), k={k}, {split} split, "
           f"seed {seed}"
           + (" · from cache" if not fits else
              f" · fitted in {sum(m['fit_seconds'] for m in fits):.1f}s, scored in "
              f"{sum(m['score_seconds'] for m in fits):.1f}s"))
