"""Reading the anime catalogue and rating files (Kaggle CSV format) into typed frames.

The 2016 Kaggle ``anime.csv`` is the catalogue: its ``anime_id`` is the
MyAnimeList id, which the 2020 data set shares. The 2020 files add English and
Japanese titles and synopses; they only enrich rows the 2016 catalogue has.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.core.paths import DATA_DIR
from recommender.core.validate import MAX_ID
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


def clean_anime(frame: pd.DataFrame, *, source: str = "anime frame") -> pd.DataFrame:
    """Return a typed copy of a Kaggle-format anime frame.

    Required columns are ``anime_id`` and ``name``; the other Kaggle columns are
    filled when missing. ``episodes`` becomes a nullable integer ("Unknown" ->
    <NA>), ``rating`` (the community average, not a user's) a float, and names
    are HTML-unescaped. Optional ``english_name``, ``japanese_name`` and
    ``synopsis`` columns are kept, or added empty.
    """
    missing = [c for c in ("anime_id", "name") if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{source}: missing column(s) {', '.join(missing)}")
    ids = pd.to_numeric(frame["anime_id"], errors="coerce")
    bad = ids.isna() | (ids != ids.round())
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(
            f"{source}: line {line + 2}: anime_id {frame['anime_id'].iloc[line]!r} "
            "is not an integer"
        )
    out = pd.DataFrame({"anime_id": ids.astype(np.int64)})
    if out["anime_id"].duplicated().any():
        dup = int(out["anime_id"][out["anime_id"].duplicated()].iloc[0])
        raise DataFormatError(f"{source}: anime_id {dup} appears more than once")
    out["name"] = _text(frame["name"])
    out["genre"] = _text(frame["genre"]) if "genre" in frame else ""
    out["type"] = _text(frame["type"]) if "type" in frame else ""
    episodes = frame["episodes"] if "episodes" in frame else pd.Series(np.nan, index=frame.index)
    out["episodes"] = pd.to_numeric(episodes, errors="coerce").astype("Int64")
    rating = frame["rating"] if "rating" in frame else pd.Series(np.nan, index=frame.index)
    out["rating"] = pd.to_numeric(rating, errors="coerce").astype(np.float64)
    members = frame["members"] if "members" in frame else pd.Series(0, index=frame.index)
    out["members"] = pd.to_numeric(members, errors="coerce").fillna(0).astype(np.int64)
    for column in ("english_name", "japanese_name", "synopsis"):
        out[column] = _text(frame[column]) if column in frame else ""
    return out.reset_index(drop=True)


def read_anime_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate a Kaggle 2016 ``anime.csv`` (or ``.gz``) into a clean catalogue frame.

    Raises :class:`DataFormatError` naming the file, the line (the header is
    line 1) and the problem: a missing column, an anime id that is not a
    positive integer within the database's limit, or an id listed twice.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                            skip_blank_lines=False)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(f"{path}: cannot read as CSV: {one_line(exc)}") from None
    missing = [c for c in ("anime_id", "name") if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                              f"(expected {', '.join(ANIME_COLUMNS)})")
    raw = frame["anime_id"]
    ids = pd.to_numeric(raw, errors="coerce")
    bad = (ids.isna() | (ids != ids.round()) | (ids <= 0) | (ids > MAX_ID)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"{path}: line {row + 2}: anime_id {raw.iloc[row]!r} is not a "
                              "positive integer")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataFormatError(f"{path}: line {row + 2}: anime_id {int(ids.iloc[row])} "
                              "appears more than once")
    return clean_anime(frame, source=str(path))


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (library messages can run to many lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


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

    ``rating`` is -1 (watched, not rated) or 1..10. Raises :class:`DataFormatError`
    naming the first bad row.
    """
    missing = [c for c in RATING_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{source}: missing column(s) {', '.join(missing)}")
    out = {}
    for column in RATING_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna().to_numpy() | (values.to_numpy() != np.round(values.to_numpy()))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{source}: row {row}: {column} {frame[column].iloc[row]!r} is not an integer"
            )
        out[column] = values.to_numpy()
    rating = out["rating"]
    bad = ~(((rating >= 1) & (rating <= 10)) | (rating == -1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"{source}: row {row}: rating {rating[row]} is outside -1..10")
    return pd.DataFrame({
        "user_id": out["user_id"].astype(np.int64),
        "anime_id": out["anime_id"].astype(np.int64),
        "rating": rating.astype(np.int8),
    })
