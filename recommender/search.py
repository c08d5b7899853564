"""Typo-tolerant title search over Romaji, English and Japanese names (rapidfuzz)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process, utils
from sklearn.feature_extraction.text import TfidfVectorizer

from .errors import InvalidParameterError

#: Longest query accepted; titles are far shorter, so more is noise or abuse.
MAX_QUERY_LENGTH = 200
_TITLE_COLUMNS = ("name", "english_name", "japanese_name")
#: Titles scored by WRatio per query, chosen by character n-gram overlap. WRatio
#: over all ~29k title variants of the catalogue costs ~100 ms; over a shortlist
#: it costs well under 1 ms, and a title that shares few n-grams with the query
#: would not pass WRatio's cut-off anyway.
SHORTLIST = 400


class TitleSearch:
    """Fuzzy autocomplete over every title variant of the catalogue.

    Titles are normalised once (lower case, punctuation to spaces), so
    "steins gate" matches "Steins;Gate". The match score is rapidfuzz's WRatio
    (0-100); up to ``popularity_bonus`` points are added by log-popularity so a
    popular exact title ranks before an obscure partial match.
    """

    def __init__(self, anime: pd.DataFrame, popularity_bonus: float = 8.0):
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
        # Character 2-3-grams within words: robust to typos and word order, and
        # Japanese titles get n-grams too.
        self._ngrams = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), lowercase=False,
                                       dtype=np.float32)
        title_ngrams = self._ngrams.fit_transform(self.processed) if self.processed else None
        # Column-major copy: a query touches only its own n-grams' postings.
        self._postings = None if title_ngrams is None else title_ngrams.tocsc()
        members = anime["members"].fillna(0).to_numpy(np.float64) if "members" in anime else None
        if members is None or members.max() <= 0:
            self.bonus = np.zeros(len(anime))
        else:
            self.bonus = popularity_bonus * np.log1p(members) / np.log1p(members.max())

    def search(self, query: str, limit: int = 10) -> pd.DataFrame:
        """Best matches first: ``item_idx``, ``matched_title``, ``matched_on``, ``match_score``.

        ``match_score`` is the fuzzy score (0-100) of the best title variant;
        ``rank_score`` adds the popularity bonus used for ordering.
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
        empty = pd.DataFrame({"item_idx": pd.Series(dtype=np.int64),
                              "matched_title": pd.Series(dtype=object),
                              "matched_on": pd.Series(dtype=object),
                              "match_score": pd.Series(dtype=np.float64),
                              "rank_score": pd.Series(dtype=np.float64)})
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
        weighted = process.cdist([cleaned], processed, scorer=fuzz.WRatio,
                                 processor=None, dtype=np.uint8)[0]
        whole = process.cdist([cleaned], processed, scorer=fuzz.ratio,
                              processor=None, dtype=np.uint8)[0]
        short = self.lengths[shortlist] < 0.75 * len(cleaned)
        scores = np.where(short, whole, weighted).astype(np.float64)
        keep = scores >= 55
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
        return pd.DataFrame({
            "item_idx": items[best],
            "matched_title": self.titles[positions[best]],
            "matched_on": self.columns[positions[best]],
            "match_score": scores[best],
            "rank_score": scores[best] + self.bonus[items[best]],
        })

    def _shortlist(self, cleaned: str) -> np.ndarray:
        """Positions of the titles sharing the most character n-grams with the query.

        Two rankings are merged: cosine (favours titles of the query's length) and
        the share of the query's n-grams a title contains (favours longer titles
        that start with what is being typed).
        """
        if self._postings is None:
            return np.zeros(0, dtype=np.int64)
        query = self._ngrams.transform([cleaned])
        if query.nnz == 0:
            # No known n-gram (e.g. one character): fall back to every title.
            return np.arange(len(self.processed))
        post = self._postings
        spans = [(post.indptr[j], post.indptr[j + 1]) for j in query.indices]
        rows = np.concatenate([post.indices[a:b] for a, b in spans])
        weights = np.concatenate([post.data[a:b] * w for (a, b), w in zip(spans, query.data)])
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
