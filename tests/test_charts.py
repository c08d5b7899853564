"""Chart helpers that need no page: tick formats."""

import numpy as np
import pytest

from dashboard.charts import percent_ticks


def ticks(low: float, high: float, count: int) -> np.ndarray:
    """``count`` + 1 evenly spaced ticks, as a chart with that many intervals draws them."""
    return np.linspace(low, high, count + 1)


@pytest.mark.parametrize("low, high", [(0.030, 0.034), (0.0301, 0.0312), (0.08, 0.10),
                                       (0.05, 0.45), (0.0, 1.0), (0.151, 0.1512)])
def test_percent_ticks_label_up_to_ten_ticks_differently(low, high):
    form = percent_ticks([low, (low + high) / 2, high, np.nan])
    labels = [format(t, form) for t in ticks(low, high, 10)]
    assert len(set(labels)) == len(labels), labels


def test_percent_ticks_keep_whole_percents_for_wide_spans_and_constants():
    assert percent_ticks([0.0, 0.5, 1.0]) == ".0%"
    assert percent_ticks([0.2, 0.2]) == ".0%"
    assert percent_ticks([]) == ".0%"
    assert percent_ticks([0.030, 0.034]) == ".2%"
