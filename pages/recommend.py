"""Recommend: for an existing user or a list built by typing titles, with the reasons."""

import numpy as np
import streamlit as st
from streamlit_searchbox import st_searchbox

import app_state
from app_state import md_escape
from dashboard import cards, choices, share, summaries
from dashboard.state import keep, put
from recommender.core.validate import MAX_ID
from recommender.data.catalog import anime_url
from recommender.errors import EmptyInputError, QuotaExceededError, RecommenderError
from recommender.serving.search import MAX_QUERY_LENGTH

engine = app_state.engine_or_stop()
version = app_state.engine_version(engine)
state = st.session_state
# Models still being fitted in the background are listed too (labelled so), so that a
# share link naming one, and the default choice, hold while they are prepared.
algorithms = choices.algorithm_choices(engine, preparing=True)
collaborative_parts = choices.collaborative_choices(engine)
params = engine.params
user_ids = engine.user_ids()

MODES = ("Existing user", "Build your own list")
#: 0 stands for "no rating" (a selectbox shows None as an empty choice).
RATING_OPTIONS = [0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, -1]
WEIGHT_STEP = 0.05
N_RANGE, K_RANGE = (1, 50), (5, 100)


def neighbours_used(algorithm: str, collaborative: str) -> bool:
    """Whether ``k`` matters: user-user alone, or as the hybrid's collaborative part."""
    return algorithm == "user-user" or (algorithm == "hybrid" and collaborative == "user-user")


def rating_label(value) -> str:
    if not value:
        return "liked (counts as 10)"
    return "watched, not rated (-1)" if value == -1 else f"{value} / 10"


# ------------------------------------------------------------------ shareable URL -> state
# Each control starts from the address, then keeps what this session chose last,
# also across runs that stop before the control is drawn (dashboard.state).
notices: list[str] = []
query = st.query_params


def url_value(name: str, kind, low, high, default, what: str):
    raw = query.get(name)
    if raw is None:
        return default
    value = app_state.parse_in_range(raw, kind, low, high)
    if value is None:
        notices.append(f"{what} must be {'a whole number' if kind is int else 'a number'} "
                       f"from {low} to {high}, not “{md_escape(raw)}”.")
        return default
    return value


def url_user() -> int:
    raw = query.get("user")
    first = int(user_ids[0]) if len(user_ids) else 0
    if raw is None:
        return int(state.get("current_user", first))
    user = app_state.parse_user_id(raw)
    if user is None:
        notices.append(f"“{md_escape(raw)}” in the address is not a user id; showing another "
                       "user instead.")
        return int(state.get("current_user", first))
    return user


def url_choice(name: str, allowed: list[str], default: str, what: str) -> str:
    raw = query.get(name)
    if raw is not None and raw not in allowed:
        notices.append(f"Unknown {what} “{md_escape(raw)}” in the address; using "
                       f"{choices.algorithm_label(default)}.")
    return raw if raw in allowed else default


def url_mode() -> str:
    # With no users yet (a new database), only a list of titles can be recommended from.
    return MODES[1] if query.get("mode") == "list" or not len(user_ids) else MODES[0]


def url_weight() -> float:
    weight = url_value("weight", float, 0.0, 1.0, params.hybrid_weight, "The weight")
    return round(round(weight / WEIGHT_STEP) * WEIGHT_STEP, 2)


default_k = min(max(engine.knn.config.n_neighbours, K_RANGE[0]), K_RANGE[1])
keep({
    "rec_mode": url_mode,
    "rec_user": url_user,
    "rec_algorithm": lambda: url_choice("algorithm", algorithms,
                                        choices.default_algorithm(engine), "algorithm"),
    "rec_cf": lambda: url_choice("collab", collaborative_parts,
                                 choices.default_collaborative(engine), "collaborative part"),
    "rec_weight": url_weight,
    "rec_k": lambda: int(url_value("k", int, *K_RANGE, default_k, "k")),
    "rec_n": lambda: int(url_value("n", int, *N_RANGE, 10, "n")),
    "rec_div": lambda: round(float(url_value("div", float, 0.0, 1.0, 0.0, "Variety")), 1),
})
if "my_list" not in state:
    parsed = share.decode_list(query.get("list", ""))
    notices.extend(md_escape(p).capitalize() + "." for p in parsed.problems)
    state.my_list = parsed.items
