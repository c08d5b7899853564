"""End to end in a real browser: `streamlit run app.py` driven by headless Chromium.

Uses Debian's ``/usr/bin/chromium`` through Playwright (browser downloads are not
possible here). Under ``CI=true`` a missing browser is a failure, never a skip.
Screenshots of every page go to ``artifacts/`` (git-ignored). The test prints
start-up and interaction timings; they are figures, not asserts.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.realdata]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
START_TIMEOUT_S = 900  # the first start builds the engine (and the database)
STEP_TIMEOUT_MS = 120_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


NO_STALE = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
PHONE_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
               "Gecko) Chrome/156.0 Mobile Safari/537.36")
DOCS = ROOT / "docs"


class Outside:
    """Every request a page makes to anywhere but the test server, refused and recorded.

    A demo must work offline: fonts, icons, favicons and scripts all come from
    the dashboard itself.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []

    def watch(self, context) -> None:
        def route(route):
            url = route.request.url
            host = url.split("/")[2] if "://" in url else ""
            if url.startswith(("data:", "blob:")) or host.split(":")[0] == "127.0.0.1":
                route.continue_()
            else:
                self.requests.append(url)
                route.abort()
        context.route("**/*", route)


OUTSIDE = Outside()


def new_page(browser, viewport=DESKTOP, phone: bool = False):
    """A page in a fresh browser context, its requests outside the server refused."""
    options = {"viewport": viewport}
    if phone:
        options.update(is_mobile=True, has_touch=True, user_agent=PHONE_AGENT,
                       device_scale_factor=2)
    context = browser.new_context(**options)
    OUTSIDE.watch(context)
    return context.new_page()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on a free port, with its own database and cache folder."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> Server:
        env = dict(os.environ)
        env.update({"DATABASE_URL": f"sqlite:///{self.tmp / 'anime.db'}",
                    "ANIREC_TUNE_USERS": "150",  # a smaller Tune sample keeps the run short
                    "ANIREC_CACHE_DIR": str(self.tmp / "cache"), "PYTHONUNBUFFERED": "1"})
        self.log = open(self.tmp / f"streamlit-{self.port}.log", "w")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
             str(self.port), "--server.headless", "true", "--server.address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early: {self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not answer on {self.url}: {self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        return (self.tmp / f"streamlit-{self.port}.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def wait_text(page, text: str, timeout: int = STEP_TIMEOUT_MS):
    page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout)


