"""Seeded synthetic rating data shaped like the Kaggle anime data, at any scale.

The full 2016 ``rating.csv`` (7.8M rows) and the 2020 one (57M rows) are too
large to bundle, so benchmarks run on data generated here. The generator copies
the shape of the bundled real subset (``data/rating_subset.csv.gz``):

- anime popularity is heavy-tailed: an anime is drawn with probability
  proportional to ``members ** 1.1`` of its real catalogue row (the real
  subset's counts follow ``members`` with a log-log correlation of 0.96); after
  each user's duplicates are removed, the top 1% of anime hold ~13% of rows and
  the top 10% ~58% (real: 17% and 64%);
- rows per user follow the real subset's quantiles (median 56, tail to ~2,000),
  scaled so the total matches the target row count;
- each user's share of -1 ("watched, not rated") rows follows the real
  per-user distribution (half the users have none, ~6% have only -1), which
  gives ~19% -1 rows overall;
- taste is latent: every anime belongs to one of its genres as a taste cluster
  and has a latent vector near that cluster's centre; every user favours three
  clusters. Users watch partly by popularity, partly inside their clusters, and
  a rating is a noisy ``bias + user . item`` score cut at thresholds that give the
  real 1..10 distribution. So similar users really do share anime and ratings.

Generation is vectorised and runs over chunks of users, so memory stays bounded
at the 2020 scale (57M rows); ``rating.csv`` is written chunk by chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.data.catalog import BUNDLED_ANIME, BUNDLED_ANIME_2020, read_anime_csv

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scale:
    """Size of a synthetic data set: users, rated anime and (target) rating rows."""

    name: str
    n_users: int
    n_items: int
    n_rows: int
    catalogue: str = "2016"  # which real catalogue supplies ids, titles and genres


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", 400, 600, 40_000),
    "bundled": Scale("bundled", 5_877, 7_561, 612_076),
    "full2016": Scale("full2016", 73_515, 11_200, 7_813_737),
    "full2020": Scale("full2020", 325_772, 17_562, 57_000_000, catalogue="2020"),
}

# Percentiles of log(rows per user) and of the per-user -1 share in the bundled
# real subset (5,877 users with all of their rows), at these percentile points.
_PERCENTILES = np.array([0, 1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95,
                         97.5, 99, 99.5, 99.9, 100]) / 100.0
_LOG_ROWS = np.array([0.0, 0.0, 0.0, 0.693, 1.609, 2.197, 2.565, 2.89, 3.178, 3.638, 4.025,
                      4.369, 4.71, 4.89, 5.075, 5.296, 5.549, 5.903, 6.209, 6.523, 6.761,
                      7.249, 7.597])
_UNRATED_SHARE = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.004, 0.025, 0.083, 0.151, 0.288,
                           0.516, 0.846, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])

#: Real rating counts of the bundled subset (data/README.md), -1 and 1..10.
REAL_RATING_COUNTS = {-1: 118_001, 1: 1_448, 2: 2_010, 3: 3_458, 4: 8_199, 5: 22_291,
                      6: 49_422, 7: 107_211, 8: 128_031, 9: 98_078, 10: 73_927}
#: Statistics of the bundled real subset, for comparison (see :func:`rating_stats`).
REAL_STATS = {
    "users": 5_877, "anime": 7_561, "rows": 612_076,
    "rows_per_user_median": 56.0, "rows_per_user_mean": 104.1, "rows_per_user_p90": 257.0,
    "rows_per_user_max": 1_993, "unrated_share": 0.193, "users_only_unrated_share": 0.0565,
    "top1pct_anime_row_share": 0.169, "top10pct_anime_row_share": 0.640,
    "mean_explicit_rating": 7.81,
}
#: Real full-data sizes (Kaggle pages); the other statistics are known from the subset.
REAL_SIZES = {"full2016": (73_515, 11_200, 7_813_737), "full2020": (325_772, 17_562, 57_633_278)}

_POPULARITY_EXPONENT = 1.1
_LATENT_DIM = 16
_FAVOURITES = 3  # taste clusters per user
_POPULAR_SHARE = 0.45  # share of a user's picks drawn by popularity alone
_UNRATED_TIE = 0.08  # share of users whose -1 habit follows their activity


def _real_catalogue(kind: str) -> pd.DataFrame:
    """A real catalogue in the Kaggle 2016 columns (the 2020 one is converted)."""
    if kind == "2016":
        return read_anime_csv(BUNDLED_ANIME)
    raw = pd.read_csv(BUNDLED_ANIME_2020, dtype=str, keep_default_na=False,
                      usecols=["MAL_ID", "Name", "Genres", "Type", "Episodes", "Score", "Members"])
    frame = pd.DataFrame({
        "anime_id": raw["MAL_ID"], "name": raw["Name"],
        "genre": raw["Genres"].replace("Unknown", ""), "type": raw["Type"].replace("Unknown", ""),
        "episodes": raw["Episodes"], "rating": raw["Score"].replace("Unknown", ""),
        "members": raw["Members"],
    })
    from recommender.data.catalog import clean_anime

    return clean_anime(frame, source=str(BUNDLED_ANIME_2020))


class SyntheticRatings:
    """A seeded generator of one synthetic data set (catalogue + ratings).

    ``anime`` is the catalogue (real titles and genres of the ``n_items`` most
    popular real anime); :meth:`chunks` yields rating frames (``user_id``,
    ``anime_id``, ``rating`` int8), sorted by user and anime like the Kaggle
    file. The same ``random_state`` and ``users_per_chunk`` give the same data.
    """

    def __init__(self, scale: Scale | str, random_state: int = 0, users_per_chunk: int = 20_000):
        self.scale = SCALES[scale] if isinstance(scale, str) else scale
        self.random_state = int(random_state)
        self.users_per_chunk = int(users_per_chunk)
        rng = np.random.default_rng([self.random_state, 0])
        catalogue = _real_catalogue(self.scale.catalogue)
        catalogue = catalogue.sort_values(["members", "anime_id"], ascending=[False, True])
        n_items = min(self.scale.n_items, len(catalogue))
        self.anime = catalogue.head(n_items).sort_values("anime_id").reset_index(drop=True)
        members = self.anime["members"].to_numpy(np.float64).clip(1, None)
        pop = members ** _POPULARITY_EXPONENT
        self.popularity = pop / pop.sum()

        # Taste clusters are genres: an anime's cluster is one of its own genres.
        genre_lists = [[g.strip() for g in s.split(",") if g.strip()]
                       for s in self.anime["genre"].fillna("")]
        names = sorted({g for gs in genre_lists for g in gs}) or ["none"]
        lookup = {g: k for k, g in enumerate(names)}
        pick = rng.random(n_items)
        self.n_clusters = len(names)
        self.cluster = np.array([lookup[gs[int(p * len(gs))]] if gs else int(p * len(names))
                                 for gs, p in zip(genre_lists, pick)], dtype=np.int64)
        self.centres = rng.normal(0, 1, (self.n_clusters, _LATENT_DIM)) / np.sqrt(_LATENT_DIM)
        self.item_vectors = (self.centres[self.cluster]
                             + 0.6 * rng.normal(0, 1, (n_items, _LATENT_DIM)) / np.sqrt(_LATENT_DIM)
                             ).astype(np.float32)
        community = self.anime["rating"].fillna(self.anime["rating"].mean()).to_numpy(np.float64)
        spread = community.std() or 1.0
        self.item_bias = 0.6 * (community - community.mean()) / spread

        # Sampling inside a cluster: items ordered by cluster, and a cumulative
        # popularity that runs from c to c+1 over cluster c, so one searchsorted
        # of (cluster + uniform) picks an item of that cluster by popularity.
        order = np.argsort(self.cluster, kind="stable")
        within = self.popularity[order]
        cl = self.cluster[order]
        totals = np.bincount(cl, weights=within, minlength=self.n_clusters)
        csum = np.cumsum(within)
        start = np.concatenate([[0.0], np.cumsum(totals)])[cl]
        self._cluster_order = order
        self._cluster_cdf = cl + (csum - start) / totals[cl]
        self._pop_cdf = np.cumsum(self.popularity)
        self._pop_cdf /= self._pop_cdf[-1]
        # A cluster is favoured in proportion to its popularity, so that the
        # in-cluster picks keep the catalogue's heavy-tailed popularity.
        self._cluster_pick = np.cumsum(totals) / totals.sum()

        self._count_shift = self._calibrate_counts()
        self._thresholds = self._calibrate_thresholds()

    # -- calibration ------------------------------------------------------------------
    def _draw_counts(self, quantiles: np.ndarray) -> np.ndarray:
        logs = np.interp(quantiles, _PERCENTILES, _LOG_ROWS) + self._count_shift
        cap = max(1, min(len(self.anime), 2_000 if self.scale.catalogue == "2016" else 10_000))
        return np.clip(np.rint(np.exp(logs)), 1, cap).astype(np.int64)

    def _calibrate_counts(self) -> float:
        """Shift of log(rows per user) so that the expected total is the target."""
        self._count_shift = 0.0
        sample = self._draw_counts(np.random.default_rng([self.random_state, 1]).random(200_000))
        target = self.scale.n_rows / self.scale.n_users
        shift = 0.0
        for _ in range(6):
            shift += np.log(target / sample.mean())
            self._count_shift = shift
            uniform = np.random.default_rng([self.random_state, 1]).random(200_000)
            sample = self._draw_counts(uniform)
        return shift

    def _calibrate_thresholds(self) -> np.ndarray:
        """Cut points of the latent score that reproduce the real 1..10 distribution."""
        # A pilot block of users goes through the real process, because dedupe
        # pushes heavy users towards obscure (lower-rated) anime.
        rng = np.random.default_rng([self.random_state, 2])
        users = self._users(rng, 4_000)
        rows, items = self._distinct_items(rng, users, self._draw_counts(users["activity"]))
        z = self._latent_scores(rng, users, rows, items)
        real = np.array([REAL_RATING_COUNTS[r] for r in range(1, 11)], dtype=np.float64)
        cum = np.cumsum(real)[:-1] / real.sum()
        return np.quantile(z, cum)

    # -- pieces -----------------------------------------------------------------------
    def _users(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        favourites = np.minimum(np.searchsorted(self._cluster_pick, rng.random((n, _FAVOURITES)),
                                                side="right"), self.n_clusters - 1)
        weights = rng.dirichlet(np.full(_FAVOURITES, 0.7), n)
        taste = np.einsum("uf,ufd->ud", weights, self.centres[favourites])
        taste = (1.6 * taste + 0.5 * rng.normal(0, 1, (n, _LATENT_DIM)) / np.sqrt(_LATENT_DIM)
                 ).astype(np.float32)
        # Heavy users leave more titles unrated (as in the real data): the -1 share's
        # quantile is tied to the activity quantile for some users.
        activity = rng.random(n)
        tied = rng.random(n) < _UNRATED_TIE
        share_q = np.where(tied, activity, rng.random(n))
        return {"favourites": favourites, "cum_weights": np.cumsum(weights, axis=1),
                "taste": taste, "bias": rng.normal(0, 0.45, n), "activity": activity,
                "unrated": np.interp(share_q, _PERCENTILES, _UNRATED_SHARE)}

    def _pick_items(self, rng: np.random.Generator, users: dict, rows: np.ndarray) -> np.ndarray:
        """One item per entry of ``rows`` (a local user number): popular or in-cluster."""
        n = len(rows)
        by_pop = rng.random(n) < _POPULAR_SHARE
        items = np.empty(n, dtype=np.int64)
        items[by_pop] = np.searchsorted(self._pop_cdf, rng.random(int(by_pop.sum())), side="right")
        rest = np.flatnonzero(~by_pop)
        r = rows[rest]
        u = rng.random(len(rest))
        slot = (u[:, None] > users["cum_weights"][r, :-1]).sum(axis=1)
        cluster = users["favourites"][r, slot]
        pos = np.searchsorted(self._cluster_cdf, cluster + rng.random(len(rest)), side="right")
        items[rest] = self._cluster_order[np.minimum(pos, len(self._cluster_order) - 1)]
        return np.minimum(items, len(self.popularity) - 1)

    def _latent_scores(self, rng: np.random.Generator, users: dict, rows: np.ndarray,
                       items: np.ndarray) -> np.ndarray:
        dot = np.einsum("nd,nd->n", users["taste"][rows], self.item_vectors[items]) * 6.0
        return users["bias"][rows] + self.item_bias[items] + dot + rng.normal(0, 0.9, len(rows))

    def _distinct_items(self, rng: np.random.Generator, users: dict,
                        counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(local user, item) pairs with ``counts[u]`` distinct items per user (fewer only
        when a user asks for more distinct items than repeated draws can find)."""
        n_items = len(self.popularity)
        have = np.zeros(0, dtype=np.int64)  # keys user * n_items + item, unique
        short = counts.copy()
        for _ in range(6):
            want = np.flatnonzero(short > 0)
            if not len(want):
                break
            draws = np.ceil(short[want] * 1.5).astype(np.int64) + 2
            rows = np.repeat(want, draws)
            items = self._pick_items(rng, users, rows)
            have = _unique(np.concatenate([have, rows * n_items + items]))
            got = np.bincount(have // n_items, minlength=len(counts))
            short = np.maximum(counts - got, 0)
        # Keep a random subset of counts[u] of each user's distinct items.
        user = have // n_items
        priority = rng.random(len(have))
        order = np.lexsort((priority, user))
        starts = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=len(counts)))])
        rank = np.empty(len(have), dtype=np.int64)
        rank[order] = np.arange(len(have)) - starts[user[order]]
        kept = np.sort(have[rank < counts[user]])
        return kept // n_items, kept % n_items

    # -- output -----------------------------------------------------------------------
    def user_ids(self) -> np.ndarray:
        """External user ids 1..n_users, as in the Kaggle file."""
        return np.arange(1, self.scale.n_users + 1, dtype=np.int64)

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Rating frames for consecutive blocks of users (sorted by user, then anime)."""
        ids = self.user_ids()
        anime_ids = self.anime["anime_id"].to_numpy(np.int64)
        for number, start in enumerate(range(0, len(ids), self.users_per_chunk)):
            block = ids[start:start + self.users_per_chunk]
            # A stream per chunk, keyed by its first user: chunks are independent,
            # so they could be generated in any order or in parallel.
            rng = np.random.default_rng([self.random_state, 10, int(block[0])])
            users = self._users(rng, len(block))
            counts = self._draw_counts(users["activity"])
            rows, items = self._distinct_items(rng, users, counts)
            z = self._latent_scores(rng, users, rows, items)
            ratings = (np.searchsorted(self._thresholds, z) + 1).astype(np.int8)
            unrated = rng.random(len(rows)) < users["unrated"][rows]
            ratings[unrated] = -1
            _log.debug("chunk %d: %d users, %d rows", number, len(block), len(rows))
            yield pd.DataFrame({"user_id": block[rows], "anime_id": anime_ids[items],
                                "rating": ratings})

    def ratings(self) -> pd.DataFrame:
        """All ratings in one frame (fine up to the 2016 scale)."""
        return pd.concat(list(self.chunks()), ignore_index=True)

    def write(self, out_dir: str | Path, *, progress: bool = False) -> dict:
        """Write ``anime.csv`` and ``rating.csv`` (Kaggle format); returns their statistics."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        anime = self.anime[["anime_id", "name", "genre", "type", "episodes", "rating", "members"]]
        anime.to_csv(out / "anime.csv", index=False)
        acc = _StatsAccumulator(len(self.anime))
        chunks = self.chunks()
        if progress:
            from tqdm import tqdm

            total = -(-self.scale.n_users // self.users_per_chunk)
            chunks = tqdm(chunks, total=total, unit="chunk", desc="rating.csv")
        with pacsv.CSVWriter(out / "rating.csv", pa.schema([("user_id", pa.int64()),
                                                           ("anime_id", pa.int64()),
                                                           ("rating", pa.int8())]),
                             write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
            for frame in chunks:
                writer.write_table(pa.Table.from_pandas(frame, preserve_index=False))
                acc.add(frame)
        return acc.stats()


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted unique values; sorting int64 is several times faster here than
    ``np.unique``, whose hash-based path is slow on millions of distinct keys."""
    keys = np.sort(keys)
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


class _StatsAccumulator:
    """Streaming version of :func:`rating_stats` for chunked output (users never span chunks)."""

    def __init__(self, n_anime: int):
        self.per_user: list[np.ndarray] = []
        self.unrated_users = 0
        self.item_counts: dict[int, int] = {}
        self.rating_counts = np.zeros(12, dtype=np.int64)
        self.explicit_sum = 0.0

    def add(self, frame: pd.DataFrame) -> None:
        counts = frame.groupby("user_id", sort=False).size().to_numpy()
        self.per_user.append(counts)
        only = (frame["rating"] > 0).groupby(frame["user_id"], sort=False).sum()
        self.unrated_users += int((only == 0).sum())
        for anime_id, c in frame["anime_id"].value_counts().items():
            self.item_counts[anime_id] = self.item_counts.get(anime_id, 0) + int(c)
        self.rating_counts += np.bincount(frame["rating"].to_numpy().astype(np.int64) + 1,
                                          minlength=12)
        explicit = frame["rating"].to_numpy()
        self.explicit_sum += float(explicit[explicit > 0].sum())

    def stats(self) -> dict:
        per_user = np.concatenate(self.per_user) if self.per_user else np.zeros(0, np.int64)
        items = np.sort(np.array(list(self.item_counts.values()), dtype=np.int64))[::-1]
        rows = int(per_user.sum())
        explicit = int(self.rating_counts[2:].sum())
        return {
            "users": int(len(per_user)), "anime": int(len(items)), "rows": rows,
            "rows_per_user_median": float(np.median(per_user)),
            "rows_per_user_mean": round(float(per_user.mean()), 1),
            "rows_per_user_p90": round(float(np.percentile(per_user, 90)), 1),
            "rows_per_user_max": int(per_user.max()),
            "unrated_share": round(self.rating_counts[0] / rows, 4),
            "users_only_unrated_share": round(self.unrated_users / len(per_user), 4),
            "top1pct_anime_row_share": round(items[:max(1, len(items) // 100)].sum() / rows, 3),
            "top10pct_anime_row_share": round(items[:max(1, len(items) // 10)].sum() / rows, 3),
            "mean_explicit_rating": round(self.explicit_sum / max(explicit, 1), 2),
            "rating_counts": {str(r): int(self.rating_counts[r + 1]) for r in [-1, *range(1, 11)]},
        }


def rating_stats(ratings: pd.DataFrame) -> dict:
    """Shape statistics of a ratings frame (the ones :data:`REAL_STATS` lists)."""
    acc = _StatsAccumulator(int(ratings["anime_id"].nunique()))
    acc.add(ratings)
    return acc.stats()


def compare_table(stats: dict, scale: str | None = None) -> str:
    """A plain-text table: each statistic, synthetic value, real value."""
    real = dict(REAL_STATS)
    note = "real = bundled 612k-row subset"
    if scale in REAL_SIZES:
        real["users"], real["anime"], real["rows"] = REAL_SIZES[scale]
        note += f"; sizes = real {scale} data set"
    lines = [f"{'statistic':<28}{'synthetic':>14}{'real':>14}", "-" * 56]
    for key, value in real.items():
        lines.append(f"{key:<28}{stats[key]!s:>14}{value!s:>14}")
    real_total = sum(REAL_RATING_COUNTS.values())
    rows = max(stats["rows"], 1)
    lines.append("rating share (synthetic / real):")
    for r in [-1, *range(1, 11)]:
        lines.append(f"  {r:>3}: {stats['rating_counts'][str(r)] / rows:7.3f}"
                     f" / {REAL_RATING_COUNTS[r] / real_total:7.3f}")
    lines.append(f"({note})")
    return "\n".join(lines)


def generate(scale: str, out_dir: str | Path, random_state: int = 0,
             progress: bool = False) -> dict:
    """Write a synthetic data set to ``out_dir``; returns its statistics and timing."""
    start = time.perf_counter()
    gen = SyntheticRatings(scale, random_state=random_state)
    stats = gen.write(out_dir, progress=progress)
    stats["seconds"] = round(time.perf_counter() - start, 2)
    return stats


def two_taste_groups(n_users_per_group: int = 20, *, n_anime_per_group: int = 10,
                     own: int = 6, other: int = 2, own_ratings: tuple[int, int] = (9, 10),
                     other_ratings: tuple[int, int] = (2, 3), seed: int = 0):
    """A tiny data set with a known answer: two taste groups that never mix.

    The first ``n_anime_per_group`` anime are sci-fi, the rest romance; even
    users love sci-fi, odd users romance. Each user rates ``own`` random titles
    of their own taste within ``own_ratings`` and ``other`` of the other taste
    within ``other_ratings``, so a working recommender keeps each user inside
    their group. Returns the ``(anime, ratings)`` frames in the Kaggle format.
    """
    rng = np.random.default_rng(seed)
    half = n_anime_per_group
    anime = pd.DataFrame({
        "anime_id": np.arange(1, 2 * half + 1),
        "name": [f"SciFi {i}" for i in range(1, half + 1)]
        + [f"Romance {i}" for i in range(half + 1, 2 * half + 1)],
        "genre": ["Action, Sci-Fi"] * half + ["Romance, Slice of Life"] * half,
        "type": ["TV"] * (2 * half),
        "episodes": [12] * (2 * half),
        "rating": [8.0] * (2 * half),
        "members": np.arange(1000, 1000 + 2 * half),
    })
    scifi, romance = np.arange(1, half + 1), np.arange(half + 1, 2 * half + 1)
    rows = []
    for user in range(1, 2 * n_users_per_group + 1):
        mine, theirs = (scifi, romance) if user % 2 == 0 else (romance, scifi)
        for a in rng.choice(mine, own, replace=False):
            rows.append((user, int(a), int(rng.integers(own_ratings[0], own_ratings[1] + 1))))
        for a in rng.choice(theirs, other, replace=False):
            rows.append((user, int(a), int(rng.integers(other_ratings[0], other_ratings[1] + 1))))
    return anime, pd.DataFrame(rows, columns=["user_id", "anime_id", "rating"])
