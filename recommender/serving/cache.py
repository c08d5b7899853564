"""The on-disk cache of fitted models: files plus a JSON manifest that vouches for them.

Layout under ``cache_dir``::

    manifest.json            written last; lists every file with its size and sha256
    data.<array>.npy         the rating matrix (CSR arrays) the models were fitted on
    user-user.index.bin      hnswlib graph (AnnIndex.save)
    user-user.<array>.npy    user ids, anime ids, SVD components, compact vectors and
                             the similarity rows (CSR arrays)
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

The manifest also records the database's *revision* and how many ratings the
matrix holds. When both still match the database, a warm start takes the
matrix from here (:meth:`ModelCache.load_data`) and reads from the database
only the catalogue and the users added since (see ``service``), instead of
every rating.

Files are written to a temporary name and ``os.replace``d, manifest last, so a
crash mid-save leaves either the old cache or a manifest whose checksums no
longer match (rebuilt on the next start). ``models`` in the manifest is a
dict of named artifacts, so other models can be saved beside user-user later.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.config import EngineParams
from recommender.core.types import TrainingData
from recommender.errors import IndexCacheError
from recommender.models.ann_index import AnnIndex
from recommender.models.user_knn import UserKNN

_log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KNN = "user-user"
DATA = "data"
_KNN_ARRAYS = ("user_ids", "anime_ids", "components", "vectors")
_CSR_PARTS = ("indptr", "indices", "data")
#: Bytes read (and hashed) at a time when loading a file.
_READ_BLOCK = 8 << 20
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


def _array_from_buffer(buffer: np.ndarray) -> np.ndarray:
    """The array of a ``.npy`` file's bytes, sharing them (no pickles, no copy)."""
    head = io.BytesIO(buffer[:1 << 16].tobytes())
    version = np.lib.format.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
    if dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(buffer, dtype=dtype, count=count, offset=head.tell())
    return array.reshape(shape, order="F" if fortran else "C")


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

    def prefetch(self, threads: int = 2) -> None:
        """Start reading and checking every array file of the cache in the background.

        Reading and hashing release the GIL, so on a warm start this runs beside
        the database reads and the title index build; :meth:`_load_array` then
        takes the result instead of reading the file itself. The matrix and
        user-user arrays are queued first, since they are needed first.
        """
        manifest = self.manifest()
        if manifest is None:
            return
        try:
            entries = [file_entry for name in (DATA, KNN, *sorted(manifest["models"]))
                       for key, file_entry in manifest["models"].get(name, {})
                       .get("files", {}).items()
                       if str(file_entry["file"]).endswith(".npy")]
        except (AttributeError, KeyError, TypeError):
            return  # the loads will say what is wrong
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

    def recorded_revision(self) -> str | None:
        """The database revision the cached matrix was read at (None if unknown)."""
        manifest = self.manifest()
        record = manifest.get("database") if manifest else None
        return record.get("revision") if isinstance(record, dict) else None

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
                 models: dict | None = None, *, revision: str | None = None) -> Path:
        """Persist ``knn`` and ``models`` (fitted on ``data`` with ``params``); manifest last.

        ``models`` maps names to fitted scorers with ``state_dict()``: their
        array entries become ``.npy`` files, everything else goes into the
        manifest. ``revision`` is the database revision ``data`` was read at
        (see :meth:`load_data`); without it the matrix is not taken from here.
        """
        started = time.perf_counter()
        self.remove_stale_temporaries()
        models_arg = models
        state = knn.state
        if state.n_users != len(data.users):
            raise IndexCacheError("the model and the data disagree on the number of users")
        files = {"index": self._atomic_write(f"{KNN}.index.bin", knn.index_.save)}
        arrays = {"user_ids": data.users.ids, "anime_ids": data.items.ids,
                  "components": knn.components_, "vectors": state.vectors,
                  **_csr_arrays(state.similarity, "similarity_")}
        for key, array in arrays.items():
            files[key] = self._atomic_write(
                f"{KNN}.{key}.npy",
                lambda path, a=array: _save_npy(path, a))
        manifest = self.manifest() or {}
        models = manifest.get("models", {}) if manifest.get("fingerprint") == self.fingerprint(
            data) else {}
        models[KNN] = {"files": files, "values": {"mean": float(knn.mean_),
                                                  "dim": int(knn.components_.shape[0])}}
        models[DATA] = {"files": {key: self._atomic_write(
            f"{DATA}.{key}.npy", lambda path, a=array: _save_npy(path, a))
            for key, array in _csr_arrays(data.ratings).items()},
            "values": {"shape": list(data.ratings.shape)}}
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
            "fingerprint": self.fingerprint(data),
            "database": {"revision": revision, "ratings": int(data.ratings.nnz)},
            "params": params.as_dict(),
            "saved_at": time.time(),
            "models": models,
        }
        self._atomic_write(MANIFEST, lambda path: path.write_text(
            json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"))
        _log.info("saved the user-user model to %s in %.2fs", self.directory,
                  time.perf_counter() - started)
        return self.manifest_path

    def _checked_size(self, entry: dict) -> Path:
        path = self.directory / str(entry["file"])
        if not path.is_file():
            raise IndexCacheError(f"{path.name} is missing")
        if path.stat().st_size != int(entry["bytes"]):
            raise IndexCacheError(f"{path.name} has {path.stat().st_size} bytes, "
                                  f"expected {entry['bytes']} (truncated?)")
        return path

    def _verified(self, entry: dict) -> Path:
        path = self._checked_size(entry)
        if _sha256(path) != entry["sha256"]:
            raise IndexCacheError(f"{path.name} does not match its checksum (corrupt?)")
        return path

    def _load_array(self, entry: dict) -> np.ndarray:
        """The array in a ``.npy`` file once its size and checksum are checked."""
        future = self._prefetched.pop(_prefetch_key(entry), None)
        if future is not None and not future.cancelled():
            return future.result()
        return self._read_array(entry)

    def _read_array(self, entry: dict) -> np.ndarray:
        """Read, hash and check one ``.npy`` file (see :meth:`_load_array`).

        The file is read once, hashed block by block as it arrives, and the
        array shares the buffer: reading and hashing the ~0.5 GB of a
        full-scale cache costs about as much as reading it.
        """
        path = self._checked_size(entry)
        size = int(entry["bytes"])
        buffer = np.empty(size, dtype=np.uint8)  # not zero-filled, unlike bytearray
        view = memoryview(buffer)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            done = 0
            while done < size:
                got = handle.readinto(view[done:done + _READ_BLOCK])
                if not got:
                    break
                digest.update(view[done:done + got])
                done += got
            extra = handle.read(1)
        if done != size or extra:
            actual = path.stat().st_size
            raise IndexCacheError(f"{path.name} has {actual} bytes, expected {size} (truncated?)")
        if digest.hexdigest() != entry["sha256"]:
            raise IndexCacheError(f"{path.name} does not match its checksum (corrupt?)")
        return _array_from_buffer(buffer)

    # -- the rating matrix --------------------------------------------------------------
    def load_data(self, anime, revision: str, ratings: int) -> TrainingData:
        """The training data the cache was fitted on, without reading it from the database.

        ``anime`` is the clean catalogue from the database; ``revision`` and
        ``ratings`` are the database's revision and its number of ratings of
        users up to :meth:`watermark`. They must match what the manifest
        recorded, and the catalogue the cached anime ids; else
        :class:`IndexCacheError` (the caller then reads the ratings instead).
        """
        from recommender.core.matrix import IdIndex

        manifest = self.manifest()
        if manifest is None:
            raise IndexCacheError("no usable cache manifest")
        recorded = manifest.get("database") or {}
        if recorded.get("revision") is None or recorded.get("revision") != revision:
            raise IndexCacheError("the database changed since the cache was saved")
        if recorded.get("ratings") != ratings:
            raise IndexCacheError("the database has other ratings than the cache")
        try:
            users = self._load_array(manifest["models"][KNN]["files"]["user_ids"])
            items = self._load_array(manifest["models"][KNN]["files"]["anime_ids"])
            entry = manifest["models"][DATA]
            arrays = {key: self._load_array(entry["files"][key]) for key in _CSR_PARTS}
            shape = tuple(int(n) for n in entry["values"]["shape"])
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise IndexCacheError(f"the cached rating matrix is unreadable: {exc}") from None
        anime = anime.sort_values("anime_id").reset_index(drop=True)
        if not np.array_equal(anime["anime_id"].to_numpy(np.int64), items):
            raise IndexCacheError("the catalogue changed since the cache was saved")
        if shape != (len(users), len(items)) or len(arrays["data"]) != ratings:
            raise IndexCacheError("the cached rating matrix does not fit its id maps")
        return TrainingData(anime=anime, users=IdIndex(users.astype(np.int64, copy=False)),
                            items=IdIndex(items.astype(np.int64, copy=False)),
                            ratings=_csr_from(arrays, shape))

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
        if manifest.get("fingerprint") != self.fingerprint(data):
            raise IndexCacheError("the cache was built on other data")
        try:
            entry = manifest["models"][KNN]
            index_path = self._verified(entry["files"]["index"])
            mean = float(entry["values"]["mean"])
            arrays = {key: self._load_array(entry["files"][key]) for key in _KNN_ARRAYS}
            similarity = None
            if "similarity_data" in entry["files"]:
                similarity = _csr_from(
                    {f"similarity_{p}": self._load_array(entry["files"][f"similarity_{p}"])
                     for p in _CSR_PARTS}, data.ratings.shape, "similarity_")
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
            index = AnnIndex.load(index_path, dim, m=params.hnsw_m,
                                  ef_construction=params.hnsw_ef_construction,
                                  ef=params.hnsw_ef)
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise IndexCacheError(f"hnswlib cannot read the index: {exc}") from None
        if len(index) > n_users:
            raise IndexCacheError("the cached index has more users than the data")
        return knn.restore(data, mean=mean, components=arrays["components"],
                           vectors=arrays["vectors"], index=index, similarity=similarity)

    def load_state(self, name: str, data: TrainingData, params: EngineParams) -> dict:
        """The ``state_dict()`` saved for model ``name``; :class:`IndexCacheError` if unusable.

        Like :meth:`load_knn`, the manifest must match ``data`` and ``params``
        and each file its recorded size and checksum.
        """
        manifest = self.manifest()
        if (manifest is None or manifest.get("params") != params.as_dict()
                or manifest.get("fingerprint") != self.fingerprint(data)):
            raise IndexCacheError(f"no cached {name} model for this data and parameters")
        try:
            entry = manifest["models"][name]
            state = dict(entry["values"])
            for key, file_entry in entry["files"].items():
                state[key] = self._load_array(file_entry)
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
    from recommender.serving.engine import RecommenderEngine

    return RecommenderEngine.make_knn(params)