state.setdefault("created_users", [])
quota = app_state.session_quota()


# ------------------------------------------------------------------ callbacks
def pick_random_user() -> None:
    put("rec_user", app_state.random_user(engine))


def snap_user() -> None:
    """Move a stepped or typed id onto a real user, in the direction it moved.

    User ids have gaps (5,877 users between 16 and 73,516), so a ±1 step would
    land on missing ids most of the time.
    """
    wanted, before = int(state.rec_user), int(state.get("keep:rec_user", state.rec_user))
    if not len(user_ids) or app_state.knows_user(engine, wanted):
        return
    at = int(np.searchsorted(user_ids, wanted))
    if wanted > before:
        chosen = user_ids[min(at, len(user_ids) - 1)]
    elif wanted < before:
        chosen = user_ids[max(at - 1, 0)]
    else:
        chosen = user_ids[min(at, len(user_ids) - 1)]
    put("rec_user", int(chosen))
    state.user_notice = f"There is no user {wanted}; showing user {int(chosen)}, the nearest " \
                        "id in that direction."


def search_titles(term: str) -> list[tuple[str, int]]:
    """Autocomplete options: (label, anime_id), best match first."""
    if not isinstance(term, str) or not term.strip():
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
    if anime_id is None:
        return
    anime_id = int(anime_id)
    if anime_id in state.my_list:
        name = engine.anime_by_id([anime_id])["name"].iloc[0]
        state.list_notice = f"“{name}” is already in your list."
        return
    state.list_notice = None
    state.my_list[anime_id] = None


def remove_anime(anime_id: int) -> None:
    state.my_list.pop(anime_id, None)
    state.pop(f"rate_{anime_id}", None)


def store_rating(anime_id: int) -> None:
    state.my_list[anime_id] = state[f"rate_{anime_id}"] or None


def clear_list() -> None:
    for anime_id in list(state.my_list):
        remove_anime(anime_id)


def open_user(user_id: int) -> None:
    put("rec_mode", MODES[0])
    put("rec_user", int(user_id))


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
app_state.compact_layout()
st.title("Recommend", anchor=False)
for notice in notices:
    st.warning(notice)

mode = st.radio("Recommend for", MODES, key="rec_mode", horizontal=True)
subject: tuple
if mode == MODES[0]:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.number_input("User id", min_value=0, max_value=MAX_ID, step=1, format="%d",
                      key="rec_user", on_change=snap_user,
                      help="Steps move to the next real user id; ids have gaps.")
    right.button("Random user", icon=":material/casino:", on_click=pick_random_user,
                 width="stretch")
    user_id = int(state.rec_user)
    if state.get("user_notice"):
        st.info(state.pop("user_notice"))
    if not app_state.knows_user(engine, user_id):
        if len(user_ids):
            st.error(f"There is no user {user_id}. User ids run from {int(user_ids[0])} to "
                     f"{int(user_ids[-1])} (with gaps); step the id or try the random user "
                     "button.")
        else:
            st.info("There are no users yet: build a list of titles instead, and save it "
                    "as the first user.")
        st.stop()
    state.current_user = user_id
    rated = app_state.user_ratings(version, user_id, engine)
    with st.expander(f"What user {user_id} rated ({len(rated)} anime), best first",
                     expanded=False):
        shown = rated.head(25).assign(
            rating=lambda f: f["rating"].map(lambda r: "watched (-1)" if r == -1 else str(r)),
            url=lambda f: f["anime_id"].map(anime_url))
        st.dataframe(shown[["name", "rating", "type", "genre", "members", "url"]],
                     hide_index=True, width="stretch",
                     column_config={"url": app_state.mal_link_column()})
    subject = ("user", user_id)
