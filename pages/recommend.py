"""Recommend: for an existing user or a list built by typing titles, with the reasons."""

import pandas as pd
import streamlit as st
from streamlit_searchbox import st_searchbox

import app_state
from app_state import md_escape
from dashboard import summaries
from recommender.core.validate import MAX_ID
from recommender.errors import (
    EmptyInputError,
    QuotaExceededError,
    RecommenderError,
)
from recommender.serving.search import MAX_QUERY_LENGTH

engine = app_state.engine_or_stop()
version = app_state.engine_version(engine)
state = st.session_state
algorithms = app_state.algorithm_choices(engine)
params = engine.params

MODES = ("Existing user", "Build your own list")
#: 0 stands for "no rating" (a selectbox shows None as an empty choice).
RATING_OPTIONS = [0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, -1]


def rating_label(value) -> str:
    if not value:
        return "liked (no rating)"
    return "watched, not rated (-1)" if value == -1 else f"{value} / 10"


# ------------------------------------------------------------------ shareable URL -> state
# A widget's state is dropped when another page is shown, so each widget starts
# from the URL, then from what the session chose last (e.g. on the Neighbours
# page), then from the defaults.
notices: list[str] = []
query = st.query_params
if "rec_mode" not in state:
    # With no users yet (a new database), only a list of titles can be recommended from.
    no_users = len(engine.user_ids()) == 0
    state.rec_mode = MODES[1] if query.get("mode") == "list" or no_users else MODES[0]
if "rec_user" not in state:
    raw = query.get("user")
    user = app_state.parse_user_id(raw) if raw is not None else None
    if raw is not None and user is None:
        notices.append(f"“{md_escape(raw)}” in the address is not a user id; showing another "
                       "user instead.")
    first_user = int(engine.user_ids()[0]) if len(engine.user_ids()) else 0
    state.rec_user = user if user is not None else state.get("current_user", first_user)
if "rec_algorithm" not in state:
    raw = query.get("algorithm")
    if raw is not None and raw not in algorithms:
        notices.append(f"Unknown algorithm “{md_escape(raw)}” in the address; using "
                       f"{app_state.algorithm_label(algorithms[0])}.")
    state.rec_algorithm = raw if raw in algorithms else algorithms[0]
if "rec_weight" not in state:
    raw, weight = query.get("weight"), params.hybrid_weight
    if raw is not None:
        weight = app_state.parse_in_range(raw, float, 0.0, 1.0)
        if weight is None:
            notices.append(f"The weight must be a number from 0 to 1, not “{md_escape(raw)}”.")
            weight = params.hybrid_weight
    state.rec_weight = round(round(weight / 0.05) * 0.05, 2)
if "rec_n" not in state:
    raw, n = query.get("n"), 10
    if raw is not None:
        n = app_state.parse_in_range(raw, int, 1, 50)
        if n is None:
            notices.append(f"n must be a whole number from 1 to 50, not “{md_escape(raw)}”.")
            n = 10
    state.rec_n = n
state.setdefault("rec_k", min(max(engine.knn.config.n_neighbours, 5), 100))
state.setdefault("my_list", {})
state.setdefault("created_users", [])
quota = app_state.session_quota()


# ------------------------------------------------------------------ callbacks
def pick_random_user() -> None:
    state.rec_user = app_state.random_user(engine)


def search_titles(term: str) -> list[tuple[str, int]]:
    """Autocomplete options: (label, anime_id), best match first."""
    if not term or not term.strip():
        return []
    try:
        hits = engine.search(term[:MAX_QUERY_LENGTH], limit=12)
    except RecommenderError:
        return []
    options = []
    for row in hits.itertuples():
        label = str(row.name)
        if isinstance(row.english_name, str) and row.english_name and row.english_name != row.name:
            label += f" ({row.english_name})"
        if isinstance(row.type, str) and row.type:
            label += f" · {row.type}"
        options.append((label, int(row.anime_id)))
    return options


def add_anime(anime_id) -> None:
    if anime_id is not None:
        state.my_list.setdefault(int(anime_id), None)


def remove_anime(anime_id: int) -> None:
    state.my_list.pop(anime_id, None)
    state.pop(f"rate_{anime_id}", None)


def store_rating(anime_id: int) -> None:
    state.my_list[anime_id] = state[f"rate_{anime_id}"] or None


def clear_list() -> None:
    for anime_id in list(state.my_list):
        remove_anime(anime_id)


def open_user(user_id: int) -> None:
    state.rec_mode = MODES[0]
    state.rec_user = int(user_id)


def save_list() -> None:
    """Save the built list as a new user (database and index); at most a few per session."""
    state.pop("save_message", None)
    try:
        # The slot is given back when add_user fails, so a failed save costs nothing.
        with quota.reserve():
            new_id = int(engine.add_user(dict(state.my_list), source="app"))
    except QuotaExceededError:
        state.save_message = ("warning", f"This session has already saved {quota.max_users} "
                              "users, the most one session may create. Reload the page later "
                              "to start a new session.")
        return
    except RecommenderError as exc:  # DatabaseError included: its message names the setting
        state.save_message = ("error", f"Could not save: {md_escape(exc)}")
        return
    state.created_users.append(new_id)
    state.save_message = ("success", f"Saved as user {new_id}.", new_id)


