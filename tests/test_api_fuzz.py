"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema (schemathesis).

Every generated request, valid or not, gets a response that conforms to the
schema (status code documented, JSON body of the documented shape) and is
never a 5xx. The engine is the tiny in-memory one with a database behind it,
so writes run too; the number of examples is bounded to keep the file fast.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import TINY_PARAMS, fill_tiny_database
from recommender import RecommenderEngine
from recommender.api.app import create_app
from recommender.api.settings import ApiSettings
from recommender.config import Settings

KEY = "fuzz-key"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _app(tmp_dir):
    url = f"sqlite:///{tmp_dir / 'fuzz.db'}"
    fill_tiny_database(url, tmp_dir)
    engine = RecommenderEngine.from_settings(
        Settings(database_url=url, cache_dir=tmp_dir / "cache", params=TINY_PARAMS))
    # A generous write limit: the fuzzer creates users faster than any real client.
    return create_app(api_settings=ApiSettings(api_key=KEY, writes_per_minute=10_000,
                                               max_body_bytes=64 * 1024), engine=engine)


# Built at import (schemathesis parametrises from a schema object); the tiny engine takes ~1 s.
_DIR = Path(tempfile.mkdtemp(prefix="anirec-fuzz-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(_DIR))


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_response_conforms_and_none_is_a_server_error(case):
    # Half the writes carry the right key, so the 201 path is fuzzed too.
    headers = {"X-API-Key": KEY} if case.path == "/users" and case.method == "POST" else None
    case.call_and_validate(headers=headers, checks=CHECKS)