else:
    st_searchbox(search_titles, key="anime_search", label="Add an anime you watched",
                 placeholder="Type a title, e.g. stiens gate or attack on titan",
                 clear_on_submit=True, submit_function=add_anime, debounce=200)
    typed = (state.get("anime_search") or {}).get("search")
    term = typed if isinstance(typed, str) else ""
    if len(term) > MAX_QUERY_LENGTH:
        st.warning(f"That search is {len(term):,} characters long; titles are searched by their "
                   f"first {MAX_QUERY_LENGTH}.")
        term = term[:MAX_QUERY_LENGTH]
    try:
        no_match = bool(term.strip()) and engine.search(term, limit=1).empty
    except RecommenderError as exc:
        st.warning(f"That search cannot be run: {md_escape(exc)}")
        no_match = False
    if no_match:
        st.warning(f"No anime matches “{md_escape(term)}”. Check the spelling or try another "
                   "title (English and Japanese titles work too).")
    if state.get("list_notice"):
        st.info(md_escape(state.list_notice))
    if not state.my_list:
        st.warning("Your list is empty. Type a title above and pick it to add it; "
                   "ratings are optional (no rating counts as a 10).")
        st.stop()
    names = engine.anime_by_id(state.my_list).set_index("anime_id")["name"]
    st.caption(f"Your list: {len(state.my_list)} anime · a title with no rating counts as "
               "a 10, −1 means watched but not rated")
    for anime_id in list(state.my_list):
        key = f"rate_{anime_id}"
        if key not in state:
            state[key] = state.my_list[anime_id] or 0
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(f"[{md_escape(names.get(anime_id, f'anime {anime_id}'))}]"
                        f"({anime_url(anime_id)})", width="stretch")
            st.selectbox("Rating", RATING_OPTIONS, key=key, format_func=rating_label,
                         label_visibility="collapsed", on_change=store_rating,
                         args=(anime_id,), width=190)
            st.button("", icon=":material/close:", key=f"remove_{anime_id}", type="tertiary",
                      on_click=remove_anime, args=(anime_id,), help="Remove from the list")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Save as a new user", icon=":material/save:", on_click=save_list,
                  type="primary",
                  help="Adds the list to the database and the index, so it can be opened "
                       "again as a user.")
        st.button("Clear the list", on_click=clear_list)
        st.caption(f"{quota.remaining} of {quota.max_users} saves left in this session")
    message = state.get("save_message")
    if message:
        getattr(st, message[0])(message[1])
        if message[0] == "success":
            st.button(f"Open user {message[2]}", on_click=open_user, args=(message[2],))
    subject = ("list", tuple(state.my_list.items()))

# ------------------------------------------------------------------ controls
# On a phone the controls would push the first card more than a screen down.
with st.expander("Algorithm, weight and list size", expanded=not app_state.is_phone()):
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    # Labels stay the same while models are prepared (a widget's value is matched by its
    # label), so "still preparing" is a caption under the choice.
    algorithm = c1.radio("Algorithm", algorithms, key="rec_algorithm", horizontal=True,
                         format_func=choices.algorithm_label,
                         captions=choices.preparing_captions(engine, algorithms))
    hybrid = algorithm == "hybrid"
    collaborative = state.rec_cf if state.rec_cf in collaborative_parts else \
        choices.default_collaborative(engine)
    if hybrid and len(collaborative_parts) > 1:
        collaborative = c1.selectbox("Collaborative part", collaborative_parts, key="rec_cf",
                                     format_func=choices.algorithm_label)
    weight = c2.slider("Collaborative share (hybrid weight)", 0.0, 1.0, step=WEIGHT_STEP,
                       key="rec_weight", disabled=not hybrid,
                       help="1 = only the collaborative part, 0 = only similar content.")
    variety = c2.slider("Variety", 0.0, 1.0, step=0.1, key="rec_div",
                        help="0 = the plain ranking; higher re-ranks for more varied genres.")
    uses_neighbours = neighbours_used(algorithm, collaborative)
    k = c3.slider("Neighbours (k)", *K_RANGE, step=5, key="rec_k", disabled=not uses_neighbours)
    n = c4.slider("Results (n)", *N_RANGE, key="rec_n")

