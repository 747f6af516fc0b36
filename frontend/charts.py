"""Small server-rendered SVG charts: bars and lines with axes, a title and a description.

The SVG is inline in the page, so it is styled by chorus.css (classes `chart-*` drawn with
the theme's variables: dark mode comes for free) and read by assistive technology through
`role="img"`, `<title>` and `<desc>`. Pages show the same `rows` as a table beside it.
No Django request or model here: data in, markup out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 16, 48
# Horizontal bars: a narrower drawing, each row a label over its bar, tick labels below.
H_WIDTH, H_LEFT, H_RIGHT = 400, 8, 40
ROW, BAR, BOTTOM_TICKS = 40, 14, 28
# Beyond this many categories only every n-th label is written, so labels never overlap.
MAX_LABELS = 8


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    rows: list[tuple[str, float]]
    svg: SafeString


def nice_ticks(highest: float, *, count: int = 5, integers: bool = False) -> list[float]:
    """Round axis steps from 0 to at least `highest`: 0, 2, 4, ... or 0, 0.25, 0.5, ...
    With `integers` (counts) no step is smaller than 1."""
    if highest <= 0 or not math.isfinite(highest):
        return [0.0, 1.0]
    raw = highest / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(math.ceil(step), 1)
    ticks = [0.0]
    while ticks[-1] < highest - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def format_number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def bar_chart(*, title: str, description: str, rows: Sequence[tuple[str, float]]) -> Chart:
    """Vertical bars, one per (label, value), in the given order."""
    return _chart(title, description, list(rows), _bars)


def line_chart(*, title: str, description: str, rows: Sequence[tuple[str, float]]) -> Chart:
    """A line through (label, value) points in the given order, e.g. one per day."""
    return _chart(title, description, list(rows), _line)


def horizontal_bar_chart(
    *, title: str, description: str, rows: Sequence[tuple[str, float]]
) -> Chart:
    """Bars running left to right, each under its label and followed by its value: for
    categories whose names are too long to stand side by side under vertical bars. Drawn
    narrower than the other charts so its text stays legible when a phone shrinks it."""
    rows = list(rows)
    ticks = _ticks(rows)
    top = ticks[-1]
    base = TOP + len(rows) * ROW
    plot = H_WIDTH - H_LEFT - H_RIGHT
    parts = _open(title, description, H_WIDTH, base + BOTTOM_TICKS, kind="horizontal")
    for tick in ticks:
        x = round(H_LEFT + tick / top * plot, 2)
        parts.append(
            f'<line class="chart-grid" x1="{x}" x2="{x}" y1="{TOP}" y2="{base}"/>'
            f'<text class="chart-tick" x="{x}" y="{base + 18}" text-anchor="middle">'
            f"{format_number(tick)}</text>"
        )
    parts.append(f'<line class="chart-axis" x1="{H_LEFT}" x2="{H_LEFT}" y1="{TOP}" y2="{base}"/>')
    for i, (label, value) in enumerate(rows):
        y = TOP + i * ROW
        width = round(value / top * plot, 2)
        parts.append(
            f'<text class="chart-label" x="{H_LEFT + 4}" y="{y + 14}">{escape(label)}</text>'
            f'<rect class="chart-bar" x="{H_LEFT}" y="{y + 19}" width="{width}" height="{BAR}">'
            f"<title>{escape(label)}: {format_number(value)}</title></rect>"
            f'<text class="chart-value" x="{round(H_LEFT + width + 4, 2)}" y="{y + 19 + BAR - 1}">'
            f"{format_number(value)}</text>"
        )
    parts.append("</svg>")
    return Chart(title=title, description=description, rows=rows, svg=mark_safe("".join(parts)))  # noqa: S308 (every value above is escaped or a number)


def _open(title: str, description: str, width: float, height: float, *, kind: str) -> list[str]:
    """The <svg> element with its title and description, named for assistive technology."""
    key = (
        "chart-"
        + hashlib.sha1(  # noqa: S324 (an element id, not security)
            f"{title}|{description}".encode()
        ).hexdigest()[:10]
    )
    return [
        f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{key}-title {key}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<desc id="{key}-desc">{escape(description)}</desc>',
    ]


def _chart(title: str, description: str, rows: list[tuple[str, float]], draw) -> Chart:  # type: ignore[no-untyped-def]
    ticks = _ticks(rows)
    top = ticks[-1]
    parts = [*_open(title, description, WIDTH, HEIGHT, kind="vertical"), *_axes(ticks)]
    if rows:
        parts.extend(draw(rows, top))
    else:
        parts.append(
            f'<text class="chart-empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            'text-anchor="middle">-</text>'
        )
    parts.append("</svg>")
    return Chart(title=title, description=description, rows=rows, svg=mark_safe("".join(parts)))  # noqa: S308 (every value above is escaped or a number)


def _ticks(rows: list[tuple[str, float]]) -> list[float]:
    counts = all(float(value).is_integer() for _, value in rows)
    return nice_ticks(max((value for _, value in rows), default=0), integers=counts)


def _y(value: float, top: float) -> float:
    plot = HEIGHT - TOP - BOTTOM
    return round(TOP + plot - (value / top) * plot, 2)


def _axes(ticks: list[float]) -> list[str]:
    top = ticks[-1]
    out = []
    for tick in ticks:
        y = _y(tick, top)
        out.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
            f'<text class="chart-tick" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">'
            f"{format_number(tick)}</text>"
        )
    base = HEIGHT - BOTTOM
    out.append(
        f'<line class="chart-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>'
    )
    out.append(f'<line class="chart-axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}"/>')
    return out


def _label(index: int, count: int, x: float, text: str) -> str:
    every = math.ceil(count / MAX_LABELS)
    if index % every:
        return ""
    y = HEIGHT - BOTTOM + 16
    return (
        f'<text class="chart-label" x="{round(x, 2)}" y="{y}" text-anchor="middle">'
        f"{escape(text)}</text>"
    )


def _bars(rows: list[tuple[str, float]], top: float) -> list[str]:
    slot = (WIDTH - LEFT - RIGHT) / len(rows)
    width = max(slot * 0.7, 1)
    out = []
    for i, (label, value) in enumerate(rows):
        x = LEFT + i * slot + (slot - width) / 2
        y = _y(value, top)
        height = round(HEIGHT - BOTTOM - y, 2)
        out.append(
            f'<rect class="chart-bar" x="{round(x, 2)}" y="{y}" width="{round(width, 2)}" '
            f'height="{height}"><title>{escape(label)}: {format_number(value)}</title></rect>'
        )
        out.append(_label(i, len(rows), x + width / 2, label))
    return out


def _line(rows: list[tuple[str, float]], top: float) -> list[str]:
    slot = (WIDTH - LEFT - RIGHT) / max(len(rows) - 1, 1)
    points = [
        (LEFT + i * slot if len(rows) > 1 else (LEFT + WIDTH - RIGHT) / 2, _y(value, top))
        for i, (_, value) in enumerate(rows)
    ]
    path = " ".join(f"{round(x, 2)},{y}" for x, y in points)
    out = [f'<polyline class="chart-line" points="{path}"/>']
    for i, ((label, value), (x, y)) in enumerate(zip(rows, points, strict=True)):
        out.append(
            f'<circle class="chart-point" cx="{round(x, 2)}" cy="{y}" r="3">'
            f"<title>{escape(label)}: {format_number(value)}</title></circle>"
        )
        out.append(_label(i, len(rows), x, label))
    return out
