"""Anime Hybrid Recommender: dashboard entry point (navigation and the shared sidebar)."""

from pathlib import Path

import streamlit as st

from app_state import current_settings, engine_or_stop, sidebar_status
from recommender.serving.admin import admin_enabled

HERE = Path(__file__).resolve().parent
# A local image: an icon name or an emoji as the favicon would be fetched from a font
# or image host on every page.
st.set_page_config(page_title="Anime Hybrid Recommender",
                   page_icon=str(HERE / "dashboard" / "favicon.png"), layout="wide")
pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/recommend.py", title="Recommend", icon=":material/auto_awesome:"),
    st.Page("pages/neighbours.py", title="Neighbours", icon=":material/group:"),
    st.Page("pages/performance.py", title="Performance", icon=":material/speed:"),
]
# The tuning page is optional: listed only when it is part of the checkout.
if (HERE / "pages" / "tune.py").exists():
    pages.append(st.Page("pages/tune.py", title="Tune", icon=":material/tune:"))
# Maintenance exists only when an admin key is set: without SECRET_KEY it is not listed.
# Its script lives outside pages/, which Streamlit lists by file name on a process's very
# first run, so no session can see it listed unless the key is set.
if admin_enabled(current_settings()):
    pages.append(st.Page("dashboard/admin_page.py", title="Admin", url_path="admin",
                         icon=":material/admin_panel_settings:"))
# Streamlit's own page menu is switched off (.streamlit/config.toml), since on a process's
# first run it would list files by name; the menu is drawn here from ``pages`` instead,
# so it names exactly the pages this session may open.
navigation = st.navigation(pages, position="hidden")
with st.sidebar:
    for listed in pages:
        st.page_link(listed)

# Built (or loaded) once per process; the first visitor sees a progress bar here.
engine = engine_or_stop()
sidebar_status(engine)
navigation.run()