# ------------------------------------------------------------------ page
st.title("Recommendations")
for notice in notices:
    st.warning(notice)

mode = st.radio("Recommend for", MODES, key="rec_mode", horizontal=True)
subject: tuple
if mode == MODES[0]:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    user_id = left.number_input("User id", min_value=0, max_value=MAX_ID, step=1, format="%d",
                                key="rec_user",
                                help="Any id from the ratings, or one saved from a list.")
    right.button("Random user", icon=":material/casino:", on_click=pick_random_user,
                 width="stretch")
    user_id = int(user_id)
    if not engine.has_user(user_id):
        ids = engine.user_ids()
        if len(ids):
            st.error(f"There is no user {user_id}. User ids run from {int(ids[0])} to "
                     f"{int(ids[-1])} (with gaps); try the random user button.")
        else:
            st.info("There are no users yet: build a list of titles instead, and save it "
                    "as the first user.")
        st.stop()
    state.current_user = user_id
    rated = app_state.user_ratings(version, user_id, engine)
    with st.expander(f"What user {user_id} rated ({len(rated)} anime), best first",
                     expanded=False):
        shown = rated.head(25).assign(rating=lambda f: f["rating"].map(
            lambda r: "watched (-1)" if r == -1 else str(r)))
        st.dataframe(shown[["name", "rating", "type", "genre", "members"]], hide_index=True,
                     width="stretch")
    subject = ("user", user_id)
else:
    st_searchbox(search_titles, key="anime_search", label="Add an anime you watched",
                 placeholder="Type a title, e.g. stiens gate or attack on titan",
                 clear_on_submit=True, submit_function=add_anime, debounce=200)
    term = str((state.get("anime_search") or {}).get("search") or "")
    if len(term) > MAX_QUERY_LENGTH:
        st.warning(f"That search is {len(term)} characters long; titles are searched by their "
                   f"first {MAX_QUERY_LENGTH}.")
        term = term[:MAX_QUERY_LENGTH]
    if term.strip() and engine.search(term, limit=1).empty:
        st.warning(f"No anime matches “{md_escape(term)}”. Check the spelling or try another "
                   "title (English and Japanese titles work too).")
    if not state.my_list:
        st.warning("Your list is empty. Type a title above and pick it to add it; "
                   "ratings are optional (no rating means you liked it).")
        st.stop()
    names = engine.anime_by_id(state.my_list).set_index("anime_id")["name"]
    st.caption(f"Your list: {len(state.my_list)} anime")
    for anime_id in list(state.my_list):
        key = f"rate_{anime_id}"
        if key not in state:
            state[key] = state.my_list[anime_id] or 0
        c1, c2, c3 = st.columns([5, 3, 1], vertical_alignment="center")
        c1.markdown(md_escape(names.get(anime_id, f"anime {anime_id}")))
        c2.selectbox("Rating", RATING_OPTIONS, key=key, format_func=rating_label,
                     label_visibility="collapsed", on_change=store_rating, args=(anime_id,))
        c3.button("Remove", icon=":material/close:", key=f"remove_{anime_id}", type="tertiary",
                  on_click=remove_anime, args=(anime_id,))
    c1, c2, _ = st.columns([3, 2, 3])
    c1.button("Save as a new user", icon=":material/save:", on_click=save_list, type="primary",
              help=f"Adds the list to the database and the index ({quota.remaining} of "
                   f"{quota.max_users} new users left in this session).")
    c2.button("Clear the list", on_click=clear_list)
    message = state.get("save_message")
    if message:
        getattr(st, message[0])(message[1])
        if message[0] == "success":
            st.button(f"Open user {message[2]}", on_click=open_user, args=(message[2],))
    subject = ("list", tuple(sorted(state.my_list.items(), key=lambda kv: kv[0])))

# ------------------------------------------------------------------ controls
st.divider()
c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
algorithm = c1.radio("Algorithm", algorithms, key="rec_algorithm", horizontal=True,
                     format_func=app_state.algorithm_label)
collaborative = "user-user"
if algorithm == "hybrid" and len(engine.collaborative_algorithms) > 1:
    collaborative = c1.selectbox("Collaborative part", engine.collaborative_algorithms,
                                 key="rec_cf", format_func=app_state.algorithm_label)
weight = c2.slider("Collaborative share (hybrid weight)", 0.0, 1.0, step=0.05, key="rec_weight",
                   disabled=algorithm != "hybrid",
                   help="1 = only what similar users liked, 0 = only similar content.")
uses_neighbours = algorithm == "user-user" or (algorithm == "hybrid"
                                               and collaborative == "user-user")
k = c3.slider("Neighbours (k)", 5, 100, step=5, key="rec_k", disabled=not uses_neighbours)
n = c4.slider("Results (n)", 1, 50, key="rec_n")

