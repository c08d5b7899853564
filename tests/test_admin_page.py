"""The Admin page and the per-session user quota of the Recommend page, under AppTest.

A tiny database (two taste groups) keeps these quick; the engine cached by
``app_state`` for it is shared by every test here, as it is by browser sessions.
"""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, TINY_ENV, fill_tiny_database
from recommender.data.database import count_rows, create_db_engine, load_users
from recommender.serving.limits import MAX_USERS_PER_SESSION

TIMEOUT = 120
KEY = "correct horse battery staple"


@pytest.fixture(scope="module", autouse=True)
def tiny_dashboard(tmp_path_factory):
    """Point the dashboard at a fresh tiny SQLite database and a temp index cache."""
    tmp = tmp_path_factory.mktemp("admin")
    url = f"sqlite:///{tmp / 'tiny.db'}"
    fill_tiny_database(url, tmp)
    env = {"DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp / "cache"), **TINY_ENV}
    saved = {k: os.environ.get(k) for k in [*env, "SECRET_KEY"]}
    os.environ.update(env)
    yield url
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", KEY)


@pytest.fixture
def without_key(monkeypatch):
    # An empty value counts as unset, and wins over any .env file.
    monkeypatch.setenv("SECRET_KEY", "")


def shared_engine():
    import app_state

    return app_state.get_engine()


def admin_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "dashboard" / "admin_page.py"),
                             default_timeout=TIMEOUT).run()


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def run_action(at: AppTest, action: str) -> AppTest:
    at.radio(key="admin_action").set_value(action).run()
    assert at.button(key="admin_run").disabled  # nothing runs before the confirmation
    at.checkbox(key=f"admin_confirm_{action}").check().run()
    at.button(key="admin_run").click().run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------------- admin page
def test_admin_page_is_not_listed_and_is_disabled_without_secret_key(without_key):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not app.exception, app.exception
    with pytest.raises(ValueError, match="Could not find a navigation page") as missing:
        app.switch_page("dashboard/admin_page.py")
    assert "recommend.py" in str(missing.value)  # the other pages are registered
    assert not app.text_input  # no key is asked for anywhere

    at = admin_page()
    assert not at.exception
    assert any("admin actions are disabled" in t.lower() for t in texts(at.info))
    assert not at.text_input and not at.button


def test_admin_page_is_listed_with_secret_key(with_key):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    app.switch_page("dashboard/admin_page.py").run()
    assert not app.exception, app.exception
    assert "Admin" in texts(app.title)
    key_input = app.text_input(key="admin_key").proto
    assert key_input.type == key_input.PASSWORD  # typed characters are hidden


def test_a_wrong_key_is_refused_and_changes_nothing(with_key, tiny_dashboard):
    engine = shared_engine()
    database = create_db_engine(tiny_dashboard)
    before = count_rows(database)
    at = admin_page()
    assert not at.radio and not at.button  # no action before the key
    at.text_input(key="admin_key").input("correct horse").run()
    assert not at.exception
    assert any("Wrong admin key" in e for e in texts(at.error))
    assert not at.radio and not at.button
    assert shared_engine() is engine and count_rows(database) == before
    database.dispose()


def test_the_right_key_rebuilds_the_index_and_swaps_the_shared_engine(with_key):
    engine = shared_engine()
    at = admin_page()
    at.text_input(key="admin_key").input(KEY).run()
    assert not at.error
    run_action(at, "rebuild")
    assert any("Index rebuilt" in s for s in texts(at.success))
    fresh = shared_engine()
    assert fresh is not engine and fresh.build_info["index"] == "built"
    assert fresh.user_ids().tolist() == engine.user_ids().tolist()
    assert not at.checkbox(key="admin_confirm_rebuild").value  # the next run asks again
    assert at.button(key="admin_run").disabled


