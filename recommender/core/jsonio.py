"""JSON output of numpy and pandas values, and never an invalid ``NaN``."""

from __future__ import annotations

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
