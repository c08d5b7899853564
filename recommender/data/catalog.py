"""Reading the anime catalogue and rating files (Kaggle CSV format) into typed frames.

The 2016 Kaggle ``anime.csv`` is the catalogue: its ``anime_id`` is the
MyAnimeList id, which the 2020 data set shares. The 2020 files add English and
Japanese titles and synopses; they only enrich rows the 2016 catalogue has.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.core.paths import DATA_DIR
from recommender.data.checks import (
    MAX_ID,
    MAX_TYPE_LENGTH,
    checked_text,
    first_data_row_too_long,
    line_of,
    open_text,
    reading,
    record_lines,
    whole_numbers,
)
from recommender.errors import DataFormatError

#: Columns of the Kaggle 2016 ``anime.csv``, in file order.
ANIME_COLUMNS = ("anime_id", "name", "genre", "type", "episodes", "rating", "members")
#: Columns of the Kaggle 2016 ``rating.csv``.
RATING_COLUMNS = ("user_id", "anime_id", "rating")
#: Columns every catalogue frame has after :func:`clean_anime`.
CATALOGUE_COLUMNS = (
    "anime_id", "name", "genre", "type", "episodes", "rating", "members",
    "english_name", "japanese_name", "synopsis",
)

BUNDLED_ANIME = DATA_DIR / "anime.csv"
BUNDLED_RATINGS = DATA_DIR / "rating_subset.csv.gz"
BUNDLED_ANIME_2020 = DATA_DIR / "anime_2020.csv.gz"
BUNDLED_SYNOPSIS_2020 = DATA_DIR / "anime_with_synopsis_2020.csv.gz"

# The 2020 files use the literal "Unknown" for missing values, and 745 synopses
# are a placeholder rather than text; neither should reach TF-IDF or the UI.
_PLACEHOLDER_SYNOPSIS = "no synopsis"


def _text(series: pd.Series) -> pd.Series:
    """Strings with HTML entities decoded (``Gintama&#039;`` -> ``Gintama'``), NaN -> ""."""
    return series.fillna("").astype(str).map(html.unescape).str.strip()


def clean_anime(frame: pd.DataFrame, *, source: str = "anime frame",
                lines: Sequence[int] | None = None) -> pd.DataFrame:
    """Return a typed, checked copy of a Kaggle-format anime frame.

    Required columns are ``anime_id`` and ``name``; the other Kaggle columns are
    filled when missing. ``episodes`` becomes a nullable integer ("Unknown" ->
    <NA>), ``rating`` (the community average, not a user's) a float, and names
    are HTML-unescaped. Optional ``english_name``, ``japanese_name`` and
    ``synopsis`` columns are kept, or added empty. Every value is checked
    against the database's column limits first; a bad one raises
    :class:`DataFormatError` naming ``source``, its line (``lines`` maps rows to
    file lines; default: row + 2) and the value.
    """
    missing = [c for c in ("anime_id", "name") if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{source}: missing column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)

    def where(row: int) -> str:
        return f"{source}: line {line_of(lines, row)}"

    ids = whole_numbers(frame["anime_id"], "anime_id", 1, MAX_ID, where)
    out = pd.DataFrame({"anime_id": ids})
    dup = out["anime_id"].duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataFormatError(f"{where(row)}: anime_id {int(ids[row])} appears more than once")
    out["name"] = _text(checked_text(frame["name"], "name", where))
    for column in ("genre", "english_name", "japanese_name", "synopsis"):
        out[column] = _text(checked_text(frame[column], column, where)) if column in frame else ""
    out["type"] = (_text(checked_text(frame["type"], "type", where, MAX_TYPE_LENGTH))
                   if "type" in frame else "")
    if "episodes" in frame:
        # "Unknown" (the Kaggle file's word) and other text mean: not known.
        episodes = frame["episodes"].where(pd.to_numeric(frame["episodes"], errors="coerce")
                                           .notna())
        out["episodes"] = pd.array(whole_numbers(episodes, "episodes", 0, MAX_ID, where,
                                                 missing="na", text=frame["episodes"]),
                                   dtype="Float64").astype("Int64")
    else:
        out["episodes"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    if "rating" in frame:
        rating = pd.to_numeric(frame["rating"], errors="coerce").astype(np.float64)
        bad = (rating.notna() & ~rating.between(0.0, 10.0)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{where(row)}: rating {str(frame['rating'].iloc[row])[:40]!r}"
                                  " is not a community score in 0..10")
        out["rating"] = rating.to_numpy()
    else:
        out["rating"] = np.nan
    if "members" in frame:
        out["members"] = whole_numbers(frame["members"].fillna(0), "members", 0, MAX_ID, where,
                                       text=frame["members"])
    else:
        out["members"] = np.zeros(len(frame), dtype=np.int64)
    return out


def read_anime_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate a Kaggle 2016 ``anime.csv`` (or ``.gz``, ``.zip``...) into a catalogue.

    Raises :class:`DataFormatError` naming the file, the line (the header is
    line 1; a name spanning lines counts them all) and the problem: a file that
    cannot be read or decompressed, a row with more fields than the header, a
    missing column, or a value outside its column's limits.
    """
    path = Path(path)
    with reading(path):
        with open_text(path) as handle:
            text = handle.read()
        extra = first_data_row_too_long(text[:1 << 16])
        if extra is not None:
            raise DataFormatError(f"{path}: line 2: {extra} fields where the header has fewer")
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            na_values=[""], skip_blank_lines=False, index_col=False)
    missing = [c for c in ("anime_id", "name") if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                              f"(expected {', '.join(ANIME_COLUMNS)})")
    lines = record_lines(text)
    return clean_anime(frame, source=str(path), lines=lines if len(lines) == len(frame) else None)


def read_2020_extras(anime_2020: str | Path, synopsis_2020: str | Path | None) -> pd.DataFrame:
    """English/Japanese titles and synopses from the 2020 data set, by ``anime_id``."""
    cols = ["MAL_ID", "English name", "Japanese name"]
    extra = pd.read_csv(anime_2020, usecols=cols, dtype=str, keep_default_na=False)
    extra = extra.rename(
        columns={"MAL_ID": "anime_id", "English name": "english_name",
                 "Japanese name": "japanese_name"}
    )
    extra["synopsis"] = ""
    if synopsis_2020 is not None and Path(synopsis_2020).exists():
        syn = pd.read_csv(synopsis_2020, usecols=["MAL_ID", "sypnopsis"], dtype=str,
                          keep_default_na=False)
        syn = syn.rename(columns={"MAL_ID": "anime_id", "sypnopsis": "synopsis"})
        extra = extra.drop(columns="synopsis").merge(syn, on="anime_id", how="left")
    extra["anime_id"] = pd.to_numeric(extra["anime_id"], errors="coerce")
    extra = extra.dropna(subset=["anime_id"]).astype({"anime_id": np.int64})
    for column in ("english_name", "japanese_name", "synopsis"):
        values = _text(extra[column])
        values = values.mask(values.str.lower().isin({"unknown", ""}), "")
        extra[column] = values
    extra["synopsis"] = extra["synopsis"].mask(
        extra["synopsis"].str.lower().str.startswith(_PLACEHOLDER_SYNOPSIS), ""
    )
    return extra.drop_duplicates("anime_id")


def enrich(catalogue: pd.DataFrame, extras: pd.DataFrame) -> pd.DataFrame:
    """Fill empty English/Japanese names and synopses in ``catalogue`` from ``extras``."""
    merged = catalogue.merge(extras, on="anime_id", how="left", suffixes=("", "_2020"))
    for column in ("english_name", "japanese_name", "synopsis"):
        fill = merged.pop(f"{column}_2020").fillna("")
        merged[column] = merged[column].where(merged[column] != "", fill)
    # An English name equal to the main name adds nothing to search or display.
    merged.loc[merged["english_name"] == merged["name"], "english_name"] = ""
    return merged


def load_bundled_anime() -> pd.DataFrame:
    """The bundled catalogue: 2016 ``anime.csv`` enriched with 2020 titles and synopses."""
    catalogue = read_anime_csv(BUNDLED_ANIME)
    if BUNDLED_ANIME_2020.exists():
        catalogue = enrich(catalogue, read_2020_extras(BUNDLED_ANIME_2020, BUNDLED_SYNOPSIS_2020))
    return catalogue


def load_bundled_ratings() -> pd.DataFrame:
    """The bundled 612k-row real subset of the 2016 ``rating.csv``."""
    return pd.read_csv(
        BUNDLED_RATINGS, dtype={"user_id": np.int64, "anime_id": np.int64, "rating": np.int8}
    )


def clean_ratings(frame: pd.DataFrame, *, source: str = "ratings frame") -> pd.DataFrame:
    """Validate and type a ratings frame: ``user_id``, ``anime_id`` int64, ``rating`` int8.

    Ids are whole numbers in 1..2**31-1 (the database's limit) and ``rating``
    is -1 (watched, not rated) or 1..10. Raises :class:`DataFormatError`
    naming the first bad row.
    """
    missing = [c for c in RATING_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{source}: missing column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)

    def where(row: int) -> str:
        return f"{source}: row {row}"

    users = whole_numbers(frame["user_id"], "user_id", 1, MAX_ID, where)
    anime = whole_numbers(frame["anime_id"], "anime_id", 1, MAX_ID, where)
    rating = whole_numbers(frame["rating"], "rating", -1, 10, where)
    if (rating == 0).any():
        row = int(np.flatnonzero(rating == 0)[0])
        raise DataFormatError(f"{where(row)}: rating 0 is outside -1..10 (-1 = watched, "
                              "else 1..10)")
    return pd.DataFrame({"user_id": users, "anime_id": anime, "rating": rating.astype(np.int8)})


#: The catalogue's ids are MyAnimeList ids, so each anime has a public page there.
MAL_URL = "https://myanimelist.net/anime/{anime_id}"


def anime_url(anime_id: int) -> str:
    """The MyAnimeList page of ``anime_id`` (built from the integer only, never from text)."""
    return MAL_URL.format(anime_id=int(anime_id))
