"""Database URLs and driver messages made safe to print: no secret reaches an output.

Redaction is structural. A URL is split into its parts (the userinfo ends at the
*last* ``@`` before the host, so an unencoded ``@`` in a password stays inside
the password), and the password and the value of every credential-like query
parameter (``password``, ``sslpassword``, ``token``, ``api_key``, ...) are
replaced by ``***``. The secret itself is never searched for and replaced in
the text: a one-character password would otherwise reveal itself by every
other occurrence of that character that was left alone (or was replaced).
Driver messages get the same treatment: every URL in them, and every
``key=value`` pair whose key is credential-like (libpq's ``password=...``), is
redacted by its structure.
"""

from __future__ import annotations

import re

MASK = "***"
#: Query-parameter and conninfo keys whose values are secrets.
_CREDENTIAL = re.compile(r"pass|pwd|secret|token|key|auth|credential|cookie|session", re.I)
#: A URL inside free text: a scheme, "://", then everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
#: ``key=value`` (libpq conninfo and similar); the value may be single-quoted.
_KEY_VALUE = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*"
                        r"(?P<value>'(?:[^'\\]|\\.)*'|[^\s&;,]+)")


def is_credential_key(key: str) -> bool:
    """True when a parameter named ``key`` holds a secret (password, token, API key...)."""
    return bool(_CREDENTIAL.search(key))


def _split_authority(rest: str) -> tuple[str | None, str, str]:
    """``(userinfo or None, host[:port], path-query-fragment)`` of what follows ``://``.

    The userinfo ends at the last ``@`` before the path starts. When unsure,
    more is treated as userinfo (hidden), never less.
    """
    at = rest.rfind("@")
    if at < 0:
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        return None, rest[:end], rest[end:]
    host_and_after = rest[at + 1:]
    end = min((i for i in (host_and_after.find(c) for c in "/?#") if i >= 0),
              default=len(host_and_after))
    return rest[:at], host_and_after[:end], host_and_after[end:]


def _redact_query(query: str) -> str:
    parts = []
    for item in re.split(r"([&;])", query):
        if item in ("&", ";") or "=" not in item:
            parts.append(MASK if item not in ("&", ";") and is_credential_key(item) else item)
            continue
        key, _, _value = item.partition("=")
        parts.append(f"{key}={MASK}" if is_credential_key(key) else item)
    return "".join(parts)


def redact_url(url: object) -> str:
    """``url`` with its password and credential-like query values replaced by ``***``.

    Safe to print or log whatever ``url`` holds: a string that is not a URL
    (no ``scheme://``) is treated as a libpq conninfo string and its
    credential-like values are hidden the same way.
    """
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return redact_text(text)
    userinfo, host, tail = _split_authority(rest)
    shown = f"{scheme}://"
    if userinfo is not None and any(c in userinfo.partition(":")[0] for c in "/?#"):
        # The last "@" sits in the path or query (an unencoded "@" in a query value),
        # so where the userinfo ends is unclear: hide all of it.
        return f"{scheme}://{MASK}@{host}" + _redact_tail(tail)
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        if is_credential_key(user) and not colon:
            user = MASK
        shown += f"{user}:{MASK}@" if colon else f"{user}@"
    return shown + host + _redact_tail(tail)


def _redact_tail(tail: str) -> str:
    """The path, query and fragment of a URL, with credential-like query values hidden."""
    path, qmark, query = tail.partition("?")
    query, hash_mark, fragment = query.partition("#") if qmark else ("", "", "")
    if not qmark:
        path, hash_mark, fragment = tail.partition("#")
    shown = path
    if qmark:
        shown += "?" + _redact_query(query)
    if hash_mark:
        shown += "#" + (MASK if fragment else "")
    return shown


def redact_text(text: object) -> str:
    """``text`` (e.g. a driver's error message) with every URL and secret value redacted."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))

    def key_value(match: re.Match) -> str:
        if is_credential_key(match.group("key")):
            return f"{match.group('key')}={MASK}"
        return match.group(0)

    return _KEY_VALUE.sub(key_value, out)
