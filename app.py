"""Anime Hybrid Recommender: dashboard entry point (navigation and the shared sidebar)."""

from pathlib import Path

import streamlit as st

from app_state import engine_or_stop, sidebar_status

st.set_page_config(page_title="Anime Hybrid Recommender", page_icon=":material/movie:",
                   layout="wide")

HERE = Path(__file__).resolve().parent
pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/recommend.py", title="Recommend", icon=":material/auto_awesome:"),
    st.Page("pages/neighbours.py", title="Neighbours", icon=":material/group:"),
    st.Page("pages/performance.py", title="Performance", icon=":material/speed:"),
]
# The tuning page is optional: listed only when it is part of the checkout.
if (HERE / "pages" / "tune.py").exists():
    pages.append(st.Page("pages/tune.py", title="Tune", icon=":material/tune:"))
navigation = st.navigation(pages)

# Built (or loaded) once per process; the first visitor sees a progress bar here.
engine = engine_or_stop()
sidebar_status(engine)
navigation.run()
