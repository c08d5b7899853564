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

from recommender.core import scaling
from recommender.core.profiling import PROFILER
from recommender.core.types import Context, Scorer, Scores, UserProfile
from recommender.models import registry
from recommender.models.registry import HYBRID

#: Genre of the titles left out unless ``include_adult``.
ADULT_GENRE = "Hentai"


class Ranker:
    """Scores, fallback chains and top-n lists over one set of fitted scorers.

    ``tie_break`` orders equal scores (popularity, higher first); ``adult``
    marks the catalogue positions left out unless ``include_adult``.
    """

    def __init__(self, models: Mapping[str, Scorer], tie_break: np.ndarray, adult: np.ndarray,
                 include_adult: bool):
        self._models = dict(models)
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
