"""Typo-tolerant title search over Romaji, English and Japanese names (rapidfuzz)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process, utils

from .errors import InvalidParameterError

#: Longest query accepted; titles are far shorter, so more is noise or abuse.
MAX_QUERY_LENGTH = 200
_TITLE_COLUMNS = ("name", "english_name", "japanese_name")


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
        # WRatio scores partial matches, which suits a prefix being typed
        # ("naruto" -> "Naruto: Shippuuden") but also lets a short title hide
        # inside a long query ("K-On!" inside "attack on titan"). A title much
        # shorter than the query is therefore scored as a whole-string match.
        weighted = process.cdist([cleaned], self.processed, scorer=fuzz.WRatio,
                                 processor=None, dtype=np.uint8)[0]
        whole = process.cdist([cleaned], self.processed, scorer=fuzz.ratio,
                              processor=None, dtype=np.uint8)[0]
        short = self.lengths < 0.75 * len(cleaned)
        scores = np.where(short, whole, weighted).astype(np.float64)
        positions = np.flatnonzero(scores >= 55)
        if not len(positions):
            return empty
        if len(positions) > 50 * limit:
            positions = positions[np.argsort(-scores[positions], kind="stable")[: 50 * limit]]
        scores = scores[positions]
        items = self.owners[positions]
        frame = pd.DataFrame({
            "item_idx": items,
            "matched_title": self.titles[positions],
            "matched_on": self.columns[positions],
            "match_score": scores,
            "rank_score": scores + self.bonus[items],
        })
        # One row per anime: its best-matching title variant.
        frame = frame.sort_values(["match_score", "rank_score"], ascending=False, kind="stable")
        frame = frame.drop_duplicates("item_idx")
        frame = frame.sort_values(["rank_score", "item_idx"], ascending=[False, True], kind="stable")
        return frame.head(limit).reset_index(drop=True)