shared = {"algorithm": algorithm, "n": str(n)}
if hybrid:
    shared.update(weight=f"{weight:.2f}", collab=collaborative)
if uses_neighbours:
    shared["k"] = str(k)
if variety:
    shared["div"] = f"{variety:.1f}"
if subject[0] == "user":
    shared["user"] = str(subject[1])
else:
    shared.update(mode="list", list=share.encode_list(dict(subject[1])))
st.query_params.from_dict(shared)

# ------------------------------------------------------------------ results
# A choice still being fitted is served by the ready models meanwhile (the address
# keeps the choice, so the page shows it once it is ready).
algorithm, collaborative = app_state.ready_choice(engine, algorithm, collaborative)
hybrid = algorithm == "hybrid"
uses_neighbours = neighbours_used(algorithm, collaborative)
request = {"algorithm": algorithm, "weight": weight, "n": n, "collaborative": collaborative,
           "diversity": variety}
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

who = f"user {subject[1]}" if subject[0] == "user" else None
method = choices.algorithm_label(algorithm)
if hybrid:
    method += f" ({choices.algorithm_label(collaborative)} + content, weight {weight:.2f})"
st.subheader(f"Top {len(recs)} for {who or 'your list'} · {method}")
if recs.attrs.get("fallback"):
    st.info(f"{choices.algorithm_label(algorithm)} found no evidence for this profile, so the "
            f"list comes from {choices.algorithm_label(recs.attrs['method'])} instead.")
if recs.attrs.get("unknown_ids"):
    st.warning(f"Left out anime not in the catalogue: {recs.attrs['unknown_ids']}")

# What the last weight change did, measured from the list shown before it (where a
# drag started), and kept on screen until something else changes.
context = (subject, algorithm, n, k if uses_neighbours else None, collaborative, variety)
ids = recs["anime_id"].astype(int).tolist()
current = {"context": context, "weight": weight, "ids": ids,
           "names": dict(zip(ids, recs["name"]))}
previous = state.get("rec_last")
changes = state.get("rec_changes")
if previous is None or previous["context"] != context:
    changes = None
elif previous["weight"] != weight:
    entered, left_ids = summaries.top_n_changes(previous["ids"], ids)
    changes = {"from": previous["weight"], "to": weight, "entered": entered,
               "left": left_ids, "names": {**previous["names"], **current["names"]}}
elif changes and changes["to"] != weight:
    changes = None
state.rec_last, state.rec_changes = current, changes
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

recs = recs.assign(url=recs["anime_id"].map(anime_url))
best = float(recs["score"].max()) if len(recs) else 0.0
tab_cards, tab_table = st.tabs(["Cards", "Table"])
with tab_cards:
    # One card per franchise: its later rows are named under the first (the Table has them all).
    folded = engine.group_franchises(recs)
    per_row = 5
    for start in range(0, len(folded), per_row):
        columns = st.columns(per_row)
        for column, row in zip(columns, folded.iloc[start:start + per_row].itertuples()):
            with column.container(border=True):
                cards.draw_card(row, who=who, best=best,
                                weight=weight if hybrid else None,
                                collaborative=choices.algorithm_label(collaborative))
                cards.draw_folded(row)
with tab_table:
    columns = ["rank", "anime_id", "name", "type", "episodes", "genre", "community_rating",
               "members", "score", "source", "reason", "url"]
    table = recs.assign(reason=[cards.reason_for(r, who) for r in recs["reason"]])
    st.dataframe(table[columns], hide_index=True, width="stretch",
                 column_config={
                     "score": st.column_config.NumberColumn("our score", format="%.3f",
                                                            help="Comparable within this list"),
                     "community_rating": st.column_config.NumberColumn("community score",
                                                                       format="%.2f"),
                     "members": st.column_config.NumberColumn(format="%d"),
                     "reason": st.column_config.TextColumn("why", width="large"),
                     "url": app_state.mal_link_column(),
                 })
