"""Neighbours: the users most similar to a chosen user, and why, for analysts."""

from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

import app_state
from app_state import md_escape
from dashboard import charts, state, summaries
from recommender.core.validate import MAX_ID
from recommender.data.catalog import anime_url
from recommender.errors import RecommenderError
from recommender.models.neighbour_insight import MIN_SHARED

engine = app_state.engine_or_stop()
session = st.session_state

# ------------------------------------------------------------------ shareable URL -> state
# Each control starts from the URL, then (the user) from the one chosen last on
# any page; state.keep then holds them across runs that stop early.
notices: list[str] = []
query = st.query_params


def user_from_url() -> int:
    raw = query.get("user")
    user = app_state.parse_user_id(raw) if raw is not None else None
    if raw is not None and user is None:
        notices.append(f"“{md_escape(raw)}” in the address is not a user id; showing another "
                       "user instead.")
    first_user = int(engine.user_ids()[0]) if len(engine.user_ids()) else 0
    return user if user is not None else session.get("current_user", first_user)


def k_from_url() -> int:
    raw = query.get("k")
    if raw is None:
        return 20
    k = app_state.parse_in_range(raw, int, 5, 50)
    if k is None or k % 5:
        notices.append(f"k must be one of 5, 10, …, 50, not “{md_escape(raw)}”; showing 20.")
        return 20
    return k


def exact_from_url() -> bool:
    raw = query.get("exact")
    if raw is None or raw in ("0", "1"):
        return raw == "1"
    notices.append(f"exact must be 0 or 1, not “{md_escape(raw)}”; using the index.")
    return False


state.keep({"nb_user": user_from_url, "nb_k": k_from_url, "nb_exact": exact_from_url})


def pick_random_user() -> None:
    state.put("nb_user", app_state.random_user(engine))


def open_neighbour(table_key: str, user_ids: list[int]) -> None:
    """Clicking a neighbour's row makes that neighbour the chosen user."""
    rows = session[table_key].selection.rows
    if rows:
        state.put("nb_user", int(user_ids[rows[0]]))


st.title("Neighbours")
for notice in notices:
    st.warning(notice)
if engine.knn.config.centre:
    st.caption("Similarity is the cosine between two users' centred ratings (each rating "
               "minus the user's shrunk mean), over the anime both rated; -1 (watched) "
               "counts as 0.")
else:
    st.caption("Similarity is the cosine between two users' rating rows (1-10; -1, watched "
               "but not rated, counts as 0): high when they rated the same anime alike.")
# Wide enough for the button's label at a desktop width (1 of 9 cut it to "Ran…").
c1, c2, c3, c4 = st.columns([3, 2, 4, 2], vertical_alignment="bottom")
user_id = int(c1.number_input("User id", min_value=0, max_value=MAX_ID, step=1, format="%d",
                              key="nb_user"))
c2.button("Random", icon=":material/casino:", on_click=pick_random_user, width="stretch",
          help="Pick a random user")
k = int(c3.slider("Neighbours (k)", 5, 50, step=5, key="nb_k"))
exact = bool(c4.toggle("Exact search", key="nb_exact",
                       help="List the exact neighbours (every user scanned) instead of the "
                            "index's"))
st.query_params.from_dict({"user": str(user_id), "k": str(k),
                           **({"exact": "1"} if exact else {})})
if not app_state.knows_user(engine, user_id):
    ids = engine.user_ids()
    if len(ids):
        st.error(f"There is no user {user_id}. User ids run from {int(ids[0])} to "
                 f"{int(ids[-1])} (with gaps); try the random user button.")
        # Ids have gaps, so a step of the stepper often lands on none: offer the nearest.
        at = int(np.searchsorted(ids, user_id))
        nearest = sorted({int(ids[i]) for i in (at - 1, at) if 0 <= i < len(ids)},
                         key=lambda u: (abs(u - user_id), u))
        for column, near in zip(st.columns(4), nearest):
            column.button(f"Open user {near}", key=f"nb_near_{near}",
                          on_click=state.put, args=("nb_user", near))
    else:
        st.info("There are no users yet: save a list on the Recommend page to add the first.")
    st.stop()
session.current_user = user_id

try:
    found = summaries.ann_and_exact_neighbours(engine, user_id, k)
except RecommenderError as exc:
    st.error(f"Could not find neighbours: {md_escape(exc)}")
    st.stop()
ann, exact_found = found["ann"], found["exact"]
shown = exact_found if exact else ann
if shown.empty:
    st.warning(f"User {user_id} has no neighbours: their ratings carry no taste signal "
               "(only -1, or every rating the same as their mean).")
    st.stop()

app_state.nav_link("pages/recommend.py", f"Recommendations for user {user_id}",
                   ":material/auto_awesome:", query_params={"user": str(user_id)})

# ------------------------------------------------------------------ the neighbours and why
neighbours, evidence = summaries.neighbour_evidence(engine, user_id, shown)
search = "exact search" if exact else "index + exact re-rank"
st.subheader(f"The {len(neighbours)} nearest users")
st.plotly_chart(charts.similarity_dots(neighbours, f"Similarity per neighbour ({search})"),
                config=charts.CHART_CONFIG)
