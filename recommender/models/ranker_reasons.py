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


def _because(scorer: Scorer | None, profile: UserProfile, item: int,
             scores: Scores | None) -> list[int]:
    """The listed anime a stage-1 model names for ``item`` (its own explanation)."""
    if scorer is None or scores is None:
        return []
    explained = scorer.explain(profile, np.array([item]), scores).columns
    if explained.get("because_items"):
        return list(explained["because_items"][0])
    single = explained.get("because_idx")
    return [int(single[0])] if single and single[0] is not None else []


def phrase(family: str, row: np.ndarray, item: int, profile: UserProfile,
           parts: Mapping[str, Scores], models: Mapping[str, Scorer], table: F.ItemTable,
           names: np.ndarray) -> str:
    """One family's words for one item, from its feature values."""
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
        because = _because(models.get(family), profile, item, parts.get(family))
        if because:
            return f"fans of {names[because[0]]} watch it"
        return "people with your history watch it"
    if family == "content":
        because = _because(models.get("content"), profile, item, parts.get("content"))
        genres = [table.genre_names[g] for g in table.genres[item].indices[:3]]
        if because:
            return f"close to {names[because[0]]}" + (f" ({', '.join(genres)})" if genres else "")
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
    """Per row: the reason (top families with a positive contribution) and every family's sum."""
    sums = family_contributions(contrib)
    labels = list(FAMILIES)
    reasons, shares = [], []
    for row, total, item in zip(x, sums, items):
        order = [j for j in np.argsort(-total, kind="stable") if total[j] > 0][:REASON_FAMILIES]
        words = [phrase(labels[j], row, int(item), profile, parts, models, table, names)
                 for j in order]
        reasons.append(" · ".join(words) if words else NEUTRAL)
        shares.append({labels[j]: round(float(total[j]), 4) for j in range(len(labels))})
    return reasons, shares
