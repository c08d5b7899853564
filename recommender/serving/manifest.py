"""The model cache's manifest: its schema, checked before anything in it is trusted.

A manifest that does not match the schema exactly (a wrong type, a number out
of range, a file name that leaves the cache directory, a checksum that is not
one) is treated as no manifest at all, so the start rebuilds instead of
crashing on it.
"""

from __future__ import annotations

import re
from typing import Any

#: Bump when the layout or a model's saved state changes: an older cache is rebuilt.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
_MAX_INT = 2**63 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}\Z")


def _int(value: Any, low: int = 0, high: int = _MAX_INT) -> bool:
    return type(value) is int and low <= value <= high


def _json_scalar(value: Any) -> bool:
    if value is None or type(value) in (bool, str, int):
        return not (type(value) is int and not -_MAX_INT <= value <= _MAX_INT)
    if type(value) is float:
        return value == value and abs(value) != float("inf")
    if type(value) is list:
        return all(_json_scalar(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_scalar(v) for k, v in value.items())
    return False


def _file_entry(entry: Any) -> bool:
    return (type(entry) is dict and set(entry) == {"file", "bytes", "sha256"}
            and type(entry["file"]) is str and bool(_FILE_NAME.match(entry["file"]))
            and not entry["file"].startswith(".") and _int(entry["bytes"])
            and type(entry["sha256"]) is str and bool(_SHA256.match(entry["sha256"])))


def _model_entry(entry: Any) -> bool:
    if type(entry) is not dict or not {"files", "values"} <= set(entry) \
            or not set(entry) <= {"files", "values", "config"}:
        return False
    files, values = entry["files"], entry["values"]
    return (type(files) is dict and all(type(k) is str and _file_entry(v)
                                        for k, v in files.items())
            and type(values) is dict and _json_scalar(values)
            and _json_scalar(entry.get("config", {})) and type(entry.get("config", {})) is dict)


def valid(manifest: Any) -> bool:
    """True when ``manifest`` (parsed JSON) has exactly the expected shape and ranges."""
    if type(manifest) is not dict or manifest.get("format") != FORMAT_VERSION:
        return False
    if set(manifest) != {"format", "fingerprint", "database", "saved_at", "models"}:
        return False
    fp = manifest["fingerprint"]
    if (type(fp) is not dict or set(fp) != {"users", "anime", "ratings", "max_user_id", "sha256"}
            or not all(_int(fp[k]) for k in ("users", "anime", "ratings", "max_user_id"))
            or type(fp["sha256"]) is not str or not _SHA256.match(fp["sha256"])):
        return False
    database = manifest["database"]
    if (type(database) is not dict or set(database) != {"revision", "ratings"}
            or not (database["revision"] is None or type(database["revision"]) is str)
            or not _int(database["ratings"])):
        return False
    saved_at = manifest["saved_at"]
    if type(saved_at) not in (int, float) or not 0 <= saved_at < 1e12:
        return False
    models = manifest["models"]
    return type(models) is dict and all(type(k) is str and _model_entry(v)
                                        for k, v in models.items())


def shape(values: dict, key: str = "shape") -> tuple[int, int] | None:
    """A 2-d shape recorded under ``values[key]``, or None when it is not one."""
    raw = values.get(key)
    if type(raw) is not list or len(raw) != 2 or not all(_int(n) for n in raw):
        return None
    return int(raw[0]), int(raw[1])
