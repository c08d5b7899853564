"""Tune: what the hybrid weight does to offline quality, measured on a held-out split."""

import os

import streamlit as st

from dashboard.charts import LABELS, tradeoff_chart, weight_curve
from recommender.config import EngineParams, load_settings
from recommender.data.catalog import load_bundled_anime, load_bundled_ratings
from recommender.evaluation import METRICS, SEGMENTS, EvalSpec, evaluate

# Tests and small machines lower the default user count (and may redirect the cache).
DEFAULT_USERS = int(os.environ.get("ANIREC_TUNE_USERS", "300"))
CACHE_DIR = os.environ.get("ANIREC_EVAL_CACHE_DIR") or str(load_settings().eval_cache_dir)


@st.cache_resource(show_spinner="Loading the bundled data…")
def bundled_frames():
    return load_bundled_anime(), load_bundled_ratings()


st.title("Tune the hybrid")
st.caption("Each user's held-out anime rated 8 or more are the relevant ones; every model is "
           "fitted on the training side of the split only.")
with st.sidebar:
    split = st.radio("Split", ["validation", "test"], horizontal=True,
                     help="Tune on validation; look at test only once settings are chosen.")
    users = st.number_input("Users evaluated (0 = all)", 0, 6000, DEFAULT_USERS, step=100)
    k = st.number_input("List length k", 1, 50, 10)
    seed = st.number_input("Split seed", 0, 10_000, 0)
metric = st.selectbox("Metric", METRICS, format_func=LABELS.get)
segment = st.segmented_control("Users", SEGMENTS, default="all",
                               help="light: fewer than 20 training ratings") or "all"
weight = st.slider("Collaborative weight w", 0.0, 1.0, EngineParams().hybrid_weight, 0.1)

spec = EvalSpec(split=split, n_users=int(users), k=int(k), random_state=int(seed))
key = f"eval-{spec}"
if key not in st.session_state:
    bar = st.progress(0.0, text="Scoring users…")

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Scoring users… {done}/{total}")

    anime, ratings = bundled_frames()
    st.session_state[key] = evaluate(anime, ratings, spec, cache_dir=CACHE_DIR, progress=report)
    bar.empty()
result = st.session_state[key]
table = result.table

st.plotly_chart(weight_curve(table, metric, segment, weight, spec.k), width="stretch")

best = result.best_weights(metric)
st.subheader(f"Best weight per segment ({LABELS[metric]}@{spec.k})")
st.dataframe(best, hide_index=True)

st.subheader("Accuracy against coverage and novelty")
other = st.radio("Against", ["coverage", "novelty", "diversity"], horizontal=True,
                 format_func=LABELS.get)
accuracy = metric if metric in ("ndcg", "recall", "precision", "hit_rate", "map") else "ndcg"
st.plotly_chart(tradeoff_chart(table, accuracy, other, segment, spec.k),
                width="stretch")

st.subheader("All results")
st.dataframe(table.drop(columns=["algorithm"]), hide_index=True)
meta = result.meta
st.caption(f"{meta['users']} users ({meta['light_users']} light), k={spec.k}, "
           f"{spec.split} split, seed {spec.random_state}"
           + (" · from cache" if meta.get("cached") else
              f" · fitted in {meta['fit_seconds']}s, scored in {meta['score_seconds']}s"))
