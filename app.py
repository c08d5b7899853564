"""Anime Hybrid Recommender: dashboard entry point (navigation only)."""

import streamlit as st

st.set_page_config(page_title="Anime Hybrid Recommender", page_icon="🎌", layout="wide")
navigation = st.navigation([st.Page("pages/recommend.py", title="Recommend", icon="✨")])
navigation.run()
