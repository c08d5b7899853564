"""The dashboard's shared state: one engine per settings, cached views, and page helpers.

``_load_engine`` is the one ``st.cache_resource`` loader of the engine. Its key is
the database URL plus the engine parameters, so changing either builds a new
engine instead of serving a stale one; Streamlit's per-key lock means several
browsers connecting at once still build it once. The CSR matrix and the hnswlib
index are exposed through their own cached accessors; data frames for charts go
through ``st.cache_data``.
"""

from __future__ import annotations

import html
import json
import logging
import random
import threading
import time

import pandas as pd
import streamlit as st

from dashboard import summaries
from dashboard.choices import algorithm_label
from recommender import RecommenderEngine
from recommender.config import Settings, load_environ, load_settings, redact_url
from recommender.core.params import parse_value
from recommender.core.validate import MAX_ID, parse_id
from recommender.errors import DatabaseError, RecommenderError
from recommender.models import registry
from recommender.serving.limits import MAX_USERS_PER_SESSION, SessionQuota

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- settings
def current_settings() -> Settings:
    """Settings from the environment and ``.env`` (read on every run: cheap, always fresh)."""
    return load_settings()


def settings_key(settings) -> str:
    """The cache key of a settings object: database URL and every engine parameter."""
    return json.dumps({"database_url": str(settings.database_url),
                       "cache_dir": str(getattr(settings, "cache_dir", "")),
                       "params": settings.params.as_dict()}, sort_keys=True, default=str)


def redacted_url(url: str) -> str:
    """A database URL without its password, safe to show (even when it does not parse)."""
    return redact_url(url)