def wait_idle(page, timeout: int = STEP_TIMEOUT_MS):
    """Until Streamlit has finished the current run (its status widget goes away)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout)


def first_render(browser, url: str, started: float,
                 progress_shot: str | None = None) -> tuple[float, object]:
    page = new_page(browser)
    page.goto(url)
    if progress_shot:
        # While the engine is prepared the page shows a progress bar, not a blank page.
        wait_text(page, "Preparing the recommender")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{progress_shot}.png"))
    wait_text(page, "The data at a glance", timeout=START_TIMEOUT_S * 1000)
    return time.perf_counter() - started, page


def shot(page, name: str, viewport=DESKTOP) -> None:
    """A PNG of the whole page in artifacts/.

    Streamlit scrolls inside its own main block, so a full-page screenshot is only
    the viewport: the viewport is grown to the content's height first.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    wait_idle(page)
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": viewport["width"],
                            "height": min(int(height) + 150, 6000)})
    wait_idle(page)
    # Charts are lazy-loaded: a skeleton stands in until Plotly's code has arrived.
    page.wait_for_function("() => !document.querySelector('[data-testid*=\"Skeleton\"]')",
                           timeout=STEP_TIMEOUT_MS)
    # Every chart on the page as it is now: a rerun meanwhile (a page refreshes itself
    # when the background fit publishes a model) may redraw them or change how many.
    page.wait_for_function("""() => [...document.querySelectorAll(
        '[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'))""",
                           timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(1000)  # Plotly animates its first draw
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(viewport)


def pick_from_autocomplete(page, typed: str, expected: str) -> None:
    # After a pick the component is remounted under a new key; the old iframe
    # lingers at zero height until the rerun ends, so take the visible one.
    wait_idle(page)
    box = page.locator('iframe[title="streamlit_searchbox.searchbox"]:visible').content_frame
    field = box.locator("input")
    field.click()
    field.press_sequentially(typed, delay=60)
    option = box.locator('[class*="option"]').filter(has_text=expected).first
    option.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    option.click()


def test_dashboard_end_to_end(browser, tmp_path):
    figures: dict[str, float] = {}
    server = Server(tmp_path).start()
    page = None
    try:
        figures["cold start to first page (s)"], page = first_render(
            browser, server.url, server.started_at, progress_shot="startup")
        # The first page comes before the learned models (about a minute of fitting on the
        # bundled data): the sidebar shows their progress, and Recommend labels them.
        wait_text(page, "Still preparing")
        shot(page, "home")
        # The sidebar menu lists every page a visitor may open, and not Admin.
        menu = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]')
        # Each entry is its icon (a ligature such as "home") and its name, on two lines.
        names = [menu.nth(i).inner_text().strip().splitlines()[-1].strip()
                 for i in range(menu.count())]
        assert {"Home", "Recommend", "Neighbours", "Performance", "Tune"} <= set(names), names
        assert "Admin" not in names

        # A new browser session on the running server: the engine is already cached.
        start = time.perf_counter()
        figures["new session, warm server (s)"], warm = first_render(browser, server.url, start)
        warm.goto(f"{server.url}/recommend?user=46")
        wait_text(warm, "Top 10 for user 46")
        preparing = warm.get_by_text("still preparing", exact=True)
        if preparing.count():  # the learned models may be ready by now on a fast machine
            wait_text(warm, "is still being prepared")
            shot(warm, "recommend_preparing")
        warm.context.close()
        # The first page reruns by itself once the background fit has published every
        # model: the sidebar's progress goes away with no reload.
        page.get_by_text("Still preparing").first.wait_for(state="detached",
                                                          timeout=START_TIMEOUT_S * 1000)
        figures["cold start to every model ready (s)"] = time.perf_counter() - server.started_at
        wait_text(page, "The data at a glance")

        # Build a list by typing misspelled titles into the autocomplete.
        page.goto(f"{server.url}/recommend?mode=list&algorithm=hybrid")
        wait_text(page, "Your list is empty")
        pick_from_autocomplete(page, "stiens gate", "Steins;Gate")
        wait_text(page, "Your list: 1 anime")
        pick_from_autocomplete(page, "attack on titan", "Shingeki no Kyojin")
        wait_text(page, "Your list: 2 anime")
        pick_from_autocomplete(page, "steins gate", "Steins;Gate")  # picked twice: said so
        wait_text(page, "is already in your list")
        wait_text(page, "Your list: 2 anime")
        wait_text(page, "Top 10 for your list")
        # Cards fold a franchise into one, so there may be fewer than 10 cards.
        page.get_by_text("Why:").first.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)

        # Move the weight slider: the page says which titles entered and left.
        widget = page.locator('[data-testid="stSlider"]').filter(has_text="Collaborative share")
        slider = widget.get_by_role("slider")
        before = float(widget.locator('[data-testid="stSliderThumbValue"]').inner_text())
        slider.focus()
        start = time.perf_counter()
        for _ in range(4):
            slider.press("ArrowRight")
        after = round(min(before + 0.2, 1.0), 2)
        wait_text(page, f"→ {after:.2f}")
        page.wait_for_function(NO_STALE, timeout=STEP_TIMEOUT_MS)
        figures["weight moved -> cards shown (s)"] = time.perf_counter() - start
        wait_text(page, f"weight {after:.2f}")
        assert f"weight={after:.2f}" in page.url
        shot(page, "recommend_list")

        # Save the list as a user.
        page.get_by_role("button", name=re.compile("Save as a new user")).click()
        wait_text(page, "Saved as user")
        new_id = int(re.search(r"Saved as user (\d+)",
                               page.get_by_text("Saved as user").first.inner_text()).group(1))
        # The save reruns the page; a click on a button that the rerun is about to
        # replace can be lost, so wait for the run to finish first.
        wait_idle(page)
        page.get_by_role("button", name=f"Open user {new_id}").click()
        wait_text(page, f"Top 10 for user {new_id} ")

        # Existing users: time from entering a user id to their cards on screen.
        page.goto(f"{server.url}/recommend?user=46&algorithm=hybrid")
        wait_text(page, "Top 10 for user")
        shot(page, "recommend_user")
        field = page.get_by_label("User id", exact=True)
        timings = []
        for user in (106, 122, 219, 294, 296):
            field.fill(str(user))
            start = time.perf_counter()
            field.press("Enter")
            wait_text(page, f"Top 10 for user {user} ")
            # Elements of the previous run stay, marked stale, until redrawn.
            page.wait_for_function(NO_STALE, timeout=STEP_TIMEOUT_MS)
            timings.append(time.perf_counter() - start)
        figures["user chosen -> cards shown, median of 5 (s)"] = statistics.median(timings)
        assert "user=296" in page.url
        # Each card's title is a link to the anime's MyAnimeList page.
        links = page.locator('[data-testid="stMarkdownContainer"] '
                             'a[href*="myanimelist.net/anime/"]')
        assert links.count() >= 10
        href = links.first.get_attribute("href")
        assert re.fullmatch(r"https://myanimelist\.net/anime/\d+", href), href
        shot(page, "desktop_recommend")

        # On a phone the controls fold away and the first card is on the first screen.
        phone = new_page(browser, PHONE, phone=True)
        phone.goto(f"{server.url}/recommend?user=296")
        wait_text(phone, "Top 10 for user 296")
        wait_idle(phone)
        heading = phone.get_by_text("Top 10 for user 296").first.bounding_box()
        assert heading["y"] < PHONE["height"], heading
        lines = phone.evaluate("""() => { const range = document.createRange();
            range.selectNodeContents(document.querySelector('h1'));
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }""")
        assert lines == 1, lines  # the title on one line, not broken mid-word
        assert phone.locator('[data-testid="stPlotlyChart"] .modebar:visible').count() == 0
        shot(phone, "phone_recommend", PHONE)
        phone.context.close()

        page.goto(f"{server.url}/neighbours?user=296")
        wait_text(page, "nearest users")
        wait_text(page, "Recall@20")
        shot(page, "neighbours")
        # Clicking a neighbour's row (its selection box) opens that neighbour.
        grid = page.locator('[data-testid="stDataFrame"]').first
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)
        page.wait_for_url(lambda url: "user=" in url and "user=296" not in url,
                          timeout=STEP_TIMEOUT_MS)
        opened = re.search(r"user=(\d+)", page.url).group(1)
        wait_text(page, f"Recommendations for user {opened}")

        # A stakeholder tunes the weight, then applies it on Recommend with one click.
        start = time.perf_counter()
        page.goto(f"{server.url}/tune?weight=0.80&collab=ease")
        wait_text(page, "at w = 0.80", timeout=START_TIMEOUT_S * 1000)
        page.wait_for_function(NO_STALE, timeout=STEP_TIMEOUT_MS)
        figures["Tune first run (s)"] = time.perf_counter() - start
        shot(page, "tune")
        page.get_by_role("link", name=re.compile(r"Use w = 0\.80 on EASE")).click()
        wait_text(page, "Top 10 for", timeout=STEP_TIMEOUT_MS)
        wait_text(page, "EASE + content, weight 0.80")
        assert "weight=0.80" in page.url and "collab=ease" in page.url

        page.goto(f"{server.url}/performance")
        wait_text(page, "Memory")
        page.get_by_role("button", name=re.compile("Run the latency sample")).click()
        wait_text(page, "p50 and p95", timeout=300_000)
        shot(page, "performance")
        page.context.close()
    except Exception:
        if page is not None:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        raise
    finally:
        server.stop()

    # Restart on the same database and cache: a warm start loads what the first built.
    again = Server(tmp_path).start()
    try:
        figures["warm restart to first page (s)"], page = first_render(
            browser, again.url, again.started_at)
        shot(page, "home_warm")
        # The user saved before the restart is still there.
        page.goto(f"{again.url}/recommend?user={new_id}")
        wait_text(page, f"Top 10 for user {new_id} ")
        page.context.close()
    finally:
        again.stop()

    assert OUTSIDE.requests == [], f"requests outside the server: {OUTSIDE.requests[:5]}"
    print("\nDashboard timings:")
    for name, value in figures.items():
        print(f"  {name}: {value:.2f}")
    for name in ("startup", "home", "recommend_list", "recommend_user", "desktop_recommend",
                 "phone_recommend", "neighbours", "tune", "performance"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 5_000
