"""Cache files are hashed once per version, mapped read-only, and a changed file is caught."""

import numpy as np
import pytest

from recommender.errors import IndexCacheError
from recommender.serving import verified
from recommender.serving.cache import ModelCache


def _entry(cache: ModelCache, array: np.ndarray) -> dict:
    return cache._write_entry("m", {"a": array})["files"]["a"]


def test_a_saved_file_is_mapped_without_hashing_it_again(tmp_path, monkeypatch):
    cache = ModelCache(tmp_path)
    entry = _entry(cache, np.arange(1000, dtype=np.float32))

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(verified, "sha256_file", no_hashing)
    array = cache._read_array(entry)
    np.testing.assert_array_equal(array, np.arange(1000, dtype=np.float32))
    assert type(array) is np.ndarray and not array.flags.writeable
    assert not array.flags.owndata  # a view of the mapping, not a copy


def test_a_file_changed_in_place_is_hashed_again_and_rejected(tmp_path):
    cache = ModelCache(tmp_path)
    entry = _entry(cache, np.arange(1000, dtype=np.float32))
    path = tmp_path / entry["file"]
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexCacheError, match="checksum"):
        cache._read_array(entry)


def test_a_copied_cache_is_hashed_once_then_trusted(tmp_path, monkeypatch):
    cache = ModelCache(tmp_path)
    entry = _entry(cache, np.ones(10, np.int64))
    path = tmp_path / entry["file"]
    verified.stamp_path(path).unlink()  # as after a copy without the stamps
    calls = []
    real = verified.sha256_file
    monkeypatch.setattr(verified, "sha256_file", lambda p: calls.append(p) or real(p))
    cache._read_array(entry)
    cache._read_array(entry)
    assert len(calls) == 1
    assert not verified.is_stamped(path, "0" * 64)  # a stamp vouches for its own checksum only
