"""The on-disk cache of fitted models: files plus a JSON manifest that vouches for them.

Layout under ``cache_dir``::

    manifest.json          written last; lists every file with its size and sha256
    data.<array>.npy       user and anime ids and the rating matrix (CSR arrays)
    rows.<array>.npy       user-user's similarity rows (CSR) and compact vectors
    search.<array>.npy     the title search index
    <model>.<key>.npy      each persisted model's arrays, from its ``state_dict()``;
    <model>.<key>.bin      files it saves itself (the hnswlib graph); scalars go
                           into the manifest

The manifest fingerprints the data everything was fitted on (counts, the
largest user id, a sha256 over the id maps and the rating matrix) and records
each model's *fit key*: the config fields its fit depends on
(:func:`recommender.core.params.fit_key`). A model is used only if the data and
its own fit key match and every file has the recorded size and checksum; so a
serving setting or a query-time field refits nothing, and anything else (a
missing, truncated or corrupt file, other data, another fit setting, a
manifest of another format) means "refit", never a crash. Sizes and checksums
are checked *before* a file reaches hnswlib, which may crash the process on
some truncated files.

The manifest also records the database's *revision* and how many ratings the
matrix holds. When both still match the database, a warm start takes the
matrix from here (:meth:`ModelCache.load_data`) and reads from the database
only the catalogue and the users added since, instead of every rating.

Arrays are opened read-only with ``mmap`` (processes serving one cache share
the pages), and each file's checksum is verified once per file version, not
at every start (:mod:`recommender.serving.verified`).

Files are written to a temporary name and ``os.replace``d, manifest last, so a
crash mid-save leaves either the old cache or a manifest whose checksums no
longer match (rebuilt on the next start).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.core.matrix import IdIndex
from recommender.core.types import Persistent, Snapshot, TrainingData, UserRows
from recommender.errors import IndexCacheError
from recommender.serving import manifest as schema
from recommender.serving import verified
from recommender.serving.manifest import FORMAT_VERSION, MANIFEST

_log = logging.getLogger(__name__)

DATA, ROWS, SEARCH = "data", "rows", "search"
_CSR_PARTS = ("indptr", "indices", "data")
#: Temp files of a killed save are removed by a later save once this old.
STALE_TEMP_SECONDS = 600.0
#: np.load parses each header with ast.literal_eval, and CPython before 3.11.8 can
#: fail that with "AST constructor recursion depth mismatch" when threads compile at
#: once (python/cpython#106905). Opening is only the header (the data is mapped
#: lazily), so the prefetch threads take turns there and check checksums in parallel.
_OPEN_LOCK = threading.Lock()


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


def _csr_arrays(matrix, prefix: str = "") -> dict[str, np.ndarray]:
    return {f"{prefix}{part}": getattr(matrix, part) for part in _CSR_PARTS}


def _csr_from(arrays: dict, shape: tuple[int, int], prefix: str = "") -> sp.csr_matrix:
    indptr, indices, data = (arrays[f"{prefix}{part}"] for part in _CSR_PARTS)
    if (indptr.ndim != 1 or len(indptr) != shape[0] + 1 or len(indices) != len(data)
            or int(indptr[-1]) != len(data)
            or (len(indices) and int(indices.max(initial=0)) >= shape[1])):
        raise IndexCacheError("the cached matrix is inconsistent")
    # The constructor would re-check every index; the checks above are what can go wrong.
    matrix = sp.csr_matrix(shape, dtype=data.dtype)
    matrix.data, matrix.indices, matrix.indptr = data, indices, indptr
    return matrix


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prefetch_key(entry: dict) -> tuple:
    # The checksum is part of the key: a save by another process in between
    # must not hand back the previous file's array.
    return (str(entry.get("file")), entry.get("sha256"), entry.get("bytes"))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


class ModelCache:
    """Saves and loads fitted models under ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._last_fingerprint: tuple[weakref.ref, dict] | None = None
        self._prefetched: dict[tuple, Future] = {}

    def fingerprint(self, data: TrainingData) -> dict:
        """:func:`fingerprint` of ``data``, remembered for the last data object.

        A warm start checks the same data once per model; hashing the matrix
        each time would cost more than loading the models.
        """
        last = self._last_fingerprint
        if last is None or last[0]() is not data:
            last = self._last_fingerprint = (weakref.ref(data), fingerprint(data))
        return last[1]

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    # -- manifest ---------------------------------------------------------------------
    def manifest(self) -> dict | None:
        """The manifest, or None when it is missing, unreadable or not of the schema."""
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            if self.manifest_path.exists():
                _log.warning("cache manifest %s is unreadable (%s); ignoring the cache",
                             self.manifest_path, exc)
            return None
        if not schema.valid(manifest):
            if isinstance(manifest, dict) and manifest.get("format") == FORMAT_VERSION:
                _log.warning("cache manifest %s does not match its schema; ignoring the cache",
                             self.manifest_path)
            return None
        return manifest

    def watermark(self) -> int | None:
        """The largest user id the cached models were fitted on (None without a cache)."""
        manifest = self.manifest()
        return manifest["fingerprint"]["max_user_id"] if manifest else None

    def recorded_revision(self) -> str | None:
        """The database revision the cached matrix was read at (None if unknown)."""
        manifest = self.manifest()
        return manifest["database"]["revision"] if manifest else None

    def prefetch(self, threads: int = 2) -> None:
        """Start checking and mapping every array file of the cache in the background.

        A file whose version is stamped is only mapped; one that is not (the
        first start after a copy) is hashed, which releases the GIL, so on a
        warm start this runs beside
        the database reads and the title index build; :meth:`_load_array` then
        takes the result instead of reading the file itself. The matrix and the
        rows are queued first, since they are needed first.
        """
        manifest = self.manifest()
        if manifest is None:
            return
        models = manifest["models"]
        order = [DATA, ROWS, *sorted(set(models) - {DATA, ROWS})]
        entries = [entry for name in order for entry in models.get(name, {}).get(
            "files", {}).values() if entry["file"].endswith(".npy")]
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cache-read")
        for entry in entries:
            key = _prefetch_key(entry)
            if key not in self._prefetched:
                self._prefetched[key] = pool.submit(self._read_array, entry)
        pool.shutdown(wait=False)

    def forget_prefetched(self) -> None:
        """Drop prefetched arrays not taken (they would otherwise stay in memory)."""
        pending, self._prefetched = self._prefetched, {}
        for future in pending.values():
            future.cancel()

    # -- writing ----------------------------------------------------------------------
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
            # The rename changes the file's ctime, so the stamp is taken after it.
            verified.stamp(self.directory / name, entry["sha256"])
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

    def _write_entry(self, name: str, state: Mapping[str, Any],
                     config: Mapping[str, Any] | None = None) -> dict:
        files, values = {}, {}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                files[key] = self._atomic_write(f"{name}.{key}.npy",
                                                lambda path, a=value: _save_npy(path, a))
            elif callable(getattr(value, "save", None)):
                files[key] = self._atomic_write(f"{name}.{key}.bin", value.save)
            else:
                values[key] = value
        entry = {"files": files, "values": values}
        if config is not None:
            entry["config"] = dict(config)
        return entry

    def save(self, snapshot: Snapshot, models: Mapping[str, Persistent],
             fit_keys: Mapping[str, Mapping[str, Any]], search: Persistent | None = None, *,
             revision: str | None = None) -> Path:
        """Persist ``snapshot`` and ``models`` (with their fit keys); the manifest last.

        ``revision`` is the database revision the snapshot's data was read at
        (see :meth:`load_data`); without it the matrix is not taken from here.
        """
        started = time.perf_counter()
        self.remove_stale_temporaries()
        data, rows = snapshot.data, snapshot.rows
        # Users added since the fit are in the rows but not yet in the postings
        # (UserKNN.grow); such postings are rebuilt on load instead of saved.
        postings = (_csr_arrays(rows.postings, "postings_")
                    if rows.postings.shape == rows.similarity.shape else {})
        entries = {
            DATA: self._write_entry(DATA, {"user_ids": data.users.ids,
                                           "anime_ids": data.items.ids,
                                           **_csr_arrays(data.ratings),
                                           "shape": list(data.ratings.shape)}),
            ROWS: self._write_entry(ROWS, {**_csr_arrays(rows.similarity, "similarity_"),
                                           # The CSC is saved too: building it is
                                           # seconds at scale, and a mapped copy
                                           # is shared between processes.
                                           **postings,
                                           "vectors": rows.vectors}),
        }
        if search is not None:
            entries[SEARCH] = self._write_entry(SEARCH, search.state_dict(), {})
        for name, model in models.items():
            entries[name] = self._write_entry(name, model.state_dict(), fit_keys[name])
        manifest = {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint(data),
            "database": {"revision": revision, "ratings": int(data.ratings.nnz)},
            "saved_at": time.time(),
            "models": entries,
        }
        self._atomic_write(MANIFEST, lambda path: path.write_text(
            json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"))
        _log.info("saved the model cache to %s in %.2fs", self.directory,
                  time.perf_counter() - started)
        return self.manifest_path

    def replace_model(self, name: str, model: Persistent, fit_key: Mapping[str, Any],
                      data: TrainingData) -> bool:
        """Swap one model's entry in a cache saved on ``data``; False if there is none.

        For a model trained elsewhere (Spark's ALS for "mf"): the other models
        and the matrix stay as saved, and the manifest is rewritten last.
        """
        manifest = self.manifest()
        if manifest is None or manifest["fingerprint"] != self.fingerprint(data):
            return False
        manifest["models"][name] = self._write_entry(name, model.state_dict(), fit_key)
        manifest["saved_at"] = time.time()
        self._atomic_write(MANIFEST, lambda path: path.write_text(
            json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"))
        return True

    # -- reading ----------------------------------------------------------------------
    def _checked_size(self, entry: dict) -> Path:
        path = self.directory / entry["file"]
        if not path.is_file():
            raise IndexCacheError(f"{path.name} is missing")
        if path.stat().st_size != entry["bytes"]:
            raise IndexCacheError(f"{path.name} has {path.stat().st_size} bytes, "
                                  f"expected {entry['bytes']} (truncated?)")
        return path

    def _verified(self, entry: dict) -> Path:
        """The file's path once its size and checksum (hashed once per version) are checked."""
        path = self._checked_size(entry)
        if not verified.verify(path, entry["sha256"]):
            raise IndexCacheError(f"{path.name} does not match its checksum (corrupt?)")
        return path

    def _load_array(self, entry: dict) -> np.ndarray:
        """The array in a ``.npy`` file once its size and checksum are checked."""
        future = self._prefetched.pop(_prefetch_key(entry), None)
        if future is not None and not future.cancelled():
            return future.result()
        return self._read_array(entry)

    def _read_array(self, entry: dict) -> np.ndarray:
        """Check one ``.npy`` file and map it read-only (see :meth:`_load_array`).

        The pages are the file's own: processes serving the same cache share
        them, and a start reads only what it touches. The checksum is verified
        once per file version (:mod:`recommender.serving.verified`), not at
        every start.
        """
        path = self._verified(entry)
        with _OPEN_LOCK:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{path.name} is not one array")
        # A plain ndarray over the mapping: np.memmap's subclass would leak into
        # every result computed from it.
        return array.view(np.ndarray)

    def _entry(self, name: str, data: TrainingData | None) -> dict:
        """The manifest entry of ``name``, when the cache was saved on ``data``."""
        manifest = self.manifest()
        if manifest is None:
            raise IndexCacheError("no usable cache manifest")
        if data is not None and manifest["fingerprint"] != self.fingerprint(data):
            raise IndexCacheError("the cache was built on other data")
        entry = manifest["models"].get(name)
        if entry is None:
            raise IndexCacheError(f"the cache has no {name}")
        return entry

    def _arrays(self, entry: dict, what: str) -> dict[str, Any]:
        try:
            state: dict[str, Any] = dict(entry["values"])
            for key, file_entry in entry["files"].items():
                state[key] = (self._load_array(file_entry) if file_entry["file"].endswith(".npy")
                              else self._verified(file_entry))
        except (ValueError, OSError, EOFError) as exc:
            raise IndexCacheError(f"the cached {what} is unreadable: {exc}") from None
        return state

    def load_data(self, anime, revision: str, ratings: int) -> TrainingData:
        """The training data the cache was saved on, without reading it from the database.

        ``anime`` is the clean catalogue from the database; ``revision`` and
        ``ratings`` are the database's revision and its number of ratings of
        users up to :meth:`watermark`. They must match what the manifest
        recorded, and the catalogue the cached anime ids; else
        :class:`IndexCacheError` (the caller then reads the ratings instead).
        """
        manifest = self.manifest()
        if manifest is None:
            raise IndexCacheError("no usable cache manifest")
        recorded = manifest["database"]
        if recorded["revision"] is None or recorded["revision"] != revision:
            raise IndexCacheError("the database changed since the cache was saved")
        if recorded["ratings"] != ratings:
            raise IndexCacheError("the database has other ratings than the cache")
        state = self._arrays(self._entry(DATA, None), "rating matrix")
        shape = schema.shape(state)
        try:
            users, items = state["user_ids"], state["anime_ids"]
            arrays = {key: state[key] for key in _CSR_PARTS}
        except KeyError as exc:
            raise IndexCacheError(f"the cached rating matrix lacks {exc}") from None
        anime = anime.sort_values("anime_id").reset_index(drop=True)
        if items.shape != (len(anime),) or not np.array_equal(
                anime["anime_id"].to_numpy(np.int64), items):
            raise IndexCacheError("the catalogue changed since the cache was saved")
        if (shape is None or users.ndim != 1 or shape != (len(users), len(items))
                or len(arrays["data"]) != ratings):
            raise IndexCacheError("the cached rating matrix does not fit its id maps")
        return TrainingData(anime=anime, users=IdIndex(users.astype(np.int64, copy=False)),
                            items=IdIndex(items.astype(np.int64, copy=False)),
                            ratings=_csr_from(arrays, shape))

    def load_rows(self, data: TrainingData) -> UserRows:
        """User-user's rows of ``data``, saved with it; :class:`IndexCacheError` if unusable."""
        state = self._arrays(self._entry(ROWS, data), "user rows")
        try:
            similarity = _csr_from(state, data.ratings.shape, "similarity_")
            vectors = state["vectors"]
        except KeyError as exc:
            raise IndexCacheError(f"the cached user rows lack {exc}") from None
        if vectors.ndim != 2 or vectors.shape[0] != data.ratings.shape[0]:
            raise IndexCacheError("the cached vectors do not fit the data")
        if "postings_indptr" in state:
            # A CSC is the CSR of the transpose: the same checks apply.
            rows, cols = data.ratings.shape
            postings = _csr_from(state, (cols, rows), "postings_").T.tocsc(copy=False)
            if postings.nnz != similarity.nnz:
                raise IndexCacheError("the cached postings do not fit the user rows")
        else:
            postings = similarity.tocsc()
        return UserRows(similarity, vectors, postings)

    def load_state(self, name: str, data: TrainingData, fit_key: Mapping[str, Any]) -> dict:
        """The ``state_dict()`` saved for model ``name``; :class:`IndexCacheError` if unusable.

        The manifest must match ``data``, the entry must have been fitted with
        ``fit_key``, and each file its recorded size and checksum. Files that
        are not arrays come back as their verified paths.
        """
        entry = self._entry(name, data)
        if entry.get("config") != dict(fit_key):
            raise IndexCacheError(f"the cached {name} model was fitted with other settings")
        return self._arrays(entry, f"{name} model")

    def clear(self) -> None:
        """Remove the manifest (the files are then ignored and overwritten on the next save)."""
        self.manifest_path.unlink(missing_ok=True)