shared = {"algorithm": algorithm, "n": str(n)}
if algorithm == "hybrid":
    shared["weight"] = f"{weight:.2f}"
if subject[0] == "user":
    shared["user"] = str(subject[1])
else:
    shared["mode"] = "list"
st.query_params.from_dict(shared)

# ------------------------------------------------------------------ results
request = {"algorithm": algorithm, "weight": weight, "n": n, "collaborative": collaborative}
if uses_neighbours:
    request["k"] = k
try:
    if subject[0] == "user":
        recs = engine.recommend(subject[1], **request)
    else:
        recs = engine.recommend(liked=dict(subject[1]), **request)
except EmptyInputError as exc:
    st.warning(f"Nothing to recommend from: {md_escape(exc)}")
    st.stop()
except RecommenderError as exc:
    st.error(f"Could not recommend: {md_escape(exc)}")
    st.stop()

who = f"user {subject[1]}" if subject[0] == "user" else "your list"
st.subheader(f"Top {len(recs)} for {who} · {app_state.algorithm_label(algorithm)}"
             + (f" · weight {weight:.2f}" if algorithm == "hybrid" else ""))
if recs.attrs.get("fallback"):
    st.info(f"{app_state.algorithm_label(algorithm)} found no evidence for this profile, so the "
            f"list comes from {app_state.algorithm_label(recs.attrs['method'])} instead.")
if recs.attrs.get("unknown_ids"):
    st.warning(f"Left out anime not in the catalogue: {recs.attrs['unknown_ids']}")

# What the weight changed. The reference is the last top-n that differed, so a
# slider moved in small steps (e.g. with the arrow keys) still shows the whole change.
context = (subject, algorithm, n, k if uses_neighbours else None, collaborative)
ids = recs["anime_id"].astype(int).tolist()
current = {"context": context, "weight": weight, "ids": ids,
           "names": dict(zip(ids, recs["name"]))}
reference = state.get("rec_reference")
changes = None
if reference is None or reference["context"] != context:
    state.rec_reference, state.rec_changes = current, None
elif reference["weight"] != weight:
    entered, left_ids = summaries.top_n_changes(reference["ids"], ids)
    changes = {"from": reference["weight"], "to": weight, "entered": entered,
               "left": left_ids, "names": {**reference["names"], **current["names"]}}
    state.rec_changes = changes
    if entered or left_ids:
        state.rec_reference = current
elif (state.get("rec_changes") or {}).get("to") == weight:
    changes = state.rec_changes  # a rerun with nothing changed keeps the message
if changes:
    with st.container(border=True):
        st.markdown(f"**Weight {changes['from']:.2f} → {changes['to']:.2f}:** "
                    f"{len(changes['entered'])} entered and {len(changes['left'])} left "
                    f"the top {n}.")
        if changes["entered"] or changes["left"]:
            a, b = st.columns(2)
            a.markdown("**Entered**\n\n" + ("\n".join(
                f"- {md_escape(changes['names'][i])}" for i in changes["entered"]) or "none"))
            b.markdown("**Left**\n\n" + ("\n".join(
                f"- {md_escape(changes['names'][i])}" for i in changes["left"]) or "none"))


def fmt_number(value, pattern: str, missing: str = "n/a") -> str:
    return missing if value is None or pd.isna(value) else pattern.format(value)


cards, table = st.tabs(["Cards", "Table"])
with cards:
    per_row = 5
    for start in range(0, len(recs), per_row):
        columns = st.columns(per_row)
        for column, row in zip(columns, recs.iloc[start:start + per_row].itertuples()):
            with column.container(border=True):
                st.markdown(f"**{row.rank}. {md_escape(row.name)}**")
                if isinstance(row.english_name, str) and row.english_name not in ("", row.name):
                    st.caption(md_escape(row.english_name))
                episodes = ("1 episode" if row.episodes == 1 else
                            fmt_number(row.episodes, "{:.0f} episodes", "episodes unknown"))
                st.caption(md_escape(f"{row.type or 'type unknown'} · {episodes}"))
                st.caption(md_escape(row.genre or "no genres listed"))
                st.markdown(
                    f":material/star: {fmt_number(row.community_rating, '{:.2f}')} · "
                    f":material/group: {fmt_number(row.members, '{:,.0f}')} · "
                    f"our score **{row.score:.3f}**",
                    help="star: community score on MyAnimeList; people: members, our score: "
                         "comparable within this list only")
                st.caption("Why: " + md_escape(row.reason or "popular overall"))
with table:
    columns = ["rank", "anime_id", "name", "type", "episodes", "genre", "community_rating",
               "members", "score", "source", "reason"]
    st.dataframe(recs[columns], hide_index=True, width="stretch",
                 column_config={
                     "score": st.column_config.NumberColumn("our score", format="%.3f"),
                     "community_rating": st.column_config.NumberColumn("community",
                                                                       format="%.2f"),
                     "members": st.column_config.NumberColumn(format="%d"),
                     "reason": st.column_config.TextColumn("why", width="large"),
                 })
