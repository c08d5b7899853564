"""Share links: every choice on a page as address parameters, and back.

A copied address must rebuild exactly what the sender sees, a built list
included. A list is written as ``id:rating`` pairs joined by ``~`` (``5114:10~9253~
1535:-1``; no rating = liked), which stays short, needs no percent-encoding, and is
read back through the package's one id check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recommender.core.validate import MAX_ID, parse_id
from recommender.serving.requests import MAX_LIST

PAIR, ITEM = ":", "~"
RATINGS = {-1, *range(1, 11)}


@dataclass
class ParsedList:
    """A list read from an address: the usable entries, and what was left out and why."""

    items: dict[int, int | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def encode_list(items: dict[int, int | None]) -> str:
    """``{anime_id: rating or None}`` as address text, in insertion order."""
    return ITEM.join(str(int(a)) if r is None else f"{int(a)}{PAIR}{int(r)}"
                     for a, r in items.items())


def decode_list(text: object) -> ParsedList:
    """The list an address holds; bad entries are listed in ``problems``, never raised."""
    parsed = ParsedList()
    raw = str(text or "")
    entries = [e for e in raw.split(ITEM) if e.strip()]
    if len(entries) > MAX_LIST:
        parsed.problems.append(f"the list holds more than {MAX_LIST} anime; the first "
                               f"{MAX_LIST} are used")
        entries = entries[:MAX_LIST]
    bad: list[str] = []
    for entry in entries:
        anime, sep, rating = entry.partition(PAIR)
        anime_id = parse_id(anime)
        if anime_id is None or anime_id > MAX_ID:
            bad.append(entry)
            continue
        if not sep:
            parsed.items[anime_id] = None
            continue
        value = _rating(rating)
        if value is None:
            bad.append(entry)
            continue
        parsed.items[anime_id] = value
    if bad:
        shown = ", ".join(repr(b[:40]) for b in bad[:5]) + (" …" if len(bad) > 5 else "")
        parsed.problems.append(f"{len(bad)} list entr{'y' if len(bad) == 1 else 'ies'} "
                               f"could not be read ({shown})")
    return parsed


def _rating(text: str) -> int | None:
    text = text.strip()
    negative = text.startswith("-")
    number = parse_id(text[1:] if negative else text)
    if number is None:
        return None
    value = -number if negative else number
    return value if value in RATINGS else None
