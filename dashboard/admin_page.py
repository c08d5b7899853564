"""Admin page: maintenance actions behind the admin key (``SECRET_KEY``).

Listed in the navigation only when ``SECRET_KEY`` is set; opened directly
without it, the page says so and stops. The key is checked in constant time
(``recommender.serving.admin.check_admin_key``) and again by every action.
"""

import streamlit as st

import app_state
from recommender.errors import RecommenderError
from recommender.serving import admin

settings = app_state.current_settings()
st.title("Admin")
if not admin.admin_enabled(settings):
    st.info("Admin actions are disabled: set SECRET_KEY (in the environment or .env) to "
            "enable them.", icon=":material/lock:")
    st.stop()

engine = app_state.engine_or_stop()

ACTIONS = {
    "rebuild": ("Rebuild the index",
                "Refits every model from the database and saves the index cache again. "
                "Nothing is deleted; queries keep working on the current engine meanwhile."),
    "reingest": ("Re-ingest the bundled data",
                 "Loads the bundled CSV files again; rows already in the database are skipped."),
    "delete": ("Delete app-created users",
               "Deletes every user saved from the dashboard, with their ratings. "
               "This cannot be undone."),
}

key = st.text_input("Admin key", type="password", key="admin_key",
                    help="The value of SECRET_KEY. It is never shown or logged.")
if not key:
    st.caption("Enter the admin key to see the maintenance actions.")
    st.stop()
if not admin.check_admin_key(settings, key):
    st.error("Wrong admin key: nothing was changed.", icon=":material/block:")
    st.stop()

action = st.radio("Action", list(ACTIONS), format_func=lambda a: ACTIONS[a][0],
                  key="admin_action")
st.caption(ACTIONS[action][1])
confirm_key = f"admin_confirm_{action}"


def request(chosen: str) -> None:
    # Runs before the next script run, so the confirmation can be cleared while its
    # checkbox is not drawn yet: each run of an action is confirmed again.
    st.session_state.admin_request = chosen
    st.session_state[f"admin_confirm_{chosen}"] = False


confirmed = st.checkbox(f"Yes, {ACTIONS[action][0].lower()}", key=confirm_key)
st.button("Run", type="primary", disabled=not confirmed, key="admin_run", on_click=request,
          args=(action,))

requested = st.session_state.pop("admin_request", None)
if requested:
    action = requested
    # The actions check the key and build the new engine from the settings of now,
    # so SECRET_KEY can change without a restart.
    bar = app_state.progress_bar()
    try:
        if action == "rebuild":
            new_engine = admin.rebuild_index(settings, key, bar)
            message = f"Index rebuilt: {len(new_engine.user_ids()):,} users."
        elif action == "reingest":
            report, new_engine = admin.reingest_bundled(settings, key, bar, current=engine)
            message = (f"Bundled data ingested again: {report.anime_added:,} anime, "
                       f"{report.users_added:,} users and {report.ratings_added:,} ratings "
                       "added.")
        else:
            deleted, new_engine = admin.delete_app_users(engine, settings, key, bar)
            message = f"Deleted {deleted:,} app-created users."
    except RecommenderError as exc:  # a wrong key, an unreachable database, ...
        st.error(f"The action failed, nothing was changed: {app_state.md_escape(exc)}",
                 icon=":material/error:")
        st.stop()
    finally:
        bar.done()
    if new_engine is not None and new_engine is not engine:
        app_state.replace_engine(new_engine)
    st.success(message, icon=":material/check_circle:")
