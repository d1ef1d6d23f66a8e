"""Server-side SVG charts: a line chart (a score over days) and a bar chart (a count per grade).

The console's CSP forbids inline script and style and the servers have no internet access, so charts
are drawn here as plain SVG markup: colours come from CSS classes (console/static/scores.css), never
from ``style=`` attributes. Every label is escaped — unit names and the like come from people — and
each chart carries a ``<title>``/``aria-label`` so a screen reader gets the numbers too (the pages
also print them in a table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 16, 16, 36
Y_TICKS = (0, 25, 50, 75, 100)
MAX_X_LABELS = 6


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    css: str = ""  # an extra class, e.g. the grade (bar-A … bar-E)


def _num(value: float) -> str:
    """Coordinates with at most one decimal: short markup, no exponent notation."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(title: str, body: list[str], css: str) -> Markup:
    label = escape(title)
    # Every text that reaches the markup (labels, title, classes) went through escape() above.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{label}"><title>{label}</title>{"".join(body)}</svg>')


def line_chart(points: Sequence[tuple[str, float | None]], *, title: str, y_max: float = 100.0,
               empty_text: str = "") -> Markup:
    """A line over ``points`` (x label, value or None for a gap), the y axis 0–``y_max`` with labels.

    A missing day breaks the line instead of being drawn as 0: a day without stored values is not a
    day the unit scored nothing.
    """
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    body = []
    for tick in Y_TICKS:
        value = y_max * tick / 100
        y = MARGIN_TOP + plot_h * (1 - tick / 100)
        body.append(f'<line class="chart-grid" x1="{MARGIN_LEFT}" y1="{_num(y)}" x2="{WIDTH - MARGIN_RIGHT}" '
                    f'y2="{_num(y)}"/>')
        body.append(f'<text class="chart-axis" x="{MARGIN_LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">'
                    f'{_num(value)}</text>')
    if not any(v is not None for _, v in points):
        body.append(f'<text class="chart-empty" x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">'
                    f'{escape(empty_text)}</text>')
        return _svg(title, body, "chart-line")
    step = plot_w / max(len(points) - 1, 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        clipped = min(max(value, 0.0), y_max)
        return MARGIN_LEFT + i * step, MARGIN_TOP + plot_h * (1 - clipped / y_max)

    runs: list[list[tuple[float, float]]] = [[]]
    for i, (_, value) in enumerate(points):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(xy(i, value))
    for run in runs:
        if len(run) > 1:
            coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in run)
            body.append(f'<polyline class="chart-series" points="{coords}"/>')
        elif run:
            body.append(f'<circle class="chart-dot" cx="{_num(run[0][0])}" cy="{_num(run[0][1])}" r="2.5"/>')
    every = max(1, -(-len(points) // MAX_X_LABELS))  # ceil: at most MAX_X_LABELS labels on the x axis
    shown = set(range(0, len(points), every)) | {len(points) - 1}
    for i in sorted(shown):
        x = MARGIN_LEFT + i * step
        anchor = "end" if i == len(points) - 1 and len(points) > 1 else "middle" if i else "start"
        body.append(f'<text class="chart-axis" x="{_num(x)}" y="{HEIGHT - 12}" text-anchor="{anchor}">'
                    f'{escape(points[i][0])}</text>')
    return _svg(title, body, "chart-line")


def bar_chart(bars: Sequence[Bar], *, title: str) -> Markup:
    """Vertical bars with their label under and their value above; the scale starts at 0."""
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = max((b.value for b in bars), default=0) or 1
    body = [f'<line class="chart-grid" x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y2="{MARGIN_TOP + plot_h}"/>']
    slot = plot_w / max(len(bars), 1)
    width = slot * 0.6
    for i, bar in enumerate(bars):
        h = plot_h * max(bar.value, 0) / top
        x = MARGIN_LEFT + i * slot + (slot - width) / 2
        y = MARGIN_TOP + plot_h - h
        css = f"chart-bar {bar.css}".strip()
        value = _num(bar.value)
        body.append(f'<rect class="{escape(css)}" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
                    f'height="{_num(h)}"><title>{escape(bar.label)}: {value}</title></rect>')
        body.append(f'<text class="chart-value" x="{_num(x + width / 2)}" y="{_num(y - 4)}" '
                    f'text-anchor="middle">{value}</text>')
        body.append(f'<text class="chart-axis" x="{_num(x + width / 2)}" y="{HEIGHT - 12}" '
                    f'text-anchor="middle">{escape(bar.label)}</text>')
    return _svg(title, body, "chart-bars")
