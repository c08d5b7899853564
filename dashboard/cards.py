"""What a recommendation card shows: a poster, the blend's shares, and reasons in the right person.

Pure functions of a result row, so that they are tested without a browser.
"""

from __future__ import annotations

import hashlib
import html
import math
import re

from recommender.data.catalog import anime_url

#: Colours of the generated posters, picked by the first genre, so that titles of one
#: genre look alike. No image needs the network.
PALETTE = ("#E4572E", "#17BEBB", "#2E86AB", "#A23B72", "#F18F01", "#6A4C93", "#3B8EA5",
           "#C73E1D", "#4C956C", "#8E5572")


def poster_svg(name: object, genre: object) -> str:
    """A placeholder poster: the title's initials on a colour chosen by its first genre."""
    words = re.findall(r"\w+", str(name or ""))
    initials = "".join(w[0] for w in words[:2]).upper() or "?"
    first_genre = str(genre or "").split(",")[0].strip()
    digest = hashlib.sha1(first_genre.encode("utf-8")).digest()
    colour = PALETTE[digest[0] % len(PALETTE)]
    label = html.escape(first_genre[:18] or "anime", quote=True)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="90" viewBox="0 0 160 90">'
        f'<rect width="160" height="90" rx="8" fill="{colour}"/>'
        '<text x="80" y="52" font-family="sans-serif" font-size="34" font-weight="700" '
        f'fill="#ffffff" text-anchor="middle">{html.escape(initials, quote=True)}</text>'
        '<text x="80" y="78" font-family="sans-serif" font-size="11" fill="#ffffff" '
        f'fill-opacity="0.85" text-anchor="middle">{label}</text></svg>'
    )


def poster_url(row) -> str | None:
    """The row's image address when the catalogue has one (an ``image_url`` column)."""
    url = getattr(row, "image_url", None)
    if isinstance(url, str) and url.startswith("https://"):
        return url
    return None


def blend_shares(cf_score: float, content_score: float, weight: float) -> tuple[float, float]:
    """How much of a hybrid score came from the collaborative part and from content (sum 1)."""
    cf = weight * float(cf_score) if _finite(cf_score) else 0.0
    content = (1.0 - weight) * float(content_score) if _finite(content_score) else 0.0
    total = cf + content
    if total <= 0:
        return (1.0, 0.0) if weight >= 0.5 else (0.0, 1.0)
    return cf / total, content / total


def match_share(score: float, best: float) -> float:
    """A score as a share of the list's best score, for a bar (1 = as good as #1)."""
    if not (_finite(score) and _finite(best)) or best <= 0:
        return 0.0
    return min(max(float(score) / float(best), 0.0), 1.0)


# The package's reasons speak to the person whose list it is ("your nearest users",
# "because you liked"). Looking at someone else, the page names them instead. Only
# these fixed phrases change, so a title that happens to contain "your" is kept.
_SECOND_PERSON = (
    ("of your ", "of {who}'s "),
    ("because you liked ", "because {who} liked "),
    ("fits your overall taste", "fits {who}'s overall taste"),
    ("you rated ", "{who} rated "),
    ("your taste", "{who}'s taste"),
)


def reason_for(reason: object, who: str | None) -> str:
    """``reason`` as shown for ``who`` (e.g. "user 16"); unchanged for one's own list."""
    text = str(reason or "")
    if not who:
        return text
    for mine, theirs in _SECOND_PERSON:
        text = text.replace(mine, theirs.format(who=who))
    return text


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def draw_card(row, *, who: str | None, best: float, weight: float | None,
              collaborative: str) -> None:
    """One recommendation as a card, inside the caller's container.

    ``weight`` is the hybrid's weight (None for other algorithms), so a hybrid card
    shows how much of its score came from each part.
    """
    import streamlit as st

    from app_state import md_escape

    url = poster_url(row)
    st.image(url or poster_svg(row.name, row.genre), width="content")
    st.markdown(f"**{row.rank}.** [{md_escape(row.name)}]({row.url})")  # its MyAnimeList page
    if isinstance(row.english_name, str) and row.english_name not in ("", row.name):
        st.caption(md_escape(row.english_name))
    episodes = ("1 episode" if row.episodes == 1 else
                _number(row.episodes, "{:.0f} episodes", "episodes unknown"))
    st.caption(md_escape(f"{row.type or 'type unknown'} · {episodes} · "
                         f"{row.genre or 'no genres listed'}"))
    st.caption(f":material/star: {_number(row.community_rating, '{:.2f}')} community score · "
               f":material/group: {_number(row.members, '{:,.0f}')} members")
    share = match_share(row.score, best)
    st.progress(share, text=f"match: {share:.0%} of #1")
    if weight is not None and hasattr(row, "cf_score"):
        cf, content = blend_shares(row.cf_score, row.content_score, weight)
        st.caption(md_escape(f"{cf:.0%} from {collaborative}, {content:.0%} from content"))
    st.caption("Why: " + md_escape(reason_for(row.reason, who) or "popular overall"))


def franchise_note(row) -> str:
    """"+ 3 more of this franchise in the list" for a card standing for its series, else "".

    ``row`` is a row of :meth:`RecommenderEngine.group_franchises` (``also_names``).
    """
    more = len(getattr(row, "also_names", None) or [])
    if not more:
        return ""
    return f"+ {more} more of this franchise in the list"


def draw_folded(row) -> None:
    """Under a card, the titles of its franchise folded into it (links), when there are any."""
    import streamlit as st

    from app_state import md_escape

    note = franchise_note(row)
    if not note:
        return
    with st.expander(note):
        st.markdown("\n".join(f"- [{md_escape(name)}]({anime_url(int(anime_id))})"
                              for anime_id, name in zip(row.also_ids, row.also_names)))


def _number(value, pattern: str, missing: str = "n/a") -> str:
    return missing if not _finite(value) else pattern.format(float(value))
