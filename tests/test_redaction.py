"""Secrets never reach an output: URLs are redacted by their structure, for any password."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from recommender.core.redact import redact_text, redact_url
from recommender.data.database import database_error

#: Characters a password may contain, unencoded, as people type them into URLs.
PASSWORD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"],
                                               exclude_characters="\n\r "),
                        min_size=1, max_size=20)
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
SCHEME = st.sampled_from(["postgresql", "postgresql+psycopg", "mysql", "sqlite", "redis"])
#: Query parameters that carry secrets, and ones that do not.
SECRET_KEYS = st.sampled_from(["password", "sslpassword", "passwd", "pwd", "token", "api_key",
                               "secret", "auth", "access_token", "PASSWORD"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(scheme=SCHEME, user=NAME, password=PASSWORD_TEXT, host=NAME, db=NAME,
       port=st.one_of(st.none(), st.integers(1, 65535)), encoded=st.booleans())
def test_a_password_in_the_userinfo_is_hidden_and_the_rest_kept(scheme, user, password, host,
                                                                 db, port, encoded):
    secret = urllib.parse.quote(password, safe="") if encoded else password
    netloc = f"{host}:{port}" if port else host
    url = f"{scheme}://{user}:{secret}@{netloc}/{db}"
    # Exactly the URL with the password replaced: no more, no less.
    assert redact_url(url) == f"{scheme}://{user}:***@{netloc}/{db}"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(user=NAME, host=NAME, db=NAME, key=SECRET_KEYS, secret=PASSWORD_TEXT,
       other=st.sampled_from(["", "sslmode=require&", "options=-csearch_path%3Dx&"]))
def test_credential_query_parameters_are_hidden(user, host, db, key, secret, other):
    value = urllib.parse.quote(secret, safe="")
    url = f"postgresql://{user}@{host}/{db}?{other}{key}={value}"
    assert redact_url(url) == f"postgresql://{user}@{host}/{db}?{other}{key}=***"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(password=st.text(alphabet="abcdefghijklmnop@:/#?%", min_size=6, max_size=16),
       marker=st.text(alphabet="QWXZ", min_size=8, max_size=8))
def test_a_long_secret_never_appears_in_any_form_of_output(password, marker):
    secret = marker + password  # unique: it cannot occur by chance elsewhere
    for url in (f"postgresql://me:{secret}@db.example:5432/anime",
                f"postgresql://me@db.example/anime?password={urllib.parse.quote(secret)}",
                f"postgresql://me@db.example/anime?sslpassword={secret}"):
        shown = [redact_url(url), redact_text(f"connection failed for {url}: refused"),
                 str(database_error(url, "cannot connect", RuntimeError(f"bad {url}")))]
        assert all(marker not in text for text in shown), shown
    conninfo = f"host=db.example user=me password={secret} dbname=anime"
    assert marker not in redact_text(f"could not connect: {conninfo}")


@pytest.mark.parametrize("password", list("x@:/?#%"))
def test_a_one_character_password_does_not_reveal_itself(password):
    # The old redaction replaced every occurrence of the secret's character.
    url = f"postgresql://xavier:{password}@x-host.example/xdb"
    assert redact_url(url) == "postgresql://xavier:***@x-host.example/xdb"


def test_the_cli_and_build_info_never_show_a_query_parameter_password(tmp_path):
    secret = "Zq9-query-secret"
    url = f"postgresql+psycopg://me@127.0.0.1:1/anime?password={secret}"
    env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp_path)}
    for args in (["search", "naruto"], ["build-index"], ["ingest", "--anime", "x.csv"]):
        done = subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert secret not in done.stdout + done.stderr
        assert "password=***" in done.stderr


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_build_info_shows_the_database_without_its_secrets(tiny_settings):
    from dataclasses import replace

    from recommender import RecommenderEngine

    # A query parameter of a PostgreSQL URL: libpq ignores the unused sslpassword.
    secret_url = tiny_settings.database_url + "&sslpassword=Zq9-sidebar-secret"
    engine = RecommenderEngine.from_settings(replace(tiny_settings, database_url=secret_url))
    assert "Zq9-sidebar-secret" not in engine.build_info["database"]
    assert "sslpassword=***" in engine.build_info["database"]
