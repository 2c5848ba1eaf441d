"""Plots as inline SVG fragments: plain functions from numbers to markup, no scripts.

Every drawn mark (a bar, an episode span) has the class ``mark``; every plot is an ``<svg
class="plot">`` with a ``<title>``, sized by its ``viewBox`` so it scales with the page.
Text is escaped, so labels may come from records.

>>> svg = paired_bars(["a", "b"], [Series("reference", [0.5, 0.5]), Series("current", [1, 0])],
...                   title="car")
>>> svg.count('class="mark"'), svg.startswith('<svg class="plot"')
(4, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 420, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 34, 56
COLOURS = ("#7f8fa6", "#e67e22", "#2e86de", "#27ae60", "#8e44ad")
"""Series colours in order: reference first, then current."""
OPEN_COLOUR, RESOLVED_COLOUR = "#c0392b", "#f5b041"


@dataclass(frozen=True)
class Series:
    """A named list of values, one per category of a bar plot."""

    name: str
    values: Sequence[float]
    colour: str | None = None


@dataclass(frozen=True)
class Span:
    """An interval on a timeline; ``open`` when it had not ended when the data was read."""

    start: datetime
    end: datetime
    open: bool = False
    note: str = ""


@dataclass(frozen=True)
class Lane:
    """One row of a timeline, e.g. one monitor's episodes."""

    label: str
    spans: list[Span] = field(default_factory=list)


def compact(value: float) -> str:
    """A short label for a number.

    >>> [compact(v) for v in (0, 0.1234, 12.5, 1234.0, 52000.0, 2.5e6, -3e9)]
    ['0', '0.123', '12.5', '1.23k', '52k', '2.5M', '-3G']
    """
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def percent(value: float) -> str:
    """A share as a percentage, to a whole percent unless that would hide a half.

    >>> percent(0.256), percent(0.125), percent(0.5)
    ('26%', '12.5%', '50%')
    """
    scaled = value * 100
    return f"{scaled:.1f}%" if abs(scaled - round(scaled)) == 0.5 else f"{scaled:.0f}%"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _open(title: str, width: int = WIDTH, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" class="plot-title">{escape(title)}</text>',
    ]


def _legend(names: Sequence[tuple[str, str]], right: float) -> list[str]:
    parts, x = [], right
    for name, colour in reversed(names):
        x -= 12 + 6.2 * len(name)
        parts.append(
            f'<rect x="{x:.1f}" y="8" width="9" height="9" fill="{colour}"/>'
            f'<text x="{x + 12:.1f}" y="16" class="legend">{escape(name)}</text>'
        )
        x -= 8
    return parts


def paired_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    value_format: Callable[[float], str] = percent,
    line: tuple[float, str] | None = None,
    y_max: float | None = None,
) -> str:
    """Grouped bars: for each label, one bar per series (e.g. reference beside current).

    ``line`` draws a dashed horizontal reference line at a value, with its label.
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max([v for s in series for v in s.values] + [line[0] if line else 0.0] + [0.0])
    top = y_max if y_max is not None else _nice_max(highest)
    out = _open(title)
    for i in range(3):  # gridlines and y ticks at 0, half, top
        value = top * i / 2
        y = TOP + plot_h - plot_h * i / 2
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" class="tick" text-anchor="end">'
            f"{escape(value_format(value))}</text>"
        )
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = group_w * 0.8 / max(len(series), 1)
    step = max(1, math.ceil(groups / 12))
    rotate = any(len(label) > 6 for label in labels) or groups > 6
    for g, label in enumerate(labels):
        x0 = LEFT + g * group_w + group_w * 0.1
        for s_index, s in enumerate(series):
            value = float(s.values[g]) if g < len(s.values) else 0.0
            height = plot_h * min(max(value, 0.0), top) / top
            colour = s.colour or COLOURS[s_index % len(COLOURS)]
            x = x0 + s_index * bar_w
            out.append(
                f'<rect class="mark" data-series="{escape(s.name)}" x="{x:.1f}" '
                f'y="{TOP + plot_h - height:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{escape(label)}: '
                f"{escape(s.name)} {escape(value_format(value))}</title></rect>"
            )
        if g % step == 0:
            cx, cy = LEFT + (g + 0.5) * group_w, TOP + plot_h + 12
            transform = f' transform="rotate(-35 {cx:.1f} {cy:.1f})"' if rotate else ""
            anchor = "end" if rotate else "middle"
            out.append(
                f'<text x="{cx:.1f}" y="{cy:.1f}" class="tick" text-anchor="{anchor}"'
                f"{transform}>{escape(label)}</text>"
            )
    if line is not None:
        y = TOP + plot_h - plot_h * min(line[0], top) / top
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="limit"/>'
            f'<text x="{LEFT + plot_w}" y="{y - 3:.1f}" class="tick" text-anchor="end">'
            f"{escape(line[1])}</text>"
        )
    names = [(s.name, s.colour or COLOURS[i % len(COLOURS)]) for i, s in enumerate(series)]
    out += _legend(names, WIDTH - RIGHT)
    out.append("</svg>")
    return "".join(out)


def _time_label(moment: datetime, span_seconds: float) -> str:
    return moment.strftime("%H:%M:%S" if span_seconds < 3 * 3600 else "%m-%d %H:%M")


def timeline(lanes: Sequence[Lane], start: datetime, end: datetime, *, title: str) -> str:
    """Horizontal spans per lane on a shared time axis (e.g. drift-alert episodes)."""
    label_w, lane_h, width = 170, 22, 860
    height = TOP + lane_h * max(len(lanes), 1) + 40
    total = max((end - start).total_seconds(), 1e-9)
    plot_w = width - label_w - RIGHT
    out = _open(title, width, height)

    def x_of(moment: datetime) -> float:
        fraction = (moment - start).total_seconds() / total
        return label_w + plot_w * min(max(fraction, 0.0), 1.0)

    axis_y = TOP + lane_h * max(len(lanes), 1)
    for i in range(6):
        x = label_w + plot_w * i / 5
        moment = start + (end - start) * (i / 5)
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{axis_y}" class="grid"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" class="tick" text-anchor="{anchor}">'
            f"{escape(_time_label(moment, total))}</text>"
        )
    for row, lane in enumerate(lanes):
        y = TOP + row * lane_h
        out.append(
            f'<text x="{label_w - 6}" y="{y + 15}" class="tick" text-anchor="end">'
            f"{escape(lane.label)}</text>"
        )
        for span in lane.spans:
            x1, x2 = x_of(span.start), x_of(span.end)
            colour = OPEN_COLOUR if span.open else RESOLVED_COLOUR
            state = "open" if span.open else "resolved"
            note = f" {span.note}" if span.note else ""
            out.append(
                f'<rect class="mark" data-state="{state}" x="{x1:.1f}" y="{y + 4}" '
                f'width="{max(x2 - x1, 3.0):.1f}" height="{lane_h - 8}" fill="{colour}">'
                f"<title>{escape(lane.label)}: {state} {span.start.isoformat()} to "
                f"{span.end.isoformat()}{escape(note)}</title></rect>"
            )
    out += _legend([("open", OPEN_COLOUR), ("resolved", RESOLVED_COLOUR)], width - RIGHT)
    out.append("</svg>")
    return "".join(out)
