"""Bar charts as geometry for an SVG drawn on the server (desk/templates/desk/*.html): the page
needs no script, and nothing is loaded from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Sizes in the SVG's own units (its viewBox); the page scales it to the space it has.
LABEL_WIDTH = 150  # the labels left of horizontal bars
BAR_WIDTH = 200  # the longest horizontal bar
ROW_STEP, BAR_HEIGHT = 22, 16
COLUMN_HEIGHT = 80  # the tallest column
COLUMN_STEP, COLUMN_WIDTH = 18, 14
AXIS = 16  # below the columns, for their labels
# Every how many columns one is labelled: every 6 hours of 24.
LABEL_EVERY = 6


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    url: str
    x: float
    y: float
    width: float
    height: float
    failing: bool = False
    labelled: bool = True

    @property
    def value_x(self) -> float:
        """Where a horizontal bar's value is written: just past its end."""
        return self.x + self.width + 4

    @property
    def text_y(self) -> float:
        """The baseline of a horizontal bar's label and value."""
        return self.y + BAR_HEIGHT - 4


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: float
    height: float
    axis_y: float = 0.0  # the baseline of a column chart's labels


def bars(items: Sequence[tuple[str, int, str]], scale: Sequence[int] | None = None) -> Chart:
    """Horizontal bars, one a row: each as long as its value against the largest (or against
    its own entry of ``scale``, a limit: a bar past it is drawn full and marked failing)."""
    largest = max((value for _, value, _ in items), default=0) or 1
    drawn = []
    for row, (label, value, url) in enumerate(items):
        top = scale[row] if scale else largest
        share = min(value / top, 1.0) if top else 0.0
        drawn.append(
            Bar(
                label,
                value,
                url,
                x=LABEL_WIDTH,
                y=row * ROW_STEP,
                width=round(BAR_WIDTH * share, 1),
                height=BAR_HEIGHT,
                failing=scale is not None and value > top,
            )
        )
    # Room past the longest bar for its value.
    return Chart(drawn, width=LABEL_WIDTH + BAR_WIDTH + 90, height=len(items) * ROW_STEP)


def columns(items: Sequence[tuple[str, int, str]]) -> Chart:
    """Vertical columns, left to right, each as tall as its value against the largest; every
    LABEL_EVERY-th is labelled."""
    largest = max((value for _, value, _ in items), default=0) or 1
    drawn = []
    for n, (label, value, url) in enumerate(items):
        height = round(COLUMN_HEIGHT * value / largest, 1)
        drawn.append(
            Bar(
                label,
                value,
                url,
                x=n * COLUMN_STEP,
                y=COLUMN_HEIGHT - height,
                width=COLUMN_WIDTH,
                height=height,
                labelled=n % LABEL_EVERY == 0,
            )
        )
    return Chart(
        drawn,
        width=len(items) * COLUMN_STEP,
        height=COLUMN_HEIGHT + AXIS,
        axis_y=COLUMN_HEIGHT + AXIS - 3,
    )
