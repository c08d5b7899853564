"""Franchises from titles: sequels, seasons, films and OVAs of one series share a key.

MyAnimeList's 2016 catalogue has no relation table, so the grouping is by
title: the part before a colon, lower-cased, without punctuation, season or
sequel markers ("2nd Season", "II", "Movie", "OVA", a trailing number) and
without a leading "the". "Gintama'", "Gintama°", "Gintama: Enchousen" and
"Gintama Movie" become "gintama"; "Shingeki no Kyojin Season 2" becomes
"shingeki no kyojin". A key shared by one title only is no franchise (-1).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Words that mark a sequel or a format rather than a different series.
_MARKERS = frozenset({
    "season", "seasons", "movie", "movies", "film", "ova", "ovas", "ona", "special",
    "specials", "tv", "the", "series", "part", "final", "2nd", "3rd", "4th", "5th", "6th",
    "ii", "iii", "iv", "v", "vi", "first", "second", "third", "new", "zoku", "shin",
    "gekijouban", "kan", "recap", "picture", "drama", "episode", "episodes",
})
_SPLIT = re.compile(r"\s*(?::|\s-\s|\(|~)\s*")
_NON_WORD = re.compile(r"[^0-9a-z ]+")
_NUMBER = re.compile(r"^\d+(st|nd|rd|th)?$")


def franchise_key(name: object) -> str:
    """The title's series key ("" when nothing is left of it)."""
    text = str(name or "").lower().replace("&#039;", "'")
    head = _SPLIT.split(text, maxsplit=1)[0]
    words = _NON_WORD.sub("", head.replace("-", " ").replace(";", "")).split()
    kept = [w for w in words if w not in _MARKERS and not _NUMBER.match(w)]
    return " ".join(kept)


def franchise_groups(anime: pd.DataFrame) -> np.ndarray:
    """Per catalogue row, a franchise number (int64), or -1 for a title with no relative."""
    keys = anime["name"].map(franchise_key).to_numpy(dtype=object) if len(anime) else \
        np.empty(0, dtype=object)
    codes, inverse, counts = np.unique(keys.astype(str), return_inverse=True, return_counts=True)
    shared = (counts[inverse] > 1) & (codes[inverse] != "")
    return np.where(shared, inverse, -1).astype(np.int64)
