"""Neighbours: the users most similar to a chosen user, for analysts."""

from functools import partial

import plotly.express as px
import streamlit as st

import app_state
from app_state import md_escape
from dashboard import summaries
from recommender.core.validate import MAX_ID
from recommender.errors import RecommenderError

engine = app_state.engine_or_stop()
# Ratings run -1..10 on the colour axis: -1 (watched, not rated) is grey, not a bad rating.
RATING_COLOURS = [[0.0, "#b8b8b8"], [0.09, "#b8b8b8"], [0.091, "#d73027"], [0.55, "#fee08b"],
                  [1.0, "#1a9850"]]
state = st.session_state

# The widget starts from the URL, then from the user chosen last on any page.
if "nb_user" not in state:
    raw = st.query_params.get("user")
    user = app_state.parse_user_id(raw) if raw is not None else None
    if raw is not None and user is None:
        st.warning(f"“{md_escape(raw)}” in the address is not a user id; showing another "
                   "user instead.")
    first_user = int(engine.user_ids()[0]) if len(engine.user_ids()) else 0
    state.nb_user = user if user is not None else state.get("current_user", first_user)
state.setdefault("nb_k", 20)


def pick_random_user() -> None:
    state.nb_user = app_state.random_user(engine)


def open_neighbour(table_key: str, user_ids: list[int]) -> None:
    """Clicking a neighbour's row makes that neighbour the chosen user."""
    rows = state[table_key].selection.rows
    if rows:
        state.nb_user = int(user_ids[rows[0]])


st.title("Neighbours")
if engine.knn.config.centre:
    st.caption("Similarity is the cosine between two users' centred ratings (each rating "
               "minus the user's shrunk mean), over the anime both rated; -1 (watched) "
               "counts as 0.")
else:
    st.caption("Similarity is the cosine between two users' rating rows (1-10; -1, watched "
               "but not rated, counts as 0): high when they rated the same anime alike.")
c1, c2, c3 = st.columns([3, 1, 3], vertical_alignment="bottom")
user_id = int(c1.number_input("User id", min_value=0, max_value=MAX_ID, step=1, format="%d",
                              key="nb_user"))
c2.button("Random user", icon=":material/casino:", on_click=pick_random_user,
          width="stretch")
k = c3.slider("Neighbours (k)", 5, 50, step=5, key="nb_k")
if not engine.has_user(user_id):
    ids = engine.user_ids()
    if len(ids):
        st.error(f"There is no user {user_id}. User ids run from {int(ids[0])} to "
                 f"{int(ids[-1])} (with gaps); try the random user button.")
    else:
        st.info("There are no users yet: save a list on the Recommend page to add the first.")
    st.stop()
state.current_user = user_id
st.query_params.from_dict({"user": str(user_id), "k": str(k)})

try:
    found = summaries.ann_and_exact_neighbours(engine, user_id, k)
except RecommenderError as exc:
    st.error(f"Could not find neighbours: {md_escape(exc)}")
    st.stop()
ann, exact = found["ann"], found["exact"]
if ann.empty:
    st.warning(f"User {user_id} has no neighbours: their ratings carry no taste signal "
               "(only -1, or every rating the same as their mean).")
    st.stop()

app_state.nav_link("pages/recommend.py", f"Recommendations for user {user_id}",
                   ":material/auto_awesome:", query_params={"user": str(user_id)})

st.subheader(f"The {len(ann)} nearest users")
left, right = st.columns([3, 2])
with left:
    chart = ann.assign(user=ann["user_id"].astype(str))
    fig = px.bar(chart, x="user", y="similarity", hover_data=["shared", "n_ratings"],
                 title="Similarity of each neighbour (index + exact re-rank)")
    fig.update_xaxes(type="category", title="neighbour (user id)")
    fig.update_layout(margin=dict(t=50, b=10), height=360)
    st.plotly_chart(fig)
with right:
    table_key = f"nb_table_{user_id}_{k}"
    st.caption("Click a row to open that user.")
    st.dataframe(ann[["rank", "user_id", "similarity", "shared", "n_ratings"]], hide_index=True,
                 key=table_key, selection_mode="single-row", height=320,
                 on_select=partial(open_neighbour, table_key, ann["user_id"].astype(int).tolist()),
                 column_config={"similarity": st.column_config.NumberColumn(format="%.3f"),
                                "shared": st.column_config.NumberColumn(
                                    help="anime both have watched"),
                                "n_ratings": st.column_config.NumberColumn("ratings")})

left, right = st.columns(2)
with left:
    dist = summaries.similarity_distribution(engine, user_id, k=200)
    fig = px.histogram(dist, x="similarity", nbins=30,
                       title=f"Similarity of the {len(dist)} most similar users (exact)")
    fig.update_layout(margin=dict(t=50, b=10), height=340, yaxis_title="users")
    st.plotly_chart(fig)
with right:
    profile = summaries.genre_profile(engine, user_id, ann["user_id"].tolist())
    if profile.empty:
        st.info(f"User {user_id} and the neighbours have no liked anime to profile.")
    else:
        fig = px.bar(profile.assign(genre=profile["genre"].map(app_state.plot_text)), x="share",
                     y="genre", color="group", barmode="group",
                     orientation="h", title="Genres of liked anime: user vs neighbours")
        fig.update_layout(margin=dict(t=50, b=10), height=340,
                          yaxis={"autorange": "reversed"}, xaxis_tickformat=".0%")
        st.plotly_chart(fig)

heat = summaries.shared_ratings(engine, user_id, ann["user_id"].head(15).tolist())
st.subheader("Ratings on the anime they share")
if heat.empty:
    st.info("The neighbours share no watched anime with this user.")
else:
    fig = px.imshow(heat.rename(columns=app_state.plot_text), zmin=-1, zmax=10,
                    color_continuous_scale=RATING_COLOURS, aspect="auto", text_auto=True,
                    labels={"color": "rating"})
    fig.update_layout(margin=dict(t=10, b=10), height=120 + 28 * len(heat))
    fig.update_xaxes(tickangle=-45)
    st.plotly_chart(fig)
    st.caption("Rows: the chosen user first, then the 15 nearest users; columns: the anime the "
               "user watched that most of them also watched; -1 = watched, not rated; "
               "blank = not watched.")

st.subheader("Index neighbours against exact neighbours")
st.metric(f"Recall@{k}", f"{found['recall']:.0%}",
          help="Share of the exact top-k that the index search (with exact re-rank) found.")
in_exact = set(exact["user_id"].astype(int))
in_ann = set(ann["user_id"].astype(int))
left, right = st.columns(2)
left.markdown("**Index (hnswlib candidates, re-ranked)**")
left.dataframe(ann.assign(in_exact=ann["user_id"].isin(in_exact))[
    ["rank", "user_id", "similarity", "in_exact"]], hide_index=True)
right.markdown("**Exact (every user scanned)**")
right.dataframe(exact.assign(found_by_index=exact["user_id"].isin(in_ann))[
    ["rank", "user_id", "similarity", "found_by_index"]], hide_index=True)
missed = sorted(in_exact - in_ann)
if missed:
    st.caption("Missed by the index: " + md_escape(", ".join(map(str, missed))))
