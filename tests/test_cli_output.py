"""What the CLI prints is what it means: strict JSON, and no "saved" when nothing was."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_ENV, fill_tiny_database
from recommender.cli import main


def _strict(text: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def tiny_cli(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli-output")
    url = f"sqlite:///{directory / 'tiny.db'}"
    fill_tiny_database(url, directory)
    return {"DATABASE_URL": url, "ANIREC_CACHE_DIR": str(directory / "cache"), **TINY_ENV}


@pytest.fixture
def env(tiny_cli, monkeypatch):
    for key, value in tiny_cli.items():
        monkeypatch.setenv(key, value)
    return tiny_cli


@pytest.mark.parametrize("algorithm", ["hybrid", "user-user", "content", "mf", "ease", "blend",
                                       "popularity", "random"])
def test_recommend_json_is_strict_json_for_every_algorithm(env, capsys, algorithm):
    for args in (["--user", "2"], ["--user", "7"], ["--liked-id", "3", "--liked-id", "15"],
                 ["--user", "4", "--diversity", "0.5"]):
        assert main(["recommend", *args, "--algorithm", algorithm, "-n", "15", "--json"]) == 0
        out = _strict(capsys.readouterr().out)
        assert out["meta"]["requested"] == algorithm and len(out["rows"]) > 0
        # Values the frame holds as NaN (no community score, no neighbour support) are null.
        assert all(isinstance(row["score"], float) for row in out["rows"])


def test_neighbours_and_search_json_are_strict(env, capsys):
    for args in (["neighbors", "--user", "2", "--json"], ["search", "scifi", "--json"],
                 ["search", "nothing-like-this", "--json"]):
        assert main(args) == 0
        _strict(capsys.readouterr().out)


@pytest.mark.parametrize("cache", ["a-file", "a-file/below", "/proc/anirec-cache"])
def test_build_index_with_an_unwritable_cache_fails_and_says_so(env, capsys, monkeypatch,
                                                                tmp_path, cache):
    (tmp_path / "a-file").write_text("not a directory")
    target = cache if cache.startswith("/") else str(tmp_path / cache)
    monkeypatch.setenv("ANIREC_CACHE_DIR", target)
    assert main(["build-index"]) == 1
    captured = capsys.readouterr()
    assert "saved to" not in captured.out
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith("error: built every model") and "cannot save" in lines[-1]
