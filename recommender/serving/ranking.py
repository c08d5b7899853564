"""Ranking with fallback: the scores a request needs, the chain it walks, and the top n.

A request names an algorithm; its scores come first, then content, then
popularity, so a profile with no usable evidence for the requested algorithm
(no neighbours, nothing in EASE's support) still gets ``n`` rows, and the result
says which algorithm placed each one. Offline evaluation calls the same methods,
so its lists are exactly what ``recommend`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender.core import scaling
from recommender.core.profiling import PROFILER
from recommender.core.types import Context, Scorer, Scores, UserProfile
from recommender.models import registry
from recommender.models.content import genre_sets
from recommender.models.registry import HYBRID

#: Genre of the titles left out unless ``include_adult``.
ADULT_GENRE = "Hentai"
#: Candidates a diversified list is chosen from, per requested row (and at least 50).
DIVERSITY_POOL = 3
#: Weight of "same franchise" against genre cosine in the similarity MMR penalises.
FRANCHISE_SHARE = 0.5


def genre_vectors(anime: pd.DataFrame) -> sp.csr_matrix:
    """Items x genres, rows L2-normalised: their dot product is the genre cosine."""
    sets = genre_sets(anime)
    names = sorted(set().union(*sets)) if sets else []
    column = {g: j for j, g in enumerate(names)}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.array([column[g] for s in sets for g in s], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                           shape=(len(sets), max(len(names), 1)))
    return normalize(matrix).astype(np.float32)


def diversity_vectors(anime: pd.DataFrame, franchise: np.ndarray,
                      franchise_share: float = FRANCHISE_SHARE) -> sp.csr_matrix:
    """Items x (genres + franchises): dot products are the similarity MMR penalises.

    ``franchise_share * same_franchise + (1 - franchise_share) * genre_cosine``:
    a second season of a show already listed is as near as a title can be.
    """
    genres = genre_vectors(anime)
    n = genres.shape[0]
    member = franchise >= 0
    codes, inverse = np.unique(franchise[member], return_inverse=True)
    same = sp.csr_matrix((np.ones(int(member.sum()), np.float32),
                          (np.flatnonzero(member), inverse)), shape=(n, max(len(codes), 1)))
    return sp.hstack([np.sqrt(1.0 - franchise_share) * genres,
                      np.sqrt(franchise_share) * same]).tocsr().astype(np.float32)


def franchise_runs(items: np.ndarray, franchise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per listed item: is it the first of its franchise in the list, and how many follow.

    Titles with no franchise lead themselves with 0 following.
    """
    groups = franchise[np.asarray(items, dtype=np.int64)]
    lead = np.ones(len(groups), dtype=bool)
    more = np.zeros(len(groups), dtype=np.int64)
    first: dict[int, int] = {}
    for row, group in enumerate(groups):
        if group < 0:
            continue
        if int(group) in first:
            lead[row] = False
            more[first[int(group)]] += 1
        else:
            first[int(group)] = row
    return lead, more


def maximal_marginal_relevance(relevance: np.ndarray, vectors: sp.csr_matrix, n: int,
                               diversity: float) -> np.ndarray:
    """Positions (into ``relevance``) of ``n`` picks, each maximising MMR.

    Carbonell and Goldstein's rule: the next pick maximises
    ``(1 - diversity) * relevance - diversity * (max similarity to the picks so far)``,
    with similarity the dot product of ``vectors`` rows. ``diversity=0`` keeps the
    relevance order exactly.
    """
    n = min(n, len(relevance))
    if diversity <= 0 or n == 0:
        return np.argsort(-relevance, kind="stable")[:n]
    closest = np.zeros(len(relevance))
    free = np.ones(len(relevance), dtype=bool)
    picks: list[int] = []
    for _ in range(n):
        gain = (1.0 - diversity) * relevance - diversity * closest
        gain[~free] = -np.inf
        pick = int(np.argmax(gain))
        picks.append(pick)
        free[pick] = False
        closest = np.maximum(closest, (vectors @ vectors[pick].T).toarray().ravel())
    return np.asarray(picks, dtype=np.int64)


