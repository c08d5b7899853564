"""JSON output of numpy and pandas values, and never an invalid ``NaN``."""

from __future__ import annotations

import json
import math

import pandas as pd


def json_default(value):
    """``json.dumps(..., default=json_default)``: numpy scalars as Python ones, NA as null."""
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def finite(value):
    """``value`` (nested dicts, lists, tuples) with every NaN or infinity replaced by None.

    ``json.dumps`` writes those floats as ``NaN``/``Infinity``, which is not JSON
    (strict parsers, browsers' ``JSON.parse`` and jq reject it).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return finite(value.item())
        except (ValueError, TypeError):  # an array of more than one element
            return finite(value.tolist())
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def dumps(value, **kwargs) -> str:
    """Strict JSON of ``value``: numpy and pandas values converted, NaN as null."""
    return json.dumps(finite(value), default=json_default, allow_nan=False, **kwargs)
