"""The learned ranker's reasons: per-feature contributions grouped into families, in words.

LightGBM's ``pred_contrib`` splits each prediction into one contribution per
feature (SHAP values) plus a bias. Features that say the same thing form a
family (the nearest users, the item's quality, the franchise, ...); the two
families that raised an item's score most become its reason, each worded from
the feature values themselves, e.g. "liked by 31 of your 100 nearest users
(mean 9.2) · rated highly by 78% of its watchers". Features of the user alone
(activity, mean rating) shift every item alike and never name a reason.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recommender.core.types import Scorer, Scores, UserProfile
from recommender.models import features as F

#: Feature families that can be a reason, and the features each sums over.
FAMILIES: dict[str, tuple[str, ...]] = {
    "neighbours": ("user-user_score", "user-user_rank", "support", "support_share",
                   "neighbour_mean"),
    "quality": ("like_rate", "mean_rating", "community", "watched_share"),
    "ease": ("ease_score", "ease_rank"),
    "mf": ("mf_score", "mf_rank", "proposers"),
    "content": ("content_score", "content_rank", "genre_fit"),
    "franchise": ("franchise_seen", "franchise_mean"),
    "popularity": ("popularity", "members"),
    "format": ("type", "episodes"),
}
NEUTRAL = "fits your overall taste"
#: How many families a reason names.
REASON_FAMILIES = 2


def family_contributions(contrib: np.ndarray) -> np.ndarray:
    """Rows x len(FAMILIES): the sum of each family's feature contributions."""
    out = np.zeros((len(contrib), len(FAMILIES)))
    for j, names in enumerate(FAMILIES.values()):
        out[:, j] = contrib[:, [F.COLUMN[n] for n in names]].sum(axis=1)
    return out


def _value(row: np.ndarray, name: str) -> float:
    return float(row[F.COLUMN[name]])


def _because(scorer: Scorer | None, profile: UserProfile, items: list[int],
             scores: Scores | None) -> dict[int, list[int]]:
    """Per item, the listed anime a stage-1 model names for it (its own explanation, batched)."""
    if scorer is None or scores is None or not items:
        return {}
    columns = scorer.explain(profile, np.asarray(items, dtype=np.int64), scores).columns
    many, single = columns.get("because_items"), columns.get("because_idx")
    out = {}
    for j, item in enumerate(items):
        if many is not None:
            out[item] = list(many[j])
        elif single is not None and single[j] is not None:
            out[item] = [int(single[j])]
    return out


def phrase(family: str, row: np.ndarray, item: int, because: Mapping[str, dict[int, list[int]]],
           table: F.ItemTable, names: np.ndarray) -> str:
    """One family's words for one item, from its feature values (and the models' own reasons)."""
    if family == "neighbours":
        support = _value(row, "support")
        k = int(round(support / _value(row, "support_share"))) if _value(
            row, "support_share") > 0 else 0
        if support > 0:
            return (f"liked by {int(support)} of your {k} nearest users "
                    f"(mean {_value(row, 'neighbour_mean'):.1f})")
        return "your nearest users watch it"
    if family == "quality":
        rate = _value(row, "like_rate")
        if np.isfinite(rate):
            return f"rated highly by {rate:.0%} of its watchers"
        return f"community score {_value(row, 'community'):.2f}"
    if family in ("ease", "mf"):
        named = because.get(family, {}).get(item)
        if named:
            return f"fans of {names[named[0]]} watch it"
        return "people with your history watch it"
    if family == "content":
        named = because.get("content", {}).get(item)
        genres = [table.genre_names[g] for g in table.genres[item].indices[:3]]
        if named:
            return f"close to {names[named[0]]}" + (f" ({', '.join(genres)})" if genres else "")
        return "matches your favourite genres" + (f" ({', '.join(genres)})" if genres else "")
    if family == "franchise":
        seen = int(_value(row, "franchise_seen"))
        mean = _value(row, "franchise_mean")
        if seen:
            rated = f", mean {mean:.1f}" if np.isfinite(mean) else ""
            titles = "title" if seen == 1 else "titles"
            return f"you watched {seen} other {titles} of its franchise{rated}"
        return "a new franchise for you"
    if family == "popularity":
        return f"watched by {int(table.watchers[item]):,} users here"
    kind = int(_value(row, "type"))
    label = F.TYPES[kind] if 0 <= kind < len(F.TYPES) else "its format"
    episodes = _value(row, "episodes")
    return f"a {label}" + (f" of {int(episodes)} episodes" if np.isfinite(episodes) else "") + \
        " like those you watch"


def reasons_from_contributions(x: np.ndarray, contrib: np.ndarray, items: np.ndarray,
                               profile: UserProfile, parts: Mapping[str, Scores],
                               models: Mapping[str, Scorer], table: F.ItemTable,
                               names: np.ndarray) -> tuple[list[str], list[dict]]:
    """Per row: the reason (top families with a positive contribution) and every family's sum.

    A reason names :data:`REASON_FAMILIES` different phrases at most.
    """
    sums = family_contributions(contrib)
    labels = list(FAMILIES)
    # One family to spare: EASE and ALS often name the same title ("fans of X watch
    # it"), and a phrase is said once, so the next family then takes its place.
    chosen = [[labels[j] for j in np.argsort(-total, kind="stable") if total[j] > 0]
              [:REASON_FAMILIES + 1] for total in sums]
    # One explain call per stage-1 model for every item that names it.
    because = {}
    for family in ("ease", "mf", "content"):
        wanted = [int(item) for item, names_of in zip(items, chosen) if family in names_of]
        because[family] = _because(models.get(family), profile, wanted, parts.get(family))
    reasons, shares = [], []
    for row, total, item, families in zip(x, sums, items, chosen):
        words: list[str] = []
        for family in families:
            said = phrase(family, row, int(item), because, table, names)
            if said not in words and len(words) < REASON_FAMILIES:
                words.append(said)
        reasons.append(" · ".join(words) if words else NEUTRAL)
        shares.append({labels[j]: round(float(total[j]), 4) for j in range(len(labels))})
    return reasons, shares
