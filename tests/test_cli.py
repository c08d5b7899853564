"""The CLI as a user runs it: real subprocesses, readable output, one-line errors."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


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
