"""User-user collaborative filtering: hnswlib candidates, exact re-rank, neighbour voting.

Similarity is cosine between the users' rating rows
(:func:`recommender.core.matrix.similarity_rows`; raw 1..10 ratings by default,
mean-centred with ``centre``). Those rows are long and sparse, so an hnswlib
index over compact TruncatedSVD vectors proposes ``n_candidates`` users, an
inverted index (users by anime) adds those who share the query's rarest
anime, and the union is re-ranked by exact cosine on the sparse rows. Compact
vectors alone agree poorly with exact neighbours (about 40% at 64 dimensions
on the bundled data); the re-rank is what lifts neighbour recall above 0.95.

What the model learns (the SVD projection, the global mean) is fixed after
``fit``. What grows with the users (their rows, vectors and the hnswlib labels)
lives in the engine's :class:`~recommender.core.types.Snapshot`: :meth:`grow`
returns a new snapshot and never changes an old one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from threadpoolctl import threadpool_limits

from recommender.core.matrix import IdIndex, append_rows, global_mean, similarity_rows
from recommender.core.params import fit_key, query_field
from recommender.core.profiling import PROFILER
from recommender.core.types import (
    LIKE_RATING,
    Context,
    Explanation,
    Scores,
    Snapshot,
    TrainingData,
    UserProfile,
    UserRows,
)
from recommender.models.ann_index import AnnIndex
from recommender.models.postings import posting_scores, row_dots


@dataclass(frozen=True)
class UserKNNConfig:
    """Hyper-parameters of user-user CF; the defaults are the served ones (README, "Tuning")."""

    #: Neighbours that vote for a user's recommendations.
    n_neighbours: int = query_field(200)
    #: TruncatedSVD dimensions of the compact vectors in the hnswlib index.
    dim: int = 32
    #: Inverted-index candidates re-ranked by exact cosine per query.
    n_candidates: int = query_field(250)
    #: hnswlib candidates re-ranked with them: few, for neighbours who share only
    #: popular anime (the inverted index finds the rest, README "Performance").
    ann_candidates: int = query_field(30)
    #: hnswlib graph degree and build width.
    m: int = 16
    ef_construction: int = 100
    #: hnswlib search width (it searches max(ef, ann_candidates + 1) wide).
    ef: int = query_field(50)
    #: A neighbour's rating at or above this is a like.
    like_threshold: float = query_field(LIKE_RATING)
    #: Vote of a neighbour's -1 (watched, not rated), as a fraction of a 10.
    watched_weight: float = query_field(0.5)
    #: Vote of a neighbour's rating below ``like_threshold``: watching a title at
    #: all predicts watching and liking it.
    disliked_weight: float = query_field(0.5)
    #: Similarities are raised to this power before voting.
    similarity_power: float = query_field(1.0)
    #: Pseudo-ratings shrinking each user's mean towards the global mean (``centre`` only).
    damping: float = 5.0
    #: Cosine on mean-centred ratings (True) or on raw ratings (False).
    centre: bool = False
    #: Power iterations of the randomized SVD (the re-rank makes more buy little recall).
    svd_n_iter: int = 2
    #: Threads for the hnswlib build (queries use one each).
    index_threads: int = query_field(2)
    #: Rating entries read from the inverted index per query: -1 (automatic) reads
    #: ``posting_share`` of all ratings, at least ``posting_floor``; 0 turns it off;
    #: a positive number is a fixed budget.
    posting_budget: int = query_field(-1)
    #: Share of the ratings read per query when ``posting_budget`` is automatic. The
    #: overlap that decides exact cosine grows with the data, so a fixed budget loses
    #: recall as users are added (README, "Performance").
    posting_share: float = query_field(0.06)
    #: Smallest automatic budget (small data: reading a few more postings is cheap).
    posting_floor: int = query_field(100_000)
    random_state: int = 0


@dataclass(frozen=True, eq=False)
class Neighbours:
    """Nearest users, most similar first (positions and cosine similarities)."""

    user_idx: np.ndarray   # int64
    similarity: np.ndarray  # float32, in (0, 1]


class UserKNN:
    """User-user CF over an hnswlib index (see the module docstring)."""

    name = "user-user"

    def __init__(self, config: UserKNNConfig | None = None, **overrides):
        self.config = replace(config or UserKNNConfig(), **overrides)
        self._fit_rows: tuple[sp.csr_matrix, UserRows] | None = None

    # -- fitting ----------------------------------------------------------------------
    def fit(self, data: TrainingData) -> Self:
        """Learn the projection and index every user of ``data``; returns self."""
        c = self.config
        self.mean_ = global_mean(data.ratings)
        with PROFILER.stage("similarity rows"):
            similarity = self._similarity(data.ratings)
        with PROFILER.stage("vectors", memory=False):
            self.components_ = self._fit_components(similarity)
            vectors = self.project(similarity)
        with PROFILER.stage("postings"):
            postings = similarity.tocsc()
        with PROFILER.stage("index build"):
            self.index_ = AnnIndex(self.components_.shape[0], m=c.m,
                                   ef_construction=c.ef_construction,
                                   num_threads=c.index_threads)
            self.index_.build(vectors, np.arange(len(vectors)))
        # Handed once to the first snapshot (see rows()), so they are not recomputed.
        self._fit_rows = (data.ratings, UserRows(similarity, vectors, postings))
        return self

    def _fit_components(self, similarity: sp.csr_matrix) -> np.ndarray:
        if similarity.nnz == 0 or min(similarity.shape) < 2:
            # No ratings yet, or one user or one anime: nothing to project, and
            # TruncatedSVD needs at least two of each. Every vector is then zero,
            # so no user enters the index and nobody has neighbours.
            return np.zeros((1, similarity.shape[1]), dtype=np.float32)
        dim = max(1, min(self.config.dim, min(similarity.shape) - 1))
        svd = TruncatedSVD(n_components=dim, algorithm="randomized",
                           n_iter=self.config.svd_n_iter, random_state=self.config.random_state)
        # The heavy part is the single-threaded sparse product; threaded BLAS for
        # the small QR steps was measured 10x slower on a busy 2-core machine.
        with threadpool_limits(limits=1, user_api="blas"):
            svd.fit(similarity)
        return svd.components_.astype(np.float32)  # (dim, n_items)

    def _similarity(self, ratings: sp.csr_matrix) -> sp.csr_matrix:
        return similarity_rows(ratings, mean=self.mean_, damping=self.config.damping,
                               centre=self.config.centre)

    def project(self, similarity: sp.csr_matrix) -> np.ndarray:
        """Compact vectors (float32, n x dim) of normalised similarity rows."""
        return np.asarray(similarity @ self.components_.T, dtype=np.float32)

    def rows(self, ratings: sp.csr_matrix, similarity: sp.csr_matrix | None = None,
             vectors: np.ndarray | None = None) -> UserRows:
        """The user-user rows of ``ratings`` (the matrix the model was fitted or saved on).

        The rows computed by :meth:`fit` are handed over once without
        recomputing; persisted ``similarity`` and ``vectors`` are taken as given.
        """
        fitted, self._fit_rows = self._fit_rows, None
        if fitted is not None and fitted[0] is ratings and similarity is None:
            return fitted[1]
        if similarity is None:
            similarity = self._similarity(ratings)
        if vectors is None:
            vectors = self.project(similarity)
        return UserRows(similarity, vectors, similarity.tocsc())

    def with_config(self, config: UserKNNConfig) -> UserKNN:
        """This fitted model with other query-time settings, sharing its fitted arrays.

        The projection and the index are read-only after fit, so sharing them is
        safe; ``config`` must agree on every fit field.
        """
        if fit_key(config) != fit_key(self.config):
            raise ValueError("with_config changes only query-time settings")
        other = UserKNN(config)
        other.mean_, other.components_, other.index_ = self.mean_, self.components_, self.index_
        return other

    # -- new users --------------------------------------------------------------------
    def grow(self, snapshot: Snapshot, user_ids: np.ndarray, rows: sp.csr_matrix) -> Snapshot:
        """A new snapshot with users appended (ids above every known one, raw rating rows).

        The old snapshot is untouched. Their vectors are added to the hnswlib
        index first; a reader of an older snapshot ignores labels past its own
        users, so the index may run ahead of what is published.
        """
        data, old = snapshot.data, snapshot.rows
        similarity = self._similarity(rows)
        vectors = self.project(similarity)
        start = snapshot.n_users
        self.index_.add(vectors, np.arange(start, start + rows.shape[0]))
        new_data = TrainingData(anime=data.anime, users=data.users.appended(user_ids),
                                items=data.items,
                                ratings=append_rows(data.ratings, rows.astype(np.float32)))
        return Snapshot(new_data, UserRows(append_rows(old.similarity, similarity),
                                           np.vstack([old.vectors, vectors]), old.postings))

    # -- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The projection, the mean and the hnswlib graph (the rows are the snapshot's)."""
        return {"mean": float(self.mean_), "components": self.components_,
                "index": self.index_}

    @classmethod
    def from_state(cls, state: dict, data: TrainingData,
                   config: UserKNNConfig | None = None) -> UserKNN:
        """A fitted model from :meth:`state_dict` output; ``state["index"]`` is a file path."""
        knn = cls(config)
        components = np.asarray(state["components"], dtype=np.float32)
        if components.ndim != 2 or components.shape[1] != data.ratings.shape[1]:
            raise ValueError("the saved projection does not fit the catalogue")
        knn.mean_ = float(state["mean"])
        knn.components_ = components
        c = knn.config
        knn.index_ = AnnIndex.load(Path(state["index"]), components.shape[0], m=c.m,
                                   ef_construction=c.ef_construction)
        if len(knn.index_) > data.ratings.shape[0]:
            raise ValueError("the saved index has more users than the data")
        return knn

    # -- neighbours -------------------------------------------------------------------
    def _query_row(self, profile: UserProfile,
                   snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The query's similarity row as (anime positions, values) and its compact vector.

        A known user's row is read straight from the CSR arrays: scipy's row
        slicing builds a matrix object and cost a tenth of the whole ANN query.
        """
        rows = snapshot.rows
        if profile.user_idx is not None and profile.user_idx < snapshot.n_users:
            sim = rows.similarity
            start, end = sim.indptr[profile.user_idx], sim.indptr[profile.user_idx + 1]
            return sim.indices[start:end], sim.data[start:end], rows.vectors[profile.user_idx]
        row = self._similarity(profile.row(snapshot.data.ratings.shape[1]))
        return row.indices, row.data, self.project(row)[0]

    def neighbours(self, profile: UserProfile, snapshot: Snapshot, k: int | None = None, *,
                  exact: bool = False, n_candidates: int | None = None,
                  ef: int | None = None) -> Neighbours:
        """The ``k`` most similar users with positive cosine, never the user themself.

        ``exact=True`` scans every user (brute force on the sparse rows) instead of
        re-ranking ANN candidates; it is the reference the ANN is measured against.
        ``n_candidates`` (both candidate counts) and ``ef`` override the config
        for this call.
        """
        c = self.config
        k = c.n_neighbours if k is None else int(k)
        rows = snapshot.rows
        items, values, vector = self._query_row(profile, snapshot)
        if len(items) == 0:
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        # The query as a dense vector: sparse-matrix x dense-vector is one fast
        # C loop, where sparse x sparse builds a sparse result first.
        dense = np.zeros(rows.similarity.shape[1], dtype=np.float32)
        dense[items] = values
        if exact:
            # Brute force over the matrix as it is (no row copy): the fair baseline.
            sims = rows.similarity @ dense
            candidates = np.arange(snapshot.n_users)
        else:
            want = max(k, c.n_candidates if n_candidates is None else n_candidates) + 1
            n_ann = c.ann_candidates if n_candidates is None else n_candidates
            candidates, _ = self.index_.query(vector, n_ann + 1, ef=c.ef if ef is None else ef)
            candidates = np.union1d(candidates,
                                    self.posting_candidates(rows, items, values, want))
            # Labels added after this snapshot was published are not in it.
            candidates = candidates[candidates < snapshot.n_users]
            sims = row_dots(rows.similarity, candidates, dense)
        if profile.user_idx is not None:
            sims = np.where(candidates == profile.user_idx, 0.0, sims)
        keep = sims > 1e-9
        candidates, sims = candidates[keep], sims[keep].astype(np.float32)
        if len(sims) > k:
            top = np.argpartition(-sims, k - 1)[:k]
            candidates, sims = candidates[top], sims[top]
        order = np.lexsort((candidates, -sims))
        return Neighbours(candidates[order].astype(np.int64), sims[order])

    def posting_budget(self, n_ratings: int) -> int:
        """Postings read per query over ``n_ratings`` ratings (0: the inverted index is off)."""
        c = self.config
        if c.posting_budget >= 0:
            return int(c.posting_budget)
        return max(int(c.posting_floor), int(c.posting_share * n_ratings))

    def posting_candidates(self, rows: UserRows, items: np.ndarray, values: np.ndarray,
                           want: int) -> np.ndarray:
        """Users with the largest partial cosine over the query's rarest anime.

        ``items`` and ``values`` are the query's similarity row (anime positions
        and normalised values).

        Compact SVD vectors capture taste in popular anime but blur the overlap
        on rare titles that dominates exact cosine for light users (at 73k users,
        ANN candidates alone reached recall@20 of only 0.55-0.80). The inverted
        index reads the rarest anime first, whose posting lists are short, until
        the budget (:meth:`posting_budget`) is spent; the loop is compiled
        (:mod:`recommender.models.postings`).
        """
        postings = rows.postings
        budget = self.posting_budget(postings.nnz)
        if budget <= 0 or len(items) == 0:
            return np.empty(0, np.int64)
        users, partial = posting_scores(postings, items, values, budget)
        if len(users) > want:
            users = users[np.argpartition(-partial, want - 1)[:want]]
        return np.unique(users).astype(np.int64)

    # -- scoring ----------------------------------------------------------------------
    def score(self, profile: UserProfile, context: Context) -> Scores:
        """Similarity-weighted votes of the neighbours, in [0, 1] per item.

        A neighbour's vote for an item is rating/10 when they liked it (rating >=
        ``like_threshold``), ``watched_weight`` for a -1 and ``disliked_weight``
        for a lower rating; the score is the mean vote over all neighbours
        weighted by similarity ** ``similarity_power``, so it grows with both
        support and rating.
        """
        c = self.config
        snapshot = context.snapshot
        neigh = self.neighbours(profile, snapshot, context.neighbours)
        n_items = snapshot.data.ratings.shape[1]
        if len(neigh.user_idx) == 0:
            return Scores(np.zeros(n_items, np.float32), self.name,
                          context={"neighbours": neigh, "users": snapshot.data.users})
        sub = snapshot.data.ratings[neigh.user_idx]
        data = sub.data
        liked = data >= c.like_threshold
        votes = np.where(liked, data / 10.0,
                         np.where(data < 0, c.watched_weight, c.disliked_weight))
        weights = neigh.similarity.astype(np.float64) ** c.similarity_power

        def column_sums(values: np.ndarray, row_weights: np.ndarray) -> np.ndarray:
            m = sp.csr_matrix((values, sub.indices, sub.indptr), shape=sub.shape)
            return np.asarray(m.T @ row_weights).ravel()

        ones = np.ones(len(weights))
        values = column_sums(votes, weights) / weights.sum()
        support = column_sums(liked.astype(np.float64), ones)
        like_sum = column_sums(np.where(liked, data, 0.0), ones)
        mean = np.divide(like_sum, support, out=np.zeros_like(like_sum), where=support > 0)
        return Scores(
            values.astype(np.float32), self.name,
            details={"support": support.astype(np.int32),
                     "neighbour_mean": mean.astype(np.float32)},
            context={"neighbours": neigh, "sub": sub, "users": snapshot.data.users},
        )

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        """Who of the nearest users liked (or watched) each item; ``neighbours`` holds user ids."""
        neigh: Neighbours = scores.context["neighbours"]
        users: IdIndex = scores.context["users"]
        k = len(neigh.user_idx)
        support = scores.details.get("support")
        mean = scores.details.get("neighbour_mean")
        sub = scores.context.get("sub")
        csc = sub.tocsc() if sub is not None else None
        who: list[list[int]] = []
        reasons = []
        for item in item_idx:
            if csc is None or support is None:
                who.append([])
                reasons.append("no similar users found")
                continue
            start, end = csc.indptr[item], csc.indptr[item + 1]
            rows, vals = csc.indices[start:end], csc.data[start:end]
            likers = rows[vals >= self.config.like_threshold]  # neighbour order = similarity order
            who.append(sorted(likers.tolist())[:10])
            s = int(support[item])
            if s:
                reasons.append(f"liked by {s} of your {k} nearest users (mean {mean[item]:.1f})")
            else:
                reasons.append(f"watched by {len(rows)} of your {k} nearest users")
        neighbour_ids = [[int(users.ids[neigh.user_idx[r]]) for r in rows] for rows in who]
        return Explanation(reasons, {"neighbours": neighbour_ids})
