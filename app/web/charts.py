"""Charts as inline SVG, laid out here and drawn by templates/macros.html: no JavaScript, nothing to download.

Geometry only (pure functions): which bar, how wide, where its labels go. The template turns it into <rect> and
<text> elements, so a chart is part of the page that is served, readable without scripts and in a screenshot.
"""

from collections.abc import Sequence
from dataclasses import dataclass

LABEL_WIDTH = 200  # room for a bar's label on the left
VALUE_WIDTH = 90  # room for "1,234 · 56%" on the right
ROW_HEIGHT = 30
BAR_HEIGHT = 18
CHART_WIDTH = 640


@dataclass(frozen=True, slots=True)
class Segment:
    """One row of a chart: its label, value, colour class and the bar's geometry."""

    label: str
    value: int
    tone: str  # a CSS class: good | warn | bad | info | muted
    y: float
    width: float
    percent: float


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    description: str  # what the chart shows, for screen readers
    rows: tuple[Segment, ...]
    total: int
    width: int
    height: int
    label_width: int
    bar_x: int
    bar_max: int
    row_height: int
    bar_height: int

    @property
    def empty(self) -> bool:
        return self.total == 0


def bar_chart(title: str, description: str, series: Sequence[tuple[str, int, str]]) -> BarChart:
    """Horizontal bars scaled to the largest value; each row also shows its share of the total."""
    if any(value < 0 for _, value, _ in series):
        raise ValueError("a bar chart counts things: values cannot be negative")
    total = sum(value for _, value, _ in series)
    largest = max((value for _, value, _ in series), default=0)
    bar_max = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    rows = tuple(
        Segment(
            label=label,
            value=value,
            tone=tone,
            y=index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
            # A non-zero value always shows at least a sliver, so "a few" never looks like "none".
            width=round(max(value / largest * bar_max, 2.0), 1) if value and largest else 0.0,
            percent=round(value / total * 100, 1) if total else 0.0,
        )
        for index, (label, value, tone) in enumerate(series)
    )
    return BarChart(
        title=title,
        description=description,
        rows=rows,
        total=total,
        width=CHART_WIDTH,
        height=max(len(rows), 1) * ROW_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_x=LABEL_WIDTH,
        bar_max=bar_max,
        row_height=ROW_HEIGHT,
        bar_height=BAR_HEIGHT,
    )
