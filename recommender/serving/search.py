"""Typo-tolerant title search over Romaji, English and Japanese names (rapidfuzz)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rapidfuzz import fuzz, process, utils
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.errors import InvalidParameterError

#: Longest query accepted; titles are far shorter, so more is noise or abuse.
MAX_QUERY_LENGTH = 200
_TITLE_COLUMNS = ("name", "english_name", "japanese_name")
#: Titles scored by WRatio per query, chosen by character n-gram overlap. WRatio
#: over all ~29k title variants of the catalogue costs ~100 ms; over a shortlist
#: it costs well under 1 ms, and a title that shares few n-grams with the query
#: would not pass WRatio's cut-off anyway.
SHORTLIST = 400


@dataclass(frozen=True, eq=False)
class SearchHits:
    """Matches of one query, best first, one per anime."""

    item_idx: np.ndarray       # int64 catalogue positions
    matched_title: np.ndarray  # object: the best-matching title variant
    matched_on: np.ndarray     # object: its column ("name", "english_name", "japanese_name")
    match_score: np.ndarray    # float64: fuzzy score 0-100 of that variant
    rank_score: np.ndarray     # float64: match_score plus the popularity bonus (the order)

    @classmethod
    def empty(cls) -> SearchHits:
        none = np.zeros(0, dtype=object)
        return cls(np.zeros(0, np.int64), none, none, np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.item_idx)


class TitleSearch:
    """Fuzzy autocomplete over every title variant of the catalogue.

    Titles are normalised once (lower case, punctuation to spaces), so
    "steins gate" matches "Steins;Gate". The match score is rapidfuzz's WRatio
    (0-100); up to ``popularity_bonus`` points are added by log-popularity so a
    popular exact title ranks before an obscure partial match.
    """

    def __init__(self, anime: pd.DataFrame, popularity_bonus: float = 8.0, *,
                 state: dict | None = None):
        titles, owners, columns = [], [], []
        for column in _TITLE_COLUMNS:
            if column not in anime:
                continue
            values = anime[column].fillna("").astype(str).to_numpy()
            for item, title in enumerate(values):
                if title:
                    titles.append(title)
                    owners.append(item)
                    columns.append(column)
        self.titles = np.array(titles, dtype=object)
        self.owners = np.array(owners, dtype=np.int64)
        self.columns = np.array(columns, dtype=object)
        self.processed = [utils.default_process(t) for t in titles]
        self.lengths = np.array([len(t) for t in self.processed], dtype=np.int64)
        if state is not None:
            self._restore(state)
        elif self.processed:
            # Character 2-3-grams within words: robust to typos and word order, and
            # Japanese titles get n-grams too.
            ngrams = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), lowercase=False,
                                     dtype=np.float32)
            title_ngrams = ngrams.fit_transform(self.processed)
            vocabulary = np.empty(len(ngrams.vocabulary_), dtype=object)
            for gram, column in ngrams.vocabulary_.items():
                vocabulary[column] = gram
            self._vocabulary = vocabulary.astype(str)
            self._idf = ngrams.idf_.astype(np.float32)
            # Column-major copy: a query touches only its own n-grams' postings.
            self._postings = title_ngrams.tocsc()
        else:
            self._vocabulary, self._idf, self._postings = np.zeros(0, str), None, None
        self._lookup = {str(gram): j for j, gram in enumerate(self._vocabulary)}
        members = anime["members"].fillna(0).to_numpy(np.float64) if "members" in anime else None
        if members is None or members.max() <= 0:
            self.bonus = np.zeros(len(anime))
        else:
            self.bonus = popularity_bonus * np.log1p(members) / np.log1p(members.max())

    # -- persistence (see recommender.serving.cache) --------------------------------------
    def state_dict(self) -> dict:
        """The fitted n-gram index as arrays (the titles are re-read from the catalogue)."""
        if self._postings is None:
            return {"n_titles": 0}
        post = self._postings
        return {"n_titles": len(self.processed), "vocabulary": self._vocabulary,
                "idf": self._idf, "indptr": post.indptr, "indices": post.indices,
                "data": post.data}

    def _restore(self, state: dict) -> None:
        n_titles = int(state["n_titles"])
        if n_titles != len(self.processed):
            raise ValueError("the saved title index is of another catalogue")
        if n_titles == 0:
            self._vocabulary, self._idf, self._postings = np.zeros(0, str), None, None
            return
        vocabulary = np.asarray(state["vocabulary"])
        if vocabulary.dtype.kind != "U" or len(state["idf"]) != len(vocabulary):
            raise ValueError("the saved title index is malformed")
        self._vocabulary, self._idf = vocabulary, np.asarray(state["idf"], dtype=np.float32)
        self._postings = sp.csc_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=(n_titles, len(vocabulary)))

    @classmethod
    def from_state(cls, anime: pd.DataFrame, state: dict) -> TitleSearch:
        return cls(anime, state=state)

    def _query_ngrams(self, cleaned: str) -> tuple[np.ndarray, np.ndarray]:
        """Known n-gram columns of ``cleaned`` and their L2-normalised TF-IDF weights.

        The same n-grams as the fitted ``char_wb`` analyser (each word padded with
        one space, 2- and 3-grams) without a vectoriser call, which would cost
        more than the rest of the search.
        """
        counts: dict[int, int] = {}
        lookup = self._lookup
        for word in cleaned.split():
            padded = f" {word} "
            for n in (2, 3):
                for start in range(max(1, len(padded) - n + 1)):
                    column = lookup.get(padded[start:start + n])
                    if column is not None:
                        counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        weights = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        weights *= self._idf[columns]
        weights /= np.sqrt(np.dot(weights, weights))
        return columns, weights

    def search(self, query: str, limit: int = 10,
               hidden: np.ndarray | None = None) -> SearchHits:
        """Best matches first (see :class:`SearchHits`).

        ``hidden``: a boolean mask over anime positions never to return (adult titles
        when serving leaves them out), applied before ``limit`` so ``limit`` are still found.
        """
        if not isinstance(query, str):
            raise InvalidParameterError("search query must be text")
        if len(query) > MAX_QUERY_LENGTH:
            raise InvalidParameterError(
                f"search query is too long ({len(query)} characters; at most {MAX_QUERY_LENGTH})"
            )
        if limit <= 0:
            raise InvalidParameterError("limit must be a positive number")
        cleaned = utils.default_process(query)
        empty = SearchHits.empty()
        if not cleaned:
            return empty
        shortlist = self._shortlist(cleaned)
        if not len(shortlist):
            return empty
        processed = [self.processed[i] for i in shortlist]
        # WRatio scores partial matches, which suits a prefix being typed
        # ("naruto" -> "Naruto: Shippuuden") but also lets a short title hide
        # inside a long query ("K-On!" inside "attack on titan"). A title much
        # shorter than the query is therefore scored as a whole-string match.
        scores = process.cdist([cleaned], processed, scorer=fuzz.WRatio,
                               processor=None, dtype=np.uint8)[0].astype(np.float64)
        short = np.flatnonzero(self.lengths[shortlist] < 0.75 * len(cleaned))
        if len(short):
            scores[short] = process.cdist([cleaned], [processed[i] for i in short],
                                          scorer=fuzz.ratio, processor=None, dtype=np.uint8)[0]
        keep = scores >= 55
        if hidden is not None:
            keep &= ~hidden[self.owners[shortlist]]
        if not keep.any():
            return empty
        positions, scores = shortlist[keep], scores[keep]
        items = self.owners[positions]
        # One row per anime: its best-matching title variant (the first listed
        # column on ties), then anime by score plus popularity bonus.
        order = np.lexsort((positions, -scores, items))
        first = np.ones(len(order), dtype=bool)
        first[1:] = items[order][1:] != items[order][:-1]
        best = order[first]
        rank = scores[best] + self.bonus[items[best]]
        best = best[np.lexsort((items[best], -rank))][:limit]
        return SearchHits(item_idx=items[best], matched_title=self.titles[positions[best]],
                          matched_on=self.columns[positions[best]], match_score=scores[best],
                          rank_score=scores[best] + self.bonus[items[best]])

    def _shortlist(self, cleaned: str) -> np.ndarray:
        """Positions of the titles sharing the most character n-grams with the query.

        Two rankings are merged: cosine (favours titles of the query's length) and
        the share of the query's n-grams a title contains (favours longer titles
        that start with what is being typed).
        """
        if self._postings is None:
            return np.zeros(0, dtype=np.int64)
        columns, query_weights = self._query_ngrams(cleaned)
        if not len(columns):
            # No known n-gram (e.g. one character): fall back to every title.
            return np.arange(len(self.processed))
        post = self._postings
        spans = [(post.indptr[j], post.indptr[j + 1]) for j in columns]
        rows = np.concatenate([post.indices[a:b] for a, b in spans])
        weights = np.concatenate([post.data[a:b] * w for (a, b), w in zip(spans, query_weights)])
        n_titles = len(self.processed)
        cosine = np.bincount(rows, weights=weights, minlength=n_titles)
        contained = np.bincount(rows, minlength=n_titles) + 1e-3 * cosine
        half = SHORTLIST // 2
        picks = []
        for values in (cosine, contained):
            hits = np.flatnonzero(values > 0)
            if len(hits) > half:
                hits = hits[np.argpartition(-values[hits], half)[:half]]
            picks.append(hits)
        return np.unique(np.concatenate(picks))
