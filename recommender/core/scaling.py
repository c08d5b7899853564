"""Blending collaborative and content scores (pure functions over arrays)."""

from __future__ import annotations

import numpy as np


def scale_to_unit(values: np.ndarray) -> np.ndarray:
    """Divide by the maximum so the best item scores 1 (float64); all-zero stays zero.

    Both inputs are non-negative with 0 meaning "no evidence", so dividing by the
    maximum puts them on a comparable [0, 1] scale while keeping 0 at 0 and the
    order of each unchanged: that is what makes w=1 and w=0 rank exactly as the
    pure algorithms.
    """
    values = np.asarray(values, dtype=np.float64)
    top = values.max() if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def blend(collaborative: np.ndarray, content: np.ndarray, weight: float) -> np.ndarray:
    """``weight * CF + (1 - weight) * content`` after :func:`scale_to_unit` on each."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError("weight must be in [0, 1]")
    return weight * scale_to_unit(collaborative) + (1.0 - weight) * scale_to_unit(content)


def top_n(values: np.ndarray, n: int, *, allowed: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """Positions of the ``n`` best positive ``values`` among ``allowed``, best first.

    Ties are broken by ``tie_break`` (higher first), then by position, so the
    order is deterministic.
    """
    candidates = np.flatnonzero(allowed & (values > 0))
    if len(candidates) > 4 * n + 64:
        # Keep every item tied with the n-th best so the tie-break still decides.
        cut = np.partition(values[candidates], len(candidates) - n)[len(candidates) - n]
        candidates = candidates[values[candidates] >= cut]
    order = np.lexsort((candidates, -tie_break[candidates], -values[candidates]))
    return candidates[order[:n]]
