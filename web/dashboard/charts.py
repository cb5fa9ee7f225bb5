"""Inline SVG charts for the dashboard pages (no JavaScript, no external resources).

- ``line_chart(series, *, labels, thresholds=(), percent=False, title="") -> Markup``: one line per
  ``Series`` over the x ``labels`` (for example 30 day names), with horizontal threshold lines
  (label, value) drawn dashed and named, for example ("Gmail/Yahoo 0.3 %", 0.003).
- ``stacked_bars(series, *, labels, title="") -> Markup``: stacked bars per label (a timeline of
  sends, bounces by signal group and complaints).

Every chart has a <title> and an aria-label, a y axis with labelled ticks from 0 to a round top,
x labels, and a legend; it scales to its container's width (dashboard.css). A value None leaves
a gap in a line (no data is not zero). Every text is escaped: labels are identity names, which a
sender chooses. Pure functions: the same input gives the same SVG, which the weekly report (read
in mail clients) can embed as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "line_chart", "stacked_bars"]

WIDTH = 640
PLOT_HEIGHT = 200
LEFT, RIGHT, TOP = 64, 28, 12
X_LABELS_HEIGHT = 30
LEGEND_ROW = 20
FONT = 12
MAX_X_LABELS = 8
TICKS = 4
PALETTE = ("#1f5fbf", "#b3261e", "#1e7b34", "#b35c00", "#7b2cbf", "#5b6475", "#00838f", "#8a6d00")
THRESHOLD_COLOURS = ("#8a6d00", "#b3261e", "#3b0a0a", "#5b6475")
AXIS = "#5b6475"
GRID = "#e4e7ec"


@dataclass(frozen=True)
class Series:
    """One named series of values, one per x label (None: no data there)."""

    name: str
    values: tuple[float | None, ...]
    colour: str = ""


@dataclass(frozen=True)
class _Scale:
    """Value -> y of the plot area, from 0 (its bottom) to ``top`` (its top)."""

    top: float
    step: float
    percent: bool

    def y(self, value: float) -> float:
        return TOP + PLOT_HEIGHT * (1 - value / self.top)

    def ticks(self) -> list[float]:
        return [self.step * index for index in range(round(self.top / self.step) + 1)]

    def text(self, value: float) -> str:
        return _format(value, self.step, self.percent)


def _scale(highest: float, percent: bool) -> _Scale:
    """An axis from 0 to a round number at or above ``highest``, in TICKS steps of 1, 2, 2.5 or 5 x 10^n."""
    if not highest > 0 or not math.isfinite(highest):
        highest = 0.01 if percent else 1.0
    raw = highest / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(magnitude * m for m in (1, 2, 2.5, 5, 10) if magnitude * m >= raw * (1 - 1e-9))
    if not percent and highest >= 1:
        step = max(step, 1.0)  # counts: whole numbers on the axis
    return _Scale(top=step * math.ceil(highest / step - 1e-9), step=step, percent=percent)


def _decimals(step: float) -> int:
    """The decimals that show every multiple of ``step`` exactly (0.25 -> 2, 0.5 -> 1, 20 -> 0)."""
    return next((d for d in range(9) if abs(round(step, d) - step) <= 1e-9 * max(1.0, step)), 9)


def _format(value: float, step: float, percent: bool) -> str:
    """An axis or tooltip number: 0.003 as "0.3 %" when ``percent``, 12000 as "12k" otherwise."""
    if percent:
        return f"{value * 100:.{_decimals(step * 100)}f} %"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{round(value / limit, 2):g}{suffix}"
    return f"{round(value, 6):g}"


def _check(series: Sequence[Series], labels: Sequence[str]) -> None:
    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {len(labels)} labels")


def _colour(series: Series, index: int) -> str:
    return series.colour or PALETTE[index % len(PALETTE)]


def _legend(items: Sequence[tuple[str, str, bool]], top: float) -> tuple[list[str], float]:
    """Legend entries (name, colour, dashed) in rows that wrap at the chart's width; its height."""
    parts, x, y = ['<g class="legend">'], float(LEFT), top + FONT
    for name, colour, dashed in items:
        width = 24 + 0.62 * FONT * len(name) + 16
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, y = float(LEFT), y + LEGEND_ROW
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        parts.append(f'<g class="legend-item"><line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" '
                     f'y2="{y - 4:.1f}" stroke="{escape(colour)}" stroke-width="{2 if dashed else 6}"{dash}/>'
                     f'<text x="{x + 24:.1f}" y="{y:.1f}">{escape(name)}</text></g>')
        x += width
    parts.append("</g>")
    return parts, (y - top) + LEGEND_ROW / 2 if items else 0.0


