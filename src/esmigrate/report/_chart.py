"""Charts as inline SVG, drawn here so that the report needs no script and no network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH = 760
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 34

#: One colour per phase (the rest share the last).
PHASE_COLOURS = {
    "preflight": "#9aa5b1",
    "resume": "#9aa5b1",
    "fill": "#3d7dd8",
    "copy": "#3d7dd8",
    "catchup": "#2a9d8f",
    "reconcile": "#e9c46a",
    "blocked": "#e76f51",
    "validate": "#8e6cc8",
    "cutover": "#d62828",
    "done": "#264653",
    "backfill": "#3d7dd8",
    "incremental": "#2a9d8f",
}
OTHER = "#6c757d"


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high`` (1, 2 or 5 times a power of ten apart)."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


class _Frame:
    """Axes from (0, 0) to (x_max, y_max) in the plot area."""

    def __init__(self, x_max: float, y_max: float) -> None:
        self.x_ticks = nice_ticks(x_max, 8)
        self.y_ticks = nice_ticks(y_max, 4)
        self.x_max = self.x_ticks[-1]
        self.y_max = self.y_ticks[-1]

    def x(self, value: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * value / self.x_max, 1)

    def y(self, value: float) -> float:
        return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value / self.y_max, 1)

    def axes(self, y_label: str) -> list[str]:
        parts = []
        for tick in self.y_ticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" class="grid"/>'
                f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{_number(tick)}</text>'
            )
        for tick in self.x_ticks:
            x = self.x(tick)
            parts.append(
                f'<text x="{x}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                f"{_number(tick)}s</text>"
            )
        parts.append(
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
            f'y2="{HEIGHT - BOTTOM}" class="axis"/>'
            f'<text x="12" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {TOP + (HEIGHT - TOP - BOTTOM) / 2})">{escape(y_label)}'
            "</text>"
        )
        return parts


def _svg(kind: str, title: str, parts: list[str]) -> str:
    return (
        f'<svg class="chart" data-chart="{kind}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>" + "".join(parts) + "</svg>"
    )


def _window(frame: _Frame, window: tuple[float, float] | None) -> list[str]:
    if window is None:
        return []
    x0, x1 = frame.x(window[0]), frame.x(window[1])
    return [
        f'<rect class="block" x="{x0}" y="{TOP}" width="{max(1.5, x1 - x0)}" '
        f'height="{HEIGHT - TOP - BOTTOM}"><title>write block</title></rect>'
    ]


def line_chart(
    kind: str,
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    x_max: float,
    y_label: str,
    window: tuple[float, float] | None = None,
) -> str:
    """A line of ``(seconds, value)`` points, the write-block ``window`` shaded."""
    frame = _Frame(x_max, max((v for _, v in points), default=0.0))
    parts = _window(frame, window) + frame.axes(y_label)
    if points:
        path = " ".join(f"{frame.x(t)},{frame.y(v)}" for t, v in points)
        parts.append(f'<polyline class="line" points="{path}"/>')
    return _svg(kind, title, parts)


def phase_chart(
    phases: Sequence[dict[str, float | str]],
    *,
    x_max: float,
    window: tuple[float, float] | None = None,
) -> str:
    """One bar per phase on a time axis (a Gantt chart), the write-block ``window`` shaded."""
    names = list(dict.fromkeys(str(p["phase"]) for p in phases))
    frame = _Frame(x_max, 1.0)
    band = (HEIGHT - TOP - BOTTOM) / max(1, len(names))
    parts = _window(frame, window)
    for row, name in enumerate(names):
        y = TOP + row * band
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + band / 2 + 4}" text-anchor="end">{escape(name)}</text>'
        )
    for phase in phases:
        name = str(phase["phase"])
        start, end = float(phase["start"]), float(phase["end"])
        x0 = frame.x(start)
        width = max(2.0, frame.x(end) - x0)
        y = TOP + names.index(name) * band + band * 0.15
        colour = PHASE_COLOURS.get(name, OTHER)
        label = f"{name} {start:.1f}s → {end:.1f}s"
        parts.append(
            f'<rect x="{x0}" y="{round(y, 1)}" width="{round(width, 1)}" '
            f'height="{round(band * 0.7, 1)}" fill="{colour}"><title>{escape(label)}</title></rect>'
        )
    for tick in frame.x_ticks:
        parts.append(
            f'<text x="{frame.x(tick)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{_number(tick)}s</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'class="axis"/>'
    )
    return _svg("phases", "Phases over time", parts)
