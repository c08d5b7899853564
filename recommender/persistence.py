"""The on-disk cache of fitted models: files plus a JSON manifest that vouches for them.

Layout under ``cache_dir``::

    manifest.json            written last; lists every file with its size and sha256
    user-user.index.bin      hnswlib graph (AnnIndex.save)
    user-user.<array>.npy    user ids, anime ids, SVD components, compact vectors
    <model>.<array>.npy      arrays of every other fitted model ("content", "mf",
                             "ease"), from its ``state_dict()``; scalars and
                             hyper-parameters go into the manifest

The manifest fingerprints the data the models were fitted on (counts, the
largest user id, a sha256 over the id maps and the rating matrix) and the
:class:`EngineParams`. A cache is used only if both match and every file has
the recorded size and checksum; anything else (a missing, truncated or
corrupt file, other data, other parameters) means "rebuild", never a crash.
Sizes and checksums are checked *before* a file reaches hnswlib, which may
crash the process on some truncated files.

Files are written to a temporary name and ``os.replace``d, manifest last, so a
crash mid-save leaves either the old cache or a manifest whose checksums no
longer match (rebuilt on the next start). ``models`` in the manifest is a
dict of named artifacts, so other models can be saved beside user-user later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import TrainingData
from .collaborative import UserKNN
from .config import EngineParams
from .errors import IndexCacheError
from .index import AnnIndex

_log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KNN = "user-user"
_KNN_ARRAYS = ("user_ids", "anime_ids", "components", "vectors")
#: Temp files of a killed save are removed by a later save once this old.
STALE_TEMP_SECONDS = 600.0


def fingerprint(data: TrainingData) -> dict:
    """Counts and a sha256 over the id maps and the rating matrix of ``data``."""
    digest = hashlib.sha256()
    ratings = data.ratings
    for array in (data.users.ids, data.items.ids, ratings.indptr, ratings.indices, ratings.data):
        array = np.ascontiguousarray(array)
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return {
        "users": int(len(data.users)),
        "anime": int(len(data.items)),
        "ratings": int(ratings.nnz),
        "max_user_id": int(data.users.ids[-1]) if len(data.users) else 0,
        "sha256": digest.hexdigest(),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CachedKnn:
    """A user-user model read back from the cache (not yet attached to data)."""

    user_ids: np.ndarray
    anime_ids: np.ndarray
    components: np.ndarray
    vectors: np.ndarray
    mean: float
    index_path: Path


class ModelCache:
    """Saves and loads fitted models under ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    # -- manifest ---------------------------------------------------------------------
    def manifest(self) -> dict | None:
        """The manifest, or None when it is missing or unreadable (truncated, not JSON)."""
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if self.manifest_path.exists():
                _log.warning("cache manifest %s is unreadable (%s); ignoring the cache",
                             self.manifest_path, exc)
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
            return None
        return manifest

    def watermark(self) -> int | None:
        """The largest user id the cached models were fitted on (None without a cache)."""
        manifest = self.manifest()
        try:
            return int(manifest["fingerprint"]["max_user_id"]) if manifest else None
        except (KeyError, TypeError, ValueError):
            return None

    def _atomic_write(self, name: str, write) -> dict:
        """Write via ``write(path)`` to a temp file, then rename; returns size and sha256."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            write(tmp_path)
            entry = {"file": name, "bytes": tmp_path.stat().st_size, "sha256": _sha256(tmp_path)}
            os.replace(tmp_path, self.directory / name)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return entry

    def remove_stale_temporaries(self, older_than: float | None = None) -> int:
        """Delete temp files left by a save that was killed; returns how many.

        Only files older than ``older_than`` seconds (default
        ``STALE_TEMP_SECONDS``) go, so a save running in another process keeps its own.
        """
        limit = STALE_TEMP_SECONDS if older_than is None else older_than
        removed = 0
        for path in self.directory.glob(".*.tmp"):
            try:
                if time.time() - path.stat().st_mtime >= limit:
                    path.unlink()
                    removed += 1
            except OSError:  # gone meanwhile, or not ours to delete
                continue
        return removed

    # -- user-user --------------------------------------------------------------------
    def save_knn(self, data: TrainingData, params: EngineParams, knn: UserKNN,
                 models: dict | None = None) -> Path:
        """Persist ``knn`` and ``models`` (fitted on ``data`` with ``params``); manifest last.

        ``models`` maps names to fitted scorers with ``state_dict()``: their
        array entries become ``.npy`` files, everything else goes into the manifest.
        """
        started = time.perf_counter()
        self.remove_stale_temporaries()
        models_arg = models
        state = knn.state
        if state.n_users != len(data.users):
            raise IndexCacheError("the model and the data disagree on the number of users")
        files = {"index": self._atomic_write(f"{KNN}.index.bin", knn.index_.save)}
        arrays = {"user_ids": data.users.ids, "anime_ids": data.items.ids,
                  "components": knn.components_, "vectors": state.vectors}
        for key, array in arrays.items():
            files[key] = self._atomic_write(
                f"{KNN}.{key}.npy",
                lambda path, a=array: _save_npy(path, a))
        manifest = self.manifest() or {}
        models = manifest.get("models", {}) if manifest.get("fingerprint") == fingerprint(
            data) else {}
        models[KNN] = {"files": files, "values": {"mean": float(knn.mean_),
                                                  "dim": int(knn.components_.shape[0])}}
        for name, scorer in (models_to_save := dict(models_arg or {})).items():
            state = scorer.state_dict()
            entry_files, values = {}, {}
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    entry_files[key] = self._atomic_write(
                        f"{name}.{key}.npy", lambda path, a=value: _save_npy(path, a))
                else:
                    values[key] = value
            models[name] = {"files": entry_files, "values": values}
        del models_to_save
        manifest = {
            "format": FORMAT_VERSION,
            "fingerprint": fingerprint(data),
            "params": params.as_dict(),
            "saved_at": time.time(),
            "models": models,
        }
        self._atomic_write(MANIFEST, lambda path: path.write_text(
            json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"))
        _log.info("saved the user-user model to %s in %.2fs", self.directory,
                  time.perf_counter() - started)
        return self.manifest_path

    def _verified(self, entry: dict) -> Path:
        path = self.directory / str(entry["file"])
        if not path.is_file():
            raise IndexCacheError(f"{path.name} is missing")
        if path.stat().st_size != int(entry["bytes"]):
            raise IndexCacheError(f"{path.name} has {path.stat().st_size} bytes, "
                                  f"expected {entry['bytes']} (truncated?)")
        if _sha256(path) != entry["sha256"]:
            raise IndexCacheError(f"{path.name} does not match its checksum (corrupt?)")
        return path

    def load_knn(self, data: TrainingData, params: EngineParams) -> UserKNN:
        """A user-user model restored on ``data``; :class:`IndexCacheError` when unusable.

        The manifest must fingerprint exactly ``data`` and ``params``, and every
        file must have its recorded size and checksum before it is opened.
        """
        manifest = self.manifest()
        if manifest is None:
            raise IndexCacheError("no usable cache manifest")
        if manifest.get("params") != params.as_dict():
            raise IndexCacheError("the cache was built with other parameters")
        if manifest.get("fingerprint") != fingerprint(data):
            raise IndexCacheError("the cache was built on other data")
        try:
            entry = manifest["models"][KNN]
            files = {key: self._verified(entry["files"][key])
                     for key in ("index", *_KNN_ARRAYS)}
            mean = float(entry["values"]["mean"])
            arrays = {key: np.load(files[key], allow_pickle=False) for key in _KNN_ARRAYS}
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise IndexCacheError(f"the cache is incomplete or unreadable: {exc}") from None
        n_users, n_items = data.ratings.shape
        dim = arrays["components"].shape[0] if arrays["components"].ndim == 2 else -1
        if (not np.array_equal(arrays["user_ids"], data.users.ids)
                or not np.array_equal(arrays["anime_ids"], data.items.ids)
                or arrays["components"].shape != (dim, n_items)
                or arrays["vectors"].shape != (n_users, dim)):
            raise IndexCacheError("the cached arrays do not fit the data")
        knn = _make_knn(params)
        try:
            index = AnnIndex.load(files["index"], dim, m=params.hnsw_m,
                                  ef_construction=params.hnsw_ef_construction,
                                  ef=params.hnsw_ef)
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise IndexCacheError(f"hnswlib cannot read the index: {exc}") from None
        if len(index) > n_users:
            raise IndexCacheError("the cached index has more users than the data")
        return knn.restore(data, mean=mean, components=arrays["components"],
                           vectors=arrays["vectors"], index=index)

    def load_state(self, name: str, data: TrainingData, params: EngineParams) -> dict:
        """The ``state_dict()`` saved for model ``name``; :class:`IndexCacheError` if unusable.

        Like :meth:`load_knn`, the manifest must match ``data`` and ``params``
        and each file its recorded size and checksum.
        """
        manifest = self.manifest()
        if (manifest is None or manifest.get("params") != params.as_dict()
                or manifest.get("fingerprint") != fingerprint(data)):
            raise IndexCacheError(f"no cached {name} model for this data and parameters")
        try:
            entry = manifest["models"][name]
            state = dict(entry["values"])
            for key, file_entry in entry["files"].items():
                state[key] = np.load(self._verified(file_entry), allow_pickle=False)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise IndexCacheError(f"the cached {name} model is unreadable: {exc}") from None
        return state

    def clear(self) -> None:
        """Remove the manifest (the files are then ignored and overwritten on the next save)."""
        self.manifest_path.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def _make_knn(params: EngineParams) -> UserKNN:
    from .engine import RecommenderEngine

    return RecommenderEngine.make_knn(params)
