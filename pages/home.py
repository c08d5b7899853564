"""Home: what the dashboard is, the data at a glance and the engine's status."""

import plotly.express as px
import streamlit as st

import app_state
from dashboard import charts
from recommender.serving.ranking import ADULT_GENRE

engine = app_state.engine_or_stop()
version = app_state.engine_version(engine)

app_state.compact_layout()
st.title("Anime Recommender", anchor=False)
st.markdown(
    "Recommends anime from real ratings and says **why**: **user-user** collaborative "
    "filtering (people who rate like you), **content** (genres, synopsis and type of what "
    "you liked), the learned models **EASE** and **matrix factorisation**, and a **hybrid** "
    "of a collaborative part with content, its share set by a slider."
)
with st.expander("How to use it", expanded=True):
    st.markdown(
        "1. **Recommend**: pick an existing user (or a random one), or build your own list "
        "by typing titles; typos and English titles are fine (*stiens gate*, "
        "*attack on titan*). Rate what you like, choose the algorithm and the weight, and "
        "save the list as a new user if you want to come back to it.\n"
        "2. **Neighbours**: the users most similar to a chosen user, how similar, what they "
        "rated in common and how well the fast index agrees with an exact search.\n"
        "3. **Performance**: time spent per stage, latency per algorithm, memory of the "
        "sparse matrix and the index, and a live index-versus-exact comparison.\n"
        "4. **Tune**: what the hybrid weight does to quality (NDCG, coverage, novelty) on "
        "held-out ratings, against every algorithm, and a link that applies the weight "
        "on Recommend.\n\n"
        "Every view has a shareable address: copying it reproduces what you see, a built "
        "list included."
    )
app_state.nav_link("pages/recommend.py", "Start: get recommendations",
                   ":material/play_arrow:", primary=True)

st.subheader("The data at a glance")
summary = app_state.dataset_summary(version, engine)
cols = st.columns(4)
cols[0].metric("Users", f"{summary['users']:,}")
cols[1].metric("Anime", f"{summary['anime']:,}", help=f"{summary['rated_anime']:,} have ratings")
cols[2].metric("Ratings", f"{summary['ratings']:,}",
               help=f"{summary['watched_unrated']:,} of them are -1 (watched, not rated)")
cols[3].metric("Matrix density", f"{summary['density']:.3%}")

left, right = st.columns(2)
with left:
    dist = app_state.rating_distribution(version, engine)
    fig = px.bar(dist, x="label", y="count", title="Rating distribution (-1 = watched, not rated)",
                 labels={"label": "rating", "count": "ratings"})
    fig.update_xaxes(type="category")
    fig.update_layout(margin=dict(t=50, b=10), height=360)
    st.plotly_chart(fig, config=charts.CHART_CONFIG)
with right:
    genres = app_state.genre_counts(version, engine)
    if not engine.params.include_adult:  # as everywhere else, what serving leaves out
        genres = genres[genres["genre"] != ADULT_GENRE]
    fig = px.bar(genres.iloc[::-1].assign(genre=lambda f: f["genre"].map(app_state.plot_text)),
                 x="anime", y="genre", orientation="h",
                 title="Most common genres in the catalogue", labels={"anime": "anime"})
    fig.update_layout(margin=dict(t=50, b=10), height=360)
    fig.update_yaxes(dtick=1, tickfont={"size": 10})  # every genre named, not every other
    st.plotly_chart(fig, config=charts.CHART_CONFIG)

st.subheader("Engine status")
info = getattr(engine, "build_info", {}) or {}
stats = engine.stats()
cols = st.columns(4)
cols[0].metric("Index", str(info.get("index", "built")).capitalize())
seconds = info.get("total_seconds")
parts = [f"{name} {info[key]:.1f} s" for name, key in
         (("ingest", "ingest_seconds"), ("load", "load_seconds"), ("build", "build_seconds"))
         if isinstance(info.get(key), (int, float))]
cols[1].metric("Start-up time", f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "n/a",
               help="; ".join(parts) or None)
cols[2].metric("Users in the index", f"{stats['index_elements']:,}",
               help="Users with at least one informative rating")
cols[3].metric("Index size", f"{stats['index_bytes'] / 2**20:.1f} MiB",
               help=f"{stats['vector_dim']}-dimensional vectors, hnswlib graph")
database = info.get("database") or app_state.redacted_url(
    str(app_state.current_settings().database_url))
st.caption(f"Database: {app_state.md_escape(database)}"
           + (f" · index cache problem: {app_state.md_escape(info['cache_problem'])}"
              if info.get("cache_problem") else ""))
st.subheader("Go to")
cols = st.columns(4)
for col, (path, label, icon) in zip(cols, (
        ("pages/recommend.py", "Recommend", ":material/auto_awesome:"),
        ("pages/neighbours.py", "Neighbours", ":material/group:"),
        ("pages/performance.py", "Performance", ":material/speed:"),
        ("pages/tune.py", "Tune", ":material/tune:"))):
    with col:
        app_state.nav_link(path, label, icon)
