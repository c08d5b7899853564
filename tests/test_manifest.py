"""A cache manifest of any wrong shape means a rebuild, never a crash or a misread."""

from __future__ import annotations

import copy
import json

import pytest

from recommender import RecommenderEngine
from recommender.serving.cache import ModelCache
from recommender.serving.manifest import valid

#: Values put in place of one leaf of a real manifest, each of a type or range that is wrong.
HOSTILE = [None, 2**64, -1, 1e300, "Infinity", "NaN", 1.5, True, "", "x" * 5, [], {}, [1, 2],
           {"a": 1}, "../../etc/passwd", "/abs/path", 10**30]


def leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))
    else:
        yield path


def replaced(manifest: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(manifest)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real cache of the tiny data, and its manifest."""
    import os

    from conftest import TINY_PARAMS, fill_tiny_database
    from recommender.config import Settings

    tmp = tmp_path_factory.mktemp("manifest")
    url = f"sqlite:///{tmp / 'tiny.db'}"
    fill_tiny_database(url, tmp)
    settings = Settings(database_url=url, cache_dir=tmp / "cache", params=TINY_PARAMS)
    RecommenderEngine.from_settings(settings)
    manifest = json.loads((settings.cache_dir / "manifest.json").read_text())
    assert valid(manifest) and os.path.exists(settings.cache_dir / "data.indptr.npy")
    return settings, manifest


def test_every_leaf_of_the_manifest_with_every_wrong_value_is_refused(saved):
    _settings, manifest = saved
    paths = [p for p in leaves(manifest) if p[-1] not in ("saved_at",)]
    refused = 0
    for path in paths:
        node = manifest
        for key in path:
            node = node[key]
        for value in HOSTILE:
            if value == node or type(value) is type(node) and value in ("", "x" * 5):
                continue
            candidate = replaced(manifest, path, value)
            if not valid(candidate):
                refused += 1
                continue
            # Still valid by the schema: only where any JSON scalar may stand (a model's
            # values and fit settings, which loading compares with the data and the
            # config; the revision, which the database compares).
            free = (path == ("database", "revision")
                    or (path[0] == "models" and ("values" in path or "config" in path))
                    # A plain file name: a file of that name is missing, so the model refits.
                    or (path[-1] == "file" and value in ("Infinity", "NaN")))
            assert free, (path, value)
    print(f"{len(paths)} leaves x {len(HOSTILE)} values: {refused} manifests refused")
    assert refused > len(paths) * 5


@pytest.mark.parametrize("path, value", [
    (("fingerprint", "max_user_id"), 2**64), (("fingerprint", "max_user_id"), 1e300),
    (("fingerprint", "max_user_id"), "Infinity"), (("models", "data", "files", "indptr"), None),
    (("database", "ratings"), -3),
    (("models", "user-user", "files", "index", "file"), "../escape.bin"),
    (("format",), 1), (("models", "rows"), []),
])
def test_a_start_on_a_corrupt_manifest_rebuilds(saved, path, value):
    settings, manifest = saved
    target = settings.cache_dir / "manifest.json"
    text = json.dumps(replaced(manifest, path, value))
    if value == "Infinity":  # JSON's non-standard literal, as a hand edit could write it
        text = text.replace('"Infinity"', "Infinity")
    target.write_text(text)
    assert ModelCache(settings.cache_dir).manifest() is None
    engine = RecommenderEngine.from_settings(settings)
    assert engine.build_info["index"] == "built"
    assert RecommenderEngine.from_settings(settings).build_info["index"] == "loaded"
    engine.database.dispose()


def test_a_well_formed_manifest_with_a_wrong_shape_reads_the_matrix_again(saved):
    settings, manifest = saved
    target = settings.cache_dir / "manifest.json"
    target.write_text(json.dumps(replaced(manifest, ("models", "data", "values", "shape"),
                                          [40.5, 20])))
    engine = RecommenderEngine.from_settings(settings)
    assert engine.build_info["matrix"].startswith("read from the database")
    assert len(engine.user_ids()) == 40


def test_deeply_nested_or_huge_json_is_refused_without_a_crash(saved):
    settings, _ = saved
    target = settings.cache_dir / "manifest.json"
    target.write_text("[" * 100_000 + "]" * 100_000)
    assert ModelCache(settings.cache_dir).manifest() is None
    assert RecommenderEngine.from_settings(settings).build_info["index"] == "built"
