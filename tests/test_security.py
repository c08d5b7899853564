"""Security: no SQL built from strings, secrets never shown or logged, .env ignored by git."""

import ast
import logging
import os
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

from conftest import TINY_ENV
from recommender import RecommenderEngine
from recommender.config import ROOT, Settings

SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|COPY|WHERE|VALUES)\b",
                 re.IGNORECASE)
RAW_SQL_CALLS = {"text", "exec_driver_sql", "execute"}


def _string_parts(node) -> str:
    return " ".join(n.value for n in ast.walk(node)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _built_sql(tree) -> list[tuple[int, str]]:
    """Places where a string holding SQL is built at run time (f-string, %, +, .format)."""
    found = []
    for node in ast.walk(tree):
        built = (isinstance(node, ast.JoinedStr)
                 or (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add))
                     and any(isinstance(side, (ast.Constant, ast.JoinedStr))
                             for side in (node.left, node.right)))
                 or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                     and node.func.attr == "format"))
        if built and SQL.search(_string_parts(node)) and re.search(
                r"\b(SELECT|INSERT|DELETE|UPDATE)\b.*\b(FROM|INTO|SET)\b|\bWHERE\b",
                _string_parts(node)):
            found.append((node.lineno, ast.unparse(node)[:80]))
        # Raw SQL passed to the driver must be one literal: no variable text at all.
        if (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
                and getattr(node.func, "attr", getattr(node.func, "id", "")) in RAW_SQL_CALLS
                and node.args and isinstance(node.args[0], (ast.JoinedStr, ast.BinOp))):
            found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_no_sql_is_built_from_strings_in_the_package():
    problems = {}
    for path in sorted((ROOT / "recommender").glob("*.py")):
        found = _built_sql(ast.parse(path.read_text(), filename=str(path)))
        if found:
            problems[path.name] = found
    assert problems == {}


def test_the_checker_catches_string_built_sql():
    bad = ast.parse('conn.execute(sa.text(f"SELECT * FROM users WHERE name = \'{name}\'"))\n'
                    'cur.execute("DELETE FROM ratings WHERE user_id = " + uid)\n'
                    'q = "SELECT {} FROM anime".format(col)\n')
    assert len(_built_sql(bad)) >= 3


def test_sql_looking_text_is_data_not_sql(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    evil = "x'); DROP TABLE ratings; --"
    assert engine.search(evil).shape[1] > 0
    with engine.database.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ratings")).scalar() > 0


def test_env_file_and_local_state_are_gitignored():
    for path in (".env", "data/anime.db", "data/cache/manifest.json"):
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert done.returncode == 0, f"{path} is not ignored by git"
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True,
                             text=True).stdout
    assert tracked.strip() == ""


PASSWORD = "Tr0ub4dor-and-3"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_the_database_password_is_never_logged_or_printed(db_url, tiny_settings, caplog,
                                                         tmp_path):
    # Trust auth accepts any password, so the real server runs with one in the URL.
    url = sa.make_url(db_url).set(password=PASSWORD).render_as_string(hide_password=False)
    settings = Settings(database_url=url, cache_dir=tiny_settings.cache_dir,
                        params=tiny_settings.params, secret_key="admin-" + PASSWORD)
    with caplog.at_level(logging.DEBUG):
        engine = RecommenderEngine.from_settings(settings)
        engine.add_user({1: 10, 2: 4})
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    shown = caplog.text + repr(settings) + str(settings) + repr(engine.build_info)
    assert PASSWORD not in shown and "admin-" not in shown
    env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(settings.cache_dir),
           "SECRET_KEY": "admin-" + PASSWORD, **TINY_ENV}
    for args in (["-v", "search", "Title"], ["-v", "neighbors", "--user", "987654"]):
        done = subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert PASSWORD not in done.stdout + done.stderr
    assert done.returncode == 1 and "unknown user" in done.stderr
