"""A line plot as inline SVG, drawn on the server (no script, readable without one)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from mirror.ui.units import human_bytes

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 10, 30
MAX_POINTS = 400


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    css_class: str
    values: Sequence[float]


def _thin(times: Sequence[float], lines: Sequence[Line]) -> tuple[list[float], list[list[float]]]:
    """At most MAX_POINTS points (every n-th, always the last)."""
    step = max(1, -(-len(times) // MAX_POINTS))
    keep = list(range(0, len(times), step))
    if keep and keep[-1] != len(times) - 1:
        keep.append(len(times) - 1)
    return [times[i] for i in keep], [[line.values[i] for i in keep] for line in lines]


def _stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))


def line_plot(title: str, times: Sequence[float], lines: Sequence[Line]) -> str:
    """An SVG plot of `lines` (byte values) over `times`; its <title> and <desc> say what
    it shows to assistive technology."""
    xs, values = _thin(times, lines)
    top = max([max(v, default=0.0) for v in values] + [1.0])
    start = xs[0] if xs else 0.0
    span = (xs[-1] - start) if len(xs) > 1 else 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - start) / span * inner_w

    def y(v: float) -> float:
        return TOP + inner_h - v / top * inner_h

    last = ", ".join(
        f"{line.label} {human_bytes(v[-1] if v else 0)}"
        for line, v in zip(lines, values, strict=True)
    )
    parts = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="plot-title plot-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="plot-title">{escape(title)}</title>',
        f'<desc id="plot-desc">{escape(last)}'
        + (f", from {_stamp(xs[0])} to {_stamp(xs[-1])} UTC" if xs else "")
        + "</desc>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + inner_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + inner_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">'
        f"{escape(human_bytes(top))}</text>",
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + inner_h}" text-anchor="end">0</text>',
    ]
    if xs:
        parts.append(
            f'<text class="tick" x="{LEFT}" y="{HEIGHT - 8}">{escape(_stamp(xs[0]))}</text>'
        )
        parts.append(
            f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
            f"{escape(_stamp(xs[-1]))}</text>"
        )
    for line, series in zip(lines, values, strict=True):
        if len(series) == 1:
            parts.append(
                f'<circle class="{line.css_class}" cx="{x(xs[0]):.1f}" '
                f'cy="{y(series[0]):.1f}" r="3"/>'
            )
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(xs, series, strict=True))
        parts.append(f'<polyline class="{line.css_class}" fill="none" points="{coords}"/>')
    parts.append("</svg>")
    return "\n".join(parts)