thin = int(neighbours["thin"].sum())
if thin:
    st.warning(f"{thin} of user {user_id}'s {len(neighbours)} nearest users share fewer than "
               f"{MIN_SHARED} watched titles with them (hollow markers, ⚠ in the table): "
               "a cosine over one or two titles can be high by chance.",
               icon=":material/warning:")
table_key = f"nb_table_{user_id}_{k}_{int(exact)}"
st.caption("“Why similar”: the shared titles that carry most evidence, weighing rarity "
           "(few users watched it) by agreement (close ratings), with user "
           f"{user_id}'s rating / the neighbour's. Click a row to open that user.")
st.dataframe(
    neighbours.assign(thin=neighbours["thin"].map({True: "⚠ thin", False: ""}))[
        ["rank", "user_id", "similarity", "shared", "n_ratings", "thin", "why"]],
    hide_index=True, key=table_key, selection_mode="single-row",
    on_select=partial(open_neighbour, table_key, neighbours["user_id"].astype(int).tolist()),
    column_config={
        "similarity": st.column_config.NumberColumn(format="%.3f"),
        "shared": st.column_config.NumberColumn(help="anime both have watched"),
        "n_ratings": st.column_config.NumberColumn("ratings"),
        "thin": st.column_config.TextColumn(
            "overlap", help=f"⚠: fewer than {MIN_SHARED} shared titles"),
        "why": st.column_config.TextColumn("why similar", width="large"),
    })
with st.expander("The titles that made them similar, with links"):
    st.dataframe(evidence[["neighbour", "name", "chosen", "theirs", "weight", "url"]],
                 hide_index=True, column_config={
                     "chosen": st.column_config.NumberColumn(f"user {user_id}'s rating",
                                                             help="-1 = watched, not rated"),
                     "theirs": st.column_config.NumberColumn("neighbour's rating"),
                     "weight": st.column_config.NumberColumn(
                         format="%.2f", help="rarity (bits) × agreement (0-1)"),
                     "url": st.column_config.LinkColumn("MyAnimeList", display_text="open"),
                 })

left, right = st.columns(2)
with left:
    dist = summaries.similarity_distribution(engine, user_id, k=200)
    fig = px.histogram(dist, x="similarity", nbins=30,
                       title=f"Top {len(dist)} similarities")
    fig.update_layout(margin=dict(t=50, b=10), height=340, yaxis_title="users")
    st.plotly_chart(fig, config=charts.CHART_CONFIG)
with right:
    profile = summaries.genre_profile(engine, user_id, shown["user_id"].tolist())
    if profile.empty:
        st.info(f"User {user_id} and the neighbours have no liked anime to profile.")
    else:
        st.plotly_chart(charts.genre_profile_chart(profile), config=charts.CHART_CONFIG)

heat = summaries.shared_ratings(engine, user_id, shown["user_id"].head(15).tolist())
st.subheader("Ratings on the titles that tell them apart")
if heat.empty:
    st.info("The neighbours share no watched anime with this user.")
else:
    st.plotly_chart(charts.rating_heatmap(heat), config=charts.CHART_CONFIG)
    st.caption(f"Rows: user {user_id} first, then up to 15 nearest users; columns: titles user "
               f"{user_id} watched, chosen to tell the neighbours apart (some watched it, "
               "some did not, or their ratings differ), not the ones everybody watched; "
               "-1 = watched, not rated; blank = not watched. Each title opens its "
               "MyAnimeList page; hover a cell for the full title.")
    with st.expander("The titles in the heat map, with links"):
        ids = heat.attrs.get("anime_ids", [])
        st.dataframe(pd.DataFrame({"title": list(heat.columns), "anime_id": ids,
                                   "url": [anime_url(a) for a in ids]}),
                     hide_index=True, column_config={
                         "url": st.column_config.LinkColumn("MyAnimeList",
                                                            display_text="open")})

# ------------------------------------------------------------------ index against exact
st.subheader("Index neighbours against exact neighbours")
tied, missed = found["tied"], found["missed"]
st.metric(f"Recall@{k}", f"{found['recall']:.0%}",
          help="Share of the exact top-k that the index search (with exact re-rank) found. "
               "A user the index found who is exactly as similar as the k-th exact neighbour "
               "counts as found: which of equally similar users comes k-th is arbitrary.")
st.caption(f"Ties count as found: a neighbour the index returned with the same similarity as "
           f"the {k}-th exact neighbour ({found['cutoff']:.5f}) is a hit."
           + (f" {len(tied)} such tied user(s): {', '.join(map(str, tied))}." if tied else ""))
in_exact = set(exact_found["user_id"].astype(int))
in_ann = set(ann["user_id"].astype(int))
left, right = st.columns(2)
left.markdown("**Index (hnswlib candidates, re-ranked)**")
left.dataframe(ann.assign(in_exact=ann["user_id"].isin(in_exact))[
    ["rank", "user_id", "similarity", "in_exact"]], hide_index=True,
    column_config={"similarity": st.column_config.NumberColumn(format="%.5f")})
right.markdown("**Exact (every user scanned)**")
right.dataframe(exact_found.assign(found_by_index=exact_found["user_id"].isin(in_ann))[
    ["rank", "user_id", "similarity", "found_by_index"]], hide_index=True,
    column_config={"similarity": st.column_config.NumberColumn(format="%.5f")})
if missed:
    st.caption("Missed by the index (ties excluded): " + md_escape(", ".join(map(str, missed))))
