"""Chart geometry: bars scale to the largest value, shares add up, and small values stay visible."""

import pytest

from app.web.charts import CHART_WIDTH, LABEL_WIDTH, VALUE_WIDTH, bar_chart


def test_bars_scale_to_the_largest_value() -> None:
    chart = bar_chart("t", "d", [("a", 50, "good"), ("b", 25, "warn"), ("c", 0, "bad"), ("d", 1, "muted")])
    widths = {row.label: row.width for row in chart.rows}
    assert widths["a"] == CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    assert widths["b"] == pytest.approx(widths["a"] / 2, abs=0.1)
    assert widths["c"] == 0
    assert widths["d"] >= 2  # one item is never drawn as nothing
    assert chart.total == 76
    assert [row.percent for row in chart.rows] == [65.8, 32.9, 0.0, 1.3]
    assert [row.y for row in chart.rows] == sorted(row.y for row in chart.rows)
    assert chart.height == 4 * chart.row_height


def test_an_empty_chart_says_so() -> None:
    chart = bar_chart("t", "d", [("a", 0, "good")])
    assert chart.empty
    assert chart.rows[0].width == 0
    assert chart.rows[0].percent == 0


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        bar_chart("t", "d", [("a", -1, "good")])
