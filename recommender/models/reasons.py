"""Reason sentences shared by the learned models."""

from __future__ import annotations

import numpy as np


def because_text(names: np.ndarray, items: list[int]) -> str:
    """'because you liked A and B', or a neutral reason when nothing stands out."""
    if not items:
        return "fits your overall taste"
    return "because you liked " + " and ".join(str(names[i]) for i in items)
