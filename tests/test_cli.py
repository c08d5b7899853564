"""The CLI as a user runs it: real subprocesses, readable output, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, copy_bundled_site

#: The CLI reads DATABASE_URL and ANIREC_CACHE_DIR; tests point them at a temp dir
#: shared by this module (a copy of the bundled site, so the models are loaded, not
#: fitted again), and the repository's data/ is never written.
_ENV: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def cli_database(tmp_path_factory, bundled_site):
    directory = tmp_path_factory.mktemp("cli")
    _ENV.update(copy_bundled_site(bundled_site, directory))
    yield directory
    _ENV.clear()


def run(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    if not _ENV and not (env and "DATABASE_URL" in env):
        raise RuntimeError("run() needs the cli_database fixture (or a DATABASE_URL in env)")
    return subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **_ENV, **(env or {})})


@pytest.mark.realdata
def test_recommend_by_titles_prints_a_table():
    result = run("recommend", "--liked", "Steins;Gate", "--liked", "deth note", "-n", "5")
    assert result.returncode == 0, result.stderr
    assert "rank" in result.stdout and "reason" in result.stdout
    assert "Death Note (id 1535)" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 6


@pytest.mark.realdata
def test_recommend_json_and_search():
    result = run("recommend", "--user", "16", "--algorithm", "hybrid", "--weight", "0.5",
                 "-n", "4", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["rows"]) == 4 and payload["meta"]["requested"] == "hybrid"
    found = run("search", "stiens gate")
    assert found.returncode == 0 and "Steins;Gate" in found.stdout.splitlines()[1]


@pytest.mark.realdata
@pytest.mark.parametrize("args, message", [
    (("recommend", "--user", "99999999"), "unknown user 99999999"),
    (("recommend", "--user", "16", "--weight", "2"), "weight must be in [0, 1]"),
    (("recommend", "--user", "16", "-n", "0"), "n must be between"),
    (("recommend", "--user", "16", "--algorithm", "nope"), "unknown algorithm"),
    (("recommend",), "give --user"),
    (("recommend", "--user", "abc"), "invalid int value"),
])
def test_bad_arguments_print_one_line_and_fail(args, message):
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.realdata
def test_add_user_then_recommend_for_them():
    added = run("add-user", "--liked", "Steins;Gate", "--liked", "Death Note=9")
    assert added.returncode == 0, added.stderr
    user_id = int(added.stdout.strip())
    assert user_id >= 1_000_000
    result = run("recommend", "--user", str(user_id), "-n", "3", "--json")
    assert result.returncode == 0, result.stderr
    ids = [row["anime_id"] for row in json.loads(result.stdout)["rows"]]
    assert len(ids) == 3 and 9253 not in ids and 1535 not in ids


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://anirec:s3cr3t-pw@127.0.0.1:1/nothing",   # nobody listens on port 1
    "nosuchdb://anirec:s3cr3t-pw@host/db",                          # no such dialect
    "not a url at all s3cr3t-pw",
])
def test_database_errors_are_one_line_without_the_password(url):
    result = run("search", "naruto", env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
