"""The dashboard's one shared engine, built once per process (st.cache_resource)."""

from __future__ import annotations

import streamlit as st

from recommender import RecommenderEngine


@st.cache_resource(show_spinner="Starting the recommender (database and index cache)…")
def get_engine() -> RecommenderEngine:
    return RecommenderEngine.from_settings()