# ---------------------------------------------------------------------- the engine
class _StartupStatus:
    """What the engine build of each settings key is doing now, shared by every session.

    The first visitor's script run builds the engine inside the cached loader;
    a visitor arriving meanwhile must not block on the loader's lock in front
    of a blank page, so it reads the stage from here, shows it, and polls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, tuple[str, float]] = {}

    def begin(self, key: str) -> None:
        with self._lock:
            self._stages[key] = ("starting", 0.0)

    def report(self, key: str, stage: str, fraction: float) -> None:
        with self._lock:
            if key in self._stages:
                self._stages[key] = (stage, fraction)

    def end(self, key: str) -> None:
        with self._lock:
            self._stages.pop(key, None)

    def get(self, key: str) -> tuple[str, float] | None:
        with self._lock:
            return self._stages.get(key)


STARTUP = _StartupStatus()


class EngineStarting(Exception):
    """Raised to a session that arrives while another session is building the engine."""

    def __init__(self, stage: str, fraction: float):
        super().__init__(stage)
        self.stage, self.fraction = stage, fraction


class _Progress:
    """Start-up progress bar, drawn by the building thread only.

    Created inside the cached loader, so a cache hit replays it as the empty
    placeholder it ends as, not as a stale bar. Every report is also recorded
    in :data:`STARTUP` for the other sessions; calls from other threads (a
    loader may report from workers) are recorded but not drawn: Streamlit
    elements belong to the script thread.
    """

    def __init__(self, key: str) -> None:
        self._key = key
        self._slot = st.empty()
        self._thread = threading.get_ident()
        self._last: tuple[str, float] | None = None

    def __call__(self, stage: str, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        STARTUP.report(self._key, stage, fraction)
        if threading.get_ident() != self._thread:
            return
        last = self._last
        if last is not None and last[0] == stage and fraction - last[1] < 0.02:
            return
        self._last = (stage, fraction)
        self._slot.progress(fraction, text=f"Preparing the recommender: {stage}…")

    def done(self) -> None:
        self._slot.empty()


def background_fit() -> bool:
    """Fit the learned models after the first page is served (``ANIREC_BACKGROUND_FIT``).

    On (the default), a first start serves user-user, content and search as soon
    as they are ready, and the learned models' choices say "still preparing"
    until a background thread has fitted them. Off, the first page waits for all.
    """
    raw = load_environ().get("ANIREC_BACKGROUND_FIT") or "1"
    return parse_value(raw, bool, "ANIREC_BACKGROUND_FIT")


def _build_engine(settings: Settings, progress) -> RecommenderEngine:
    return RecommenderEngine.from_settings(settings, progress=progress,
                                           background=background_fit())


class _EngineSlot:
    """The cached value of ``_load_engine``: a box holding the engine of one settings key.

    Admin actions (``recommender.serving.admin``) return a NEW engine that must replace the
    shared one for every session. Caching a mutable box instead of the engine
    makes that a single attribute assignment (atomic in CPython): sessions that
    already hold the old engine finish their run with it, the next ``get_engine``
    call anywhere sees the new one, and there is no window where the cache is
    empty and a visitor would rebuild the engine (``cache_resource.clear()`` and
    re-seeding would have that window and would drop every other settings key).
    """

    def __init__(self, engine: RecommenderEngine) -> None:
        self.engine = engine


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_engine(key: str, _settings) -> _EngineSlot:
    """Build or load the engine for one settings key (the one cached engine loader)."""
    STARTUP.begin(key)
    progress = _Progress(key)
    try:
        return _EngineSlot(_build_engine(_settings, progress))
    finally:
        STARTUP.end(key)
        progress.done()


#: Seconds between look-ups of users that other processes (replicas) added.
CATCH_UP_SECONDS = 10.0


def get_engine() -> RecommenderEngine:
    """The shared engine for the current settings; raises :class:`RecommenderError`.

    Users another dashboard process saved in the shared database are appended
    at most ``CATCH_UP_SECONDS`` after they were added, without a rebuild.
    """
    settings = current_settings()
    key = settings_key(settings)
    building = STARTUP.get(key)
    if building is not None:  # another session is preparing it: do not wait blind on it
        raise EngineStarting(*building)
    engine = _load_engine(key, settings).engine
    try:
        engine.catch_up(min_interval=CATCH_UP_SECONDS)
    except DatabaseError as exc:
        # Serving what is in memory beats failing the page; a save would report it.
        _log.warning("cannot look for new users: %s", exc)
    return engine


def knows_user(engine: RecommenderEngine, user_id: object) -> bool:
    """Whether ``user_id`` is a user, looking in the database for an id another process
    may just have saved (above every id in memory), so a link to it works at once."""
    try:
        return engine.look_for_user(user_id)
    except DatabaseError as exc:
        _log.warning("cannot look for new users: %s", exc)
        return engine.has_user(user_id)


def replace_engine(engine: RecommenderEngine) -> None:
    """Make ``engine`` the shared engine for the current settings (after an admin action).

    The views cached from the old engine (matrix, index, frames) are dropped too:
    their keys do not always change with the data (a rebuilt index has as many users).
    """
    settings = current_settings()
    _load_engine(settings_key(settings), settings).engine = engine
    for cached in (_matrix, _index, dataset_summary, rating_distribution, genre_counts,
                   user_ratings):
        cached.clear()


def session_quota() -> SessionQuota:
    """This browser session's quota of new users: one per session, kept in its state."""
    return st.session_state.setdefault("user_quota", SessionQuota(MAX_USERS_PER_SESSION))


def progress_bar() -> _Progress:
    """A progress bar taking ``(stage, fraction)`` calls, as the engine builders report."""
    return _Progress(f"admin-{id(threading.current_thread())}")


def engine_or_stop() -> RecommenderEngine:
    """The engine, or a friendly error and a stopped page when it cannot be prepared."""
    try:
        return get_engine()
    except EngineStarting as starting:
        st.progress(starting.fraction, text="Preparing the recommender for the first visitor "
                                            f"of this server: {starting.stage}…")
        st.caption("This page fills in by itself when it is ready.")
        time.sleep(1.0)
        st.rerun()
    except DatabaseError as exc:
        st.error("The database cannot be reached, so the recommender cannot start. "
                 f"{md_escape(exc)}",
                 icon=":material/error:")
        st.caption("Check DATABASE_URL (in the environment or .env) and that the server is up; "
                   "then reload the page.")
    except RecommenderError as exc:
        st.error(f"The recommender could not start: {md_escape(exc)}", icon=":material/error:")
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises; this keeps type checkers calm