class Ranker:
    """Scores, fallback chains and top-n lists over one set of fitted scorers.

    ``tie_break`` orders equal scores (popularity, higher first); ``adult``
    marks the catalogue positions left out unless ``include_adult``.
    """

    def __init__(self, models: Mapping[str, Scorer], tie_break: np.ndarray, adult: np.ndarray,
                 include_adult: bool, genres: sp.csr_matrix | None = None):
        self._models = dict(models)
        self._genres = genres
        self._tie_break = np.asarray(tie_break, dtype=np.float64)
        self._adult = np.asarray(adult, dtype=bool)
        self._include_adult = include_adult
        self.collaborative = tuple(n for n in self._models if registry.get(n).collaborative)

    def allowed(self, profile: UserProfile, excluded: np.ndarray) -> np.ndarray:
        """Items that may be recommended: not watched (-1 included), not excluded, not adult."""
        allowed = np.ones(len(self._tie_break), dtype=bool)
        allowed[profile.item_idx] = False
        allowed[excluded] = False
        if not self._include_adult:
            allowed &= ~self._adult
        return allowed

    def score(self, name: str, profile: UserProfile, context: Context) -> Scores:
        """Raw scores of one fitted algorithm (not the hybrid) over the whole catalogue."""
        with PROFILER.stage(name):
            return self._models[name].score(profile, context)

    def parts(self, profile: UserProfile, context: Context, algorithm: str,
              collaborative: str) -> dict[str, Scores]:
        """The raw scores ``algorithm`` needs (both parts for the hybrid)."""
        if algorithm == HYBRID:
            return {collaborative: self.score(collaborative, profile, context),
                    "content": self.score("content", profile, context)}
        return {algorithm: self.score(algorithm, profile, context)}

    def chain(self, profile: UserProfile, context: Context, algorithm: str,
              parts: Mapping[str, Scores], *, weight: float,
              collaborative: str) -> list[Scores]:
        """The scores :meth:`top` walks for ``algorithm``, best source first.

        The requested scores (the blend of both parts for the hybrid) come first,
        then content, then popularity. Scores missing from ``parts`` are
        computed; evaluation passes them all precomputed, so one scoring per
        user serves every weight.
        """
        def part(name: str) -> Scores:
            return parts[name] if name in parts else self.score(name, profile, context)

        if algorithm == HYBRID:
            cf, content = part(collaborative), part("content")
            with PROFILER.stage("blend"):
                blended = scaling.blend(cf.values, content.values, weight)
            primary = Scores(blended.astype(np.float64), HYBRID,
                             details={"cf_score": scaling.scale_to_unit(cf.values),
                                      "content_score": scaling.scale_to_unit(content.values)})
        else:
            primary = part(algorithm)
        chain = [primary]
        if algorithm not in ("content", "popularity", "random"):
            chain.append(part("content"))
        if algorithm != "popularity":
            chain.append(part("popularity"))
        return chain

    def top(self, chain: list[Scores], n: int,
            allowed: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Top ``n`` from the first scores in ``chain``, filled up from the next ones.

        Returns positions and, per position, the index in ``chain`` that supplied it.
        """
        picked: list[np.ndarray] = []
        source: list[int] = []
        allowed = allowed.copy()
        for level, scores in enumerate(chain):
            need = n - sum(len(p) for p in picked)
            if need <= 0:
                break
            top = scaling.top_n(scores.values, need, allowed=allowed, tie_break=self._tie_break)
            allowed[top] = False
            picked.append(top)
            source.extend([level] * len(top))
        items = np.concatenate(picked) if picked else np.empty(0, np.int64)
        return items.astype(np.int64), source

    def top_diverse(self, chain: list[Scores], n: int, allowed: np.ndarray,
                    diversity: float) -> tuple[np.ndarray, list[int]]:
        """:meth:`top`, then re-ranked by maximal marginal relevance over genres and franchises.

        The ``n`` rows are picked from the best ``DIVERSITY_POOL * n`` (at least
        50) of the fallback order, whose rank is the relevance; ``diversity=0``
        is exactly :meth:`top`.
        """
        if diversity <= 0 or self._genres is None:
            return self.top(chain, n, allowed)
        items, source = self.top(chain, max(DIVERSITY_POOL * n, 50), allowed)
        relevance = 1.0 - np.arange(len(items)) / max(len(items), 1)
        picks = maximal_marginal_relevance(relevance, self._genres[items], n, diversity)
        return items[picks], [source[i] for i in picks]
