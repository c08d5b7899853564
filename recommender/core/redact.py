"""Database URLs made safe to print: the password never reaches a message or a log."""

from __future__ import annotations

import re


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe to print or log."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: hide whatever sits between "user:" and "@"
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))