def engine_version(engine: RecommenderEngine) -> str:
    """Changes whenever the data changes (settings or a user added): a cache_data key."""
    return f"{settings_key(current_settings())}|users={len(engine.user_ids())}"


@st.cache_resource(show_spinner=False, max_entries=8)
def _matrix(version: str, _engine: RecommenderEngine):
    return _engine.data.ratings


def get_matrix():
    """The engine's users x anime CSR rating matrix (float32; -1 = watched, not rated)."""
    engine = get_engine()
    return _matrix(engine_version(engine), engine)


@st.cache_resource(show_spinner=False, max_entries=4)
def _index(key: str, _engine: RecommenderEngine):
    # The index object grows in place when users are added, so the settings key suffices.
    return _engine.knn.index_


def get_index():
    """The engine's hnswlib user index (:class:`recommender.models.ann_index.AnnIndex`)."""
    engine = get_engine()
    return _index(settings_key(current_settings()), engine)


# ---------------------------------------------------------------------- cached frames
@st.cache_data(show_spinner=False, max_entries=8)
def dataset_summary(version: str, _engine: RecommenderEngine) -> dict:
    return summaries.dataset_summary(_engine)


@st.cache_data(show_spinner=False, max_entries=8)
def rating_distribution(version: str, _engine: RecommenderEngine) -> pd.DataFrame:
    return summaries.rating_distribution(_engine)


@st.cache_data(show_spinner=False, max_entries=8)
def genre_counts(version: str, _engine: RecommenderEngine) -> pd.DataFrame:
    return summaries.genre_counts(_engine)


@st.cache_data(show_spinner=False, max_entries=64)
def user_ratings(version: str, user_id: int, _engine: RecommenderEngine) -> pd.DataFrame:
    return _engine.user_ratings(user_id)


# ---------------------------------------------------------------------- page helpers
def ready_choice(engine: RecommenderEngine, algorithm: str,
                 collaborative: str) -> tuple[str, str]:
    """The algorithm and collaborative part to serve now for the visitor's choice.

    A choice still being fitted in the background is served by the engine's ready
    default meanwhile, under a notice naming what is being prepared; the sidebar's
    progress (:func:`sidebar_status`) reruns the page once it is ready, so the
    visitor never has to reload.
    """
    waiting = engine.preparing  # read once: the background fit may publish meanwhile
    wanted = [algorithm, collaborative] if algorithm == registry.HYBRID else [algorithm]
    named = [algorithm_label(n) for n in wanted if n in waiting]
    if named:
        stage, fraction = engine.background.progress
        st.info(f"{md_escape(', '.join(named))} {'is' if len(named) == 1 else 'are'} still "
                f"being prepared ({md_escape(stage)}, {fraction:.0%} of the learned models "
                "done): the list below comes from the models that are ready, and this page "
                "updates by itself when the rest are.", icon=":material/hourglass_top:")
    if algorithm in waiting:
        algorithm = engine.default_algorithm
    if collaborative in waiting:
        collaborative = engine.default_collaborative
    return algorithm, collaborative


@st.fragment(run_every=2.0)
def _background_progress() -> None:
    """The background fit's progress, redrawn every two seconds; the page reruns when done.

    Only drawn while something is being fitted, so nothing polls afterwards.
    """
    engine = get_engine()
    if not engine.preparing:
        st.rerun(scope="app")
    stage, fraction = engine.background.progress
    st.progress(fraction, text=f"Still preparing "
                f"{', '.join(algorithm_label(n) for n in engine.preparing)}: {stage}…")


def random_user(engine: RecommenderEngine) -> int:
    """A random known user id (0, which no user has, when there are none yet)."""
    ids = engine.user_ids()
    return int(ids[random.randrange(len(ids))]) if len(ids) else 0


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:")


