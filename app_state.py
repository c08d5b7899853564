"""The dashboard's one shared engine, built once per process (st.cache_resource)."""

from __future__ import annotations

import streamlit as st

from recommender import RecommenderEngine
from recommender.catalog import load_bundled_anime, load_bundled_ratings


@st.cache_resource(show_spinner="Building the recommender on the bundled data…")
def get_engine() -> RecommenderEngine:
    return RecommenderEngine.from_frames(load_bundled_anime(), load_bundled_ratings())