def test_deleting_app_users_reaches_every_session(with_key, tiny_dashboard):
    added = shared_engine().add_user({1: 10, 2: 9, 12: 2})
    at = admin_page()
    at.text_input(key="admin_key").input(KEY).run()
    run_action(at, "delete")
    assert any("Deleted 1 app-created users" in s for s in texts(at.success))
    assert not shared_engine().has_user(added)  # what other sessions get from now on
    database = create_db_engine(tiny_dashboard)
    assert "app" not in set(load_users(database)["source"])
    database.dispose()


# ---------------------------------------------------------------------- session quota
def recommend_page_with_a_list() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "recommend.py"), default_timeout=TIMEOUT)
    at.query_params["mode"] = "list"
    at.session_state["my_list"] = {1: 10, 3: 9, 14: 2}
    return at.run()


def save(at: AppTest) -> AppTest:
    next(b for b in at.button if "Save as a new user" in b.label).click().run()
    assert not at.exception, at.exception
    return at


def test_one_session_saves_at_most_its_quota_and_a_new_session_has_its_own(tiny_dashboard):
    database = create_db_engine(tiny_dashboard)
    users_before = count_rows(database)["users"]
    at = recommend_page_with_a_list()
    for i in range(MAX_USERS_PER_SESSION):
        save(at)
        assert any(s.startswith("Saved as user") for s in texts(at.success)), i
    save(at)
    assert any("most one session may create" in w for w in texts(at.warning))
    assert not any(s.startswith("Saved as user") for s in texts(at.success))
    assert count_rows(database)["users"] == users_before + MAX_USERS_PER_SESSION

    other = save(recommend_page_with_a_list())  # another browser: a quota of its own
    assert any(s.startswith("Saved as user") for s in texts(other.success))
    assert count_rows(database)["users"] == users_before + MAX_USERS_PER_SESSION + 1
    database.dispose()


def test_a_failed_save_is_reported_and_costs_no_quota(tiny_dashboard, monkeypatch):
    from recommender.errors import DatabaseError

    at = recommend_page_with_a_list()
    engine = shared_engine()

    def unreachable(*args, **kwargs):
        raise DatabaseError("the database at DATABASE_URL cannot be reached")

    monkeypatch.setattr(engine, "add_user", unreachable)
    save(at)
    assert any(e.startswith("Could not save: the database") for e in texts(at.error))
    assert at.session_state["user_quota"].used == 0


# ---------------------------------------------------------------------- navigation
@pytest.mark.parametrize("secret", [None, "", "   ", "\n\t", KEY])
def test_the_admin_page_is_listed_exactly_when_a_key_is_set(monkeypatch, secret):
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
        monkeypatch.setattr("dotenv.load_dotenv", lambda *a, **k: False)  # no .env either
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not app.exception, app.exception
    listed = bool(secret and secret.strip())
    # The menu a visitor sees: every page but Admin, and Admin only with a key.
    menu = [link.proto.label for link in app.get("page_link")]
    assert {"Home", "Recommend", "Neighbours", "Performance", "Tune"} <= set(menu), menu
    assert ("Admin" in menu) == listed
    if listed:
        app.switch_page("dashboard/admin_page.py").run()
        assert "Admin" in texts(app.title)
    else:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page("dashboard/admin_page.py")


def test_streamlit_never_lists_files_a_session_may_not_open():
    import tomllib

    # Streamlit lists the pages/ folder by file name on a process's first run; the
    # admin page is not in it, and that listing is switched off in any case.
    assert not any("admin" in p.name for p in (ROOT / "pages").glob("*.py"))
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showSidebarNavigation"] is False


def test_a_visitor_arriving_during_the_first_start_sees_its_progress(monkeypatch):
    import threading

    import app_state

    key = app_state.settings_key(app_state.current_settings())
    app_state.STARTUP.begin(key)
    app_state.STARTUP.report(key, "models", 0.7)
    ended = threading.Timer(3.0, app_state.STARTUP.end, args=(key,))
    ended.start()  # the "other visitor's" build finishes; the waiting page then fills in
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=TIMEOUT)
        at.run()
    finally:
        ended.cancel()
        app_state.STARTUP.end(key)
    assert not at.exception, at.exception
    assert any("Users" == m.label for m in at.metric)  # the real page, after the wait