def md_escape(text: object) -> str:
    """``text`` with every Markdown (and HTML-looking) character escaped: shown literally."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in str(text))


def parse_user_id(raw: object) -> int | None:
    """A user id from text (query parameter or input); None unless it is one.

    The package's one id check (ASCII digits, no signs or underscores, no
    floats), and within the range ids can have, so a widget never receives a
    number it cannot hold.
    """
    value = parse_id(raw)
    return value if value is not None and value <= MAX_ID else None


def parse_in_range(raw: object, kind, low, high):
    """``kind(raw)`` (``int``, ``float``) if it converts and lies in [low, high], else None."""
    if kind is int:
        value = parse_id(raw)
        return value if value is not None and low <= value <= high else None
    try:
        value = kind(str(raw).strip())
    except (TypeError, ValueError, OverflowError):
        return None
    return value if low <= value <= high else None  # NaN fails both comparisons


def plot_text(text: object) -> str:
    """``text`` for a Plotly label or hover: HTML-escaped, since Plotly renders tags.

    An anime called ``<a href=...>`` would otherwise become a link inside a chart.
    """
    return html.escape(str(text), quote=False)


def sidebar_status(engine: RecommenderEngine) -> None:
    """The engine's status in the sidebar: data sizes, index state, database."""
    info = getattr(engine, "build_info", {}) or {}
    summary = dataset_summary(engine_version(engine), engine)
    with st.sidebar:
        st.caption("Engine status")
        index_state = info.get("index", "built")
        seconds = info.get("total_seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
        st.markdown(f":material/check_circle: Ready: index **{md_escape(index_state)}**"
                    f"{md_escape(took)}")
        st.markdown(f"{summary['users']:,} users · {summary['anime']:,} anime · "
                    f"{summary['ratings']:,} ratings")
        if engine.preparing:
            _background_progress()
        elif engine.background is not None and engine.background.problem:
            st.warning("The learned models could not be prepared, so they are not offered: "
                       f"{md_escape(engine.background.problem)}", icon=":material/warning:")
        url = info.get("database") or redacted_url(str(current_settings().database_url))
        st.caption(f"Database: {md_escape(url)}")
        if info.get("notice"):
            st.info(md_escape(info["notice"]).capitalize() + ".", icon=":material/info:")



def nav_link(page: str, label: str, icon: str | None = None,
             query_params: dict | None = None, primary: bool = False) -> None:
    """A link to another page; plain text when the page runs on its own (no navigation).

    ``primary`` draws it as the page's main button (a call to action).
    """
    from streamlit.errors import StreamlitPageNotFoundError

    try:
        if primary:
            if st.button(label, icon=icon, type="primary"):
                st.switch_page(page, query_params=query_params)
            return
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except StreamlitPageNotFoundError:
        # Run as a single script (``streamlit run pages/x.py`` or a page test): no other pages.
        st.caption(f"{icon or ''} {md_escape(label)} (a page of the full dashboard)")


# ---------------------------------------------------------------------- layout
def is_phone() -> bool:
    """True for a phone's browser (its user agent says "Mobi"), where space is short."""
    try:
        agent = st.context.headers.get("User-Agent", "") or ""
    except Exception:  # no browser behind this run (AppTest)
        return False
    return "Mobi" in agent


def mal_link_column():
    """A table column of MyAnimeList addresses, shown as a short link."""
    return st.column_config.LinkColumn("MyAnimeList", display_text="open",
                                       help="The title's page on MyAnimeList")


#: Narrow-screen rules: titles that do not break mid-word, and no chart toolbar over
#: the chart titles (a built list's rows stay one line through horizontal containers).
_PHONE_CSS = """<style>
@media (max-width: 640px) {
  h1 { font-size: 1.8rem !important; word-break: normal; overflow-wrap: normal; }
  .stPlotlyChart .modebar { display: none !important; }
}
</style>"""


def compact_layout() -> None:
    """Apply the narrow-screen rules to this page (a style element takes no space)."""
    st.html(_PHONE_CSS)