def _frame(scale: _Scale, labels: Sequence[str], slot: float, centre: float) -> list[str]:
    """The y axis with its ticks and grid, and the x labels (every k-th when there are many)."""
    bottom, right = TOP + PLOT_HEIGHT, WIDTH - RIGHT
    parts = [f'<g class="y-axis" font-size="{FONT}" fill="{AXIS}">']
    for tick in scale.ticks():
        y = scale.y(tick)
        parts.append(f'<g class="y-tick" data-value="{tick!r}"><line x1="{LEFT}" y1="{y:.2f}" x2="{right}" '
                     f'y2="{y:.2f}" stroke="{GRID}"/><text x="{LEFT - 6}" y="{y + 4:.2f}" '
                     f'text-anchor="end">{escape(scale.text(tick))}</text></g>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="{AXIS}"/>'
                 f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{AXIS}"/></g>')
    # As many labels as fit side by side (about 0.62 em per character), at most MAX_X_LABELS.
    longest = max((len(label) for label in labels), default=1)
    fitting = max(2, min(MAX_X_LABELS, int((WIDTH - LEFT - RIGHT) // (0.62 * FONT * longest + 12))))
    stride = max(1, math.ceil(len(labels) / fitting))
    parts.append(f'<g class="x-axis" font-size="{FONT}" fill="{AXIS}" text-anchor="middle">')
    for index in range(0, len(labels), stride):
        x = LEFT + slot * index + centre
        parts.append(f'<text x="{x:.2f}" y="{bottom + 18}">{escape(labels[index])}</text>')
    parts.append("</g>")
    return parts


def _svg(title: str, kind: str, body: list[str], legend: list[str], height: float) -> Markup:
    name = escape(title or kind)
    return Markup(
        f'<svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-label="{name}" font-family="system-ui, sans-serif" font-size="{FONT}">'
        f"<title>{name}</title>{''.join(body)}{''.join(legend)}</svg>")


def _points(values: Sequence[float | None], scale: _Scale, x_of: list[float]) -> tuple[str, list[str]]:
    """The path of a line broken at every None, and a dot (with a tooltip) for each value."""
    path, dots, pen_down = [], [], False
    for x, value in zip(x_of, values, strict=True):
        if value is None or not math.isfinite(value):
            pen_down = False
            continue
        y = scale.y(value)
        path.append(f"{'L' if pen_down else 'M'}{x:.2f},{y:.2f}")
        dots.append(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="2.5" data-value="{value!r}"/>')
        pen_down = True
    return " ".join(path), dots


def line_chart(series: Sequence[Series], *, labels: Sequence[str],
               thresholds: Sequence[tuple[str, float]] = (), percent: bool = False,
               title: str = "") -> Markup:
    """Lines of ``series`` over ``labels``, with dashed, named ``thresholds`` (name, value).

    ``percent``: values are fractions (0.003) shown as percentages (0.3 %). The y axis reaches
    the highest value or threshold, so every threshold line is drawn. ValueError when a series
    has not one value per label.
    """
    _check(series, labels)
    values = [v for one in series for v in one.values if v is not None and math.isfinite(v)]
    scale = _scale(max([*values, *(value for _, value in thresholds)], default=0.0), percent)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels) - 1)
    centre = (WIDTH - LEFT - RIGHT) / 2 if len(labels) == 1 else 0.0
    x_of = [LEFT + slot * index + centre for index in range(len(labels))]
    body = _frame(scale, labels, slot, centre)
    items: list[tuple[str, str, bool]] = []
    for index, (name, value) in enumerate(thresholds):
        colour = THRESHOLD_COLOURS[index % len(THRESHOLD_COLOURS)]
        y = scale.y(value)
        text_y = y - 4 if y - TOP > FONT + 4 else y + FONT + 2  # below a line at the top edge
        body.append(f'<g class="threshold" data-value="{value!r}"><title>{escape(name)}</title>'
                    f'<line x1="{LEFT}" y1="{y:.2f}" x2="{WIDTH - RIGHT}" y2="{y:.2f}" stroke="{colour}" '
                    f'stroke-width="1.5" stroke-dasharray="6 4"/><text x="{WIDTH - RIGHT - 4}" '
                    f'y="{text_y:.2f}" text-anchor="end" fill="{colour}">{escape(name)}</text></g>')
        items.append((name, colour, True))
    for index, one in enumerate(series):
        colour = escape(_colour(one, index))
        path, dots = _points(one.values, scale, x_of)
        body.append(f'<g class="series" data-name="{escape(one.name)}" stroke="{colour}" fill="{colour}">'
                    f"<title>{escape(one.name)}</title>"
                    + (f'<path d="{path}" fill="none" stroke-width="2"/>' if path else "")
                    + "".join(dots) + "</g>")
        items.insert(index, (one.name, _colour(one, index), False))
    legend, legend_height = _legend(items, TOP + PLOT_HEIGHT + X_LABELS_HEIGHT)
    return _svg(title, "line-chart", body, legend, TOP + PLOT_HEIGHT + X_LABELS_HEIGHT + legend_height)


def stacked_bars(series: Sequence[Series], *, labels: Sequence[str], title: str = "") -> Markup:
    """One bar per label, the values of ``series`` stacked in order from the bottom (None: nothing).

    ValueError when a series has not one value per label, or has a negative value.
    """
    _check(series, labels)
    if any(v is not None and v < 0 for one in series for v in one.values):
        raise ValueError("stacked bars take values of 0 or more")
    totals = [sum(one.values[i] or 0.0 for one in series) for i in range(len(labels))]
    scale = _scale(max(totals, default=0.0), percent=False)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    width = slot * 0.7
    body = _frame(scale, labels, slot, slot / 2)
    for index, one in enumerate(series):
        colour = escape(_colour(one, index))
        bars = []
        for position, value in enumerate(one.values):
            if not value:
                continue
            below = sum(other.values[position] or 0.0 for other in series[:index])
            top, bottom = scale.y(below + value), scale.y(below)
            x = LEFT + slot * position + (slot - width) / 2
            bars.append(f'<rect x="{x:.2f}" y="{top:.2f}" width="{width:.2f}" height="{bottom - top:.2f}" '
                        f'data-value="{value!r}"><title>{escape(labels[position])}: {escape(one.name)} '
                        f"{escape(_format(value, 1.0, False))}</title></rect>")
        body.append(f'<g class="series" data-name="{escape(one.name)}" fill="{colour}">{"".join(bars)}</g>')
    legend, legend_height = _legend([(one.name, _colour(one, i), False) for i, one in enumerate(series)],
                                    TOP + PLOT_HEIGHT + X_LABELS_HEIGHT)
    return _svg(title, "stacked-bars", body, legend, TOP + PLOT_HEIGHT + X_LABELS_HEIGHT + legend_height)
