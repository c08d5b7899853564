"""Recommend: pick anime you liked, get a hybrid of user-user CF and content."""

import streamlit as st

from app_state import get_engine
from recommender.errors import RecommenderError

engine = get_engine()
st.title("Anime recommendations")
query = st.text_input("Search an anime you liked", placeholder="e.g. stiens gate")
hits = engine.search(query, limit=10) if query.strip() else None
if hits is None or hits.empty:
    st.info("Type a title to start, e.g. “steins gate” or “attack on titan”.")
    st.stop()
picked = st.multiselect("Your anime", hits["anime_id"].tolist(),
                        default=hits["anime_id"].tolist()[:1],
                        format_func=dict(zip(hits["anime_id"], hits["name"])).get)
algorithm = st.segmented_control("Algorithm", ["hybrid", "user-user", "content"],
                                 default="hybrid")
weight = st.slider("Collaborative share", 0.0, 1.0, engine.params.hybrid_weight, 0.05)
if not picked:
    st.warning("Pick at least one anime.")
    st.stop()
try:
    recs = engine.recommend(liked=picked, algorithm=algorithm or "hybrid", weight=weight, n=10)
except RecommenderError as exc:
    st.error(str(exc))
    st.stop()
st.dataframe(recs[["rank", "name", "score", "reason", "genre"]], hide_index=True)
