"""hnswlib cosine index over compact user vectors, safe for concurrent use.

hnswlib's ``knn_query`` is thread-safe beside other queries but not beside
``add_items`` or ``resize_index`` (see its README), so queries share a read
lock and inserts take the write lock.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import hnswlib
import numpy as np


class ReadWriteLock:
    """Many readers or one writer; writers are not starved by a stream of readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def usable_rows(vectors: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with a non-zero norm; a zero vector has no cosine."""
    return np.linalg.norm(vectors, axis=1) > 1e-12


#: The index's own search width. hnswlib searches max(ef, k) wide, and ``set_ef``
#: is shared by every reader, so the width is chosen per query instead (see query).
_BASE_EF = 10


class AnnIndex:
    """Approximate nearest users by cosine over compact vectors (labels = user_idx).

    The search width ``ef`` is a per-query argument: hnswlib keeps one ``ef``
    per index, shared by every thread, so setting it for one caller would
    retune every other. A query for ``k`` with width ``ef`` asks hnswlib for
    ``max(k, ef)`` labels at its small base width and keeps the best ``k``,
    which is exactly what a search of width ``ef`` returns.
    """

    def __init__(self, dim: int, *, m: int = 16, ef_construction: int = 200,
                 num_threads: int = 1):
        self.dim = int(dim)
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self.num_threads = int(num_threads)
        self._index: hnswlib.Index | None = None
        self._lock = ReadWriteLock()

    # -- building ---------------------------------------------------------------------
    def build(self, vectors: np.ndarray, labels: np.ndarray) -> AnnIndex:
        """Index ``vectors`` (float32, shape (n, dim)) under ``labels`` (int64, shape (n,)).

        Zero rows are left out (cf. implicit/ann): cosine is undefined for them.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        keep = usable_rows(vectors)
        index = hnswlib.Index(space="cosine", dim=self.dim)
        # Leave head-room so a few new users do not force an immediate resize.
        index.init_index(max_elements=max(int(keep.sum()) + 1024, 1024), M=self.m,
                         ef_construction=self.ef_construction, random_seed=42)
        if keep.any():
            index.add_items(vectors[keep], labels[keep], num_threads=self.num_threads)
        index.set_ef(_BASE_EF)
        with self._lock.write():
            self._index = index
        return self

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> int:
        """Add rows (zero rows skipped), growing the index when full; returns how many."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        labels = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        keep = usable_rows(vectors)
        if not keep.any():
            return 0
        with self._lock.write():
            index = self._require()
            needed = index.get_current_count() + int(keep.sum())
            if needed > index.get_max_elements():
                index.resize_index(max(needed, int(index.get_max_elements() * 1.25) + 1024))
            index.add_items(vectors[keep], labels[keep], num_threads=1)
        return int(keep.sum())

    # -- querying ---------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.get_current_count())

    def query(self, vector: np.ndarray, k: int,
              ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` nearest labels (int64) and their cosine similarities (float32), best first.

        ``ef`` is the search width (at least ``k`` in effect). ``k`` is clamped
        to the number of indexed users; a zero query returns nothing.
        """
        vector = np.ascontiguousarray(np.atleast_2d(vector), dtype=np.float32)
        if not usable_rows(vector)[0]:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        want = int(k)
        with self._lock.read():
            index = self._require()
            k = min(max(want, int(ef or 0)), index.get_current_count())
            if k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            while True:
                try:
                    labels, distances = index.knn_query(vector, k=k, num_threads=1)
                    break
                except RuntimeError:
                    # Raised when the graph yields fewer than k results (tiny or
                    # badly connected graphs); ask for fewer rather than fail.
                    if k == 1:
                        return np.empty(0, np.int64), np.empty(0, np.float32)
                    k = max(1, k // 2)
        return (labels[0][:want].astype(np.int64),
                (1.0 - distances[0][:want]).astype(np.float32))

    def labels(self) -> np.ndarray:
        """All labels held by the index (int64)."""
        with self._lock.read():
            return np.asarray(self._require().get_ids_list(), dtype=np.int64)

    def nbytes(self) -> int:
        """Approximate memory of the graph and vectors."""
        if self._index is None:
            return 0
        per_element = 4 * self.dim + 8 + 4 * (2 * self.m + 1) * 1.1
        return int(self._index.get_max_elements() * per_element)

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        with self._lock.read():
            self._require().save_index(str(path))

    @classmethod
    def load(cls, path: str | Path, dim: int, *, m: int, ef_construction: int,
             extra_capacity: int = 1024) -> AnnIndex:
        """Load a saved index; hnswlib raises RuntimeError on a corrupt or truncated file."""
        out = cls(dim, m=m, ef_construction=ef_construction)
        index = hnswlib.Index(space="cosine", dim=dim)
        index.load_index(str(path))
        index.resize_index(index.get_current_count() + extra_capacity)
        index.set_ef(_BASE_EF)  # hnswlib does not save ef
        out._index = index
        return out

    def _require(self) -> hnswlib.Index:
        if self._index is None:
            raise RuntimeError("the index has not been built")
        return self._index
