"""Small SVG charts drawn in Python, for a report that needs no script and no network.

Each function returns one `<svg>` element (a string) with a `data-chart` name, a `<title>`
per mark (the browser's tooltip) and text in the document's font. Values are in the
billing currency; axes use "nice" steps (1, 2, 2.5, 5 x 10^n).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from html import escape

# Tableau 10: distinct, readable on white, and kind to common colour blindness.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
UNTAGGED_COLOUR = "#bab0ac"
GOOD, BAD = "#59a14f", "#e15759"


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step that cuts `span` into about `ticks` parts."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _amount(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 100 or value == 0:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _open(name: str, width: int, height: int, label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="{escape(name)}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}">'
    ]


def _legend(names: Sequence[str], colours: Mapping[str, str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        row_y = y + i * 18
        out.append(
            f'<rect x="{x:.1f}" y="{row_y - 10:.1f}" width="12" height="12" '
            f'fill="{colours[name]}"/>'
            f'<text x="{x + 18:.1f}" y="{row_y:.1f}" class="legend">{escape(name[:28])}</text>'
        )
    return out


def series_colours(names: Sequence[str], untagged: str = "(untagged)") -> dict[str, str]:
    colours = {}
    palette = iter(PALETTE * 4)
    for name in names:
        colours[name] = UNTAGGED_COLOUR if name == untagged else next(palette)
    return colours


def stacked_columns(
    series: Sequence[tuple[str, Sequence[tuple[dt.date, float]]]],
    *,
    name: str = "trend",
    width: int = 900,
    height: int = 320,
    currency: str = "",
) -> str:
    """Daily cost per series as stacked columns (positive costs; credits are left to the
    tables), with a y axis and a legend on the right."""
    days = sorted({day for _, points in series for day, _ in points})
    if not days:
        return ""
    names = [n for n, _ in series]
    colours = series_colours(names)
    values = {n: dict(points) for n, points in series}
    totals = [sum(max(values[n].get(d, 0.0), 0.0) for n in names) for d in days]
    top = max(totals) or 1.0
    step = nice_step(top)
    axis_top = math.ceil(top / step) * step
    left, right, bottom, top_pad = 64, 190, 28, 10
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    slot = plot_w / len(days)
    bar = max(1.0, slot * 0.8)
    out = _open(name, width, height, f"Daily cost by project ({currency})")
    tick = 0.0
    while tick <= axis_top + step / 2:
        y = top_pad + plot_h - tick / axis_top * plot_h
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{_amount(tick)}</text>"
        )
        tick += step
    every = max(1, math.ceil(len(days) / 10))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        base = float(top_pad + plot_h)
        for n in names:
            value = max(values[n].get(day, 0.0), 0.0)
            if value <= 0:
                continue
            h = value / axis_top * plot_h
            base -= h
            out.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colours[n]}"><title>{escape(n)} {day}: {value:,.2f} {escape(currency)}'
                "</title></rect>"
            )
        if i % every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'class="axis">{day.strftime("%b %d")}</text>'
            )
    out += _legend(names, colours, left + plot_w + 16, top_pad + 12)
    out.append("</svg>")
    return "".join(out)


def horizontal_bars(
    rows: Sequence[tuple[str, float]],
    *,
    name: str,
    label: str,
    width: int = 900,
    colour: str = "#4e79a7",
    diverging: bool = False,
    currency: str = "",
) -> str:
    """One bar per row; `diverging` draws increases red to the right of zero and
    decreases green to the left."""
    if not rows:
        return ""
    row_h, left, right = 24, 300, 90
    height = row_h * len(rows) + 12
    plot_w = width - left - right
    low = min(0.0, *(v for _, v in rows)) if diverging else 0.0
    high = max(0.0, *(v for _, v in rows))
    span = (high - low) or 1.0
    zero_x = left + (0 - low) / span * plot_w
    out = _open(name, width, height, label)
    out.append(
        f'<line x1="{zero_x:.1f}" x2="{zero_x:.1f}" y1="0" y2="{height}" class="axis-line"/>'
    )
    for i, (text, value) in enumerate(rows):
        y = 6 + i * row_h
        x_end = left + (value - low) / span * plot_w
        x, w = (min(zero_x, x_end), abs(x_end - zero_x))
        fill = (BAD if value > 0 else GOOD) if diverging else colour
        shown = f"{value:+,.2f}" if diverging else f"{value:,.2f}"
        out.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" class="label">'
            f"{escape(text[:44])}</text>"
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1.0):.1f}" height="{row_h - 8}" '
            f'fill="{fill}"><title>{escape(text)}: {shown} {escape(currency)}</title></rect>'
            f'<text x="{max(x_end, zero_x) + 6:.1f}" y="{y + 16}" class="value">{shown}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def share_bars(
    rows: Sequence[tuple[str, float]], *, name: str = "untagged", width: int = 900
) -> str:
    """Per tag key, a 100% bar: tagged share and untagged share (0-1)."""
    if not rows:
        return ""
    row_h, left, right = 30, 150, 80
    height = row_h * len(rows) + 30
    plot_w = width - left - right
    out = _open(name, width, height, "Share of charges without each tag key")
    for i, (key, untagged) in enumerate(rows):
        y = 8 + i * row_h
        untagged = min(max(untagged, 0.0), 1.0)
        tagged_w = (1 - untagged) * plot_w
        out.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="label">{escape(key)}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{tagged_w:.1f}" height="{row_h - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(key)} tagged: {(1 - untagged):.1%}</title></rect>'
            f'<rect x="{left + tagged_w:.1f}" y="{y + 2}" width="{plot_w - tagged_w:.1f}" '
            f'height="{row_h - 8}" fill="{UNTAGGED_COLOUR}"><title>{escape(key)} untagged: '
            f"{untagged:.1%}</title></rect>"
            f'<text x="{left + plot_w + 8}" y="{y + 17}" class="value">{untagged:.1%}</text>'
        )
    legend_y = height - 8
    out.append(
        f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" fill="{PALETTE[0]}"/>'
        f'<text x="{left + 18}" y="{legend_y}" class="legend">tagged</text>'
        f'<rect x="{left + 90}" y="{legend_y - 10}" width="12" height="12" fill="{UNTAGGED_COLOUR}"/>'
        f'<text x="{left + 108}" y="{legend_y}" class="legend">untagged (share shown)</text>'
    )
    out.append("</svg>")
    return "".join(out)


def anomaly_chart(
    history: Sequence[tuple[dt.date, float]],
    flagged: Sequence[dt.date],
    expected: Mapping[dt.date, float],
    *,
    name: str = "anomaly",
    width: int = 420,
    height: int = 120,
) -> str:
    """A series' daily cost as a line, its expected cost dashed, flagged days as red dots."""
    if not history:
        return ""
    left, pad = 48, 10
    plot_w, plot_h = width - left - pad, height - 2 * pad - 14
    high = max([v for _, v in history] + list(expected.values()) + [0.0]) or 1.0
    first = history[0][0]
    span_days = max((history[-1][0] - first).days, 1)

    def point(day: dt.date, value: float) -> tuple[float, float]:
        return (
            left + (day - first).days / span_days * plot_w,
            pad + plot_h - value / high * plot_h,
        )

    out = _open(name, width, height, "Daily cost of the anomalous series")
    out.append(
        f'<text x="{left - 6}" y="{pad + 8}" text-anchor="end" class="axis">{_amount(high)}</text>'
        f'<text x="{left - 6}" y="{pad + plot_h}" text-anchor="end" class="axis">0</text>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{pad + plot_h}" y2="{pad + plot_h}" '
        'class="grid"/>'
    )
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(d, v) for d, v in history))
    out.append(f'<polyline points="{line}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    if expected:
        dashed = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (point(d, v) for d, v in sorted(expected.items()))
        )
        out.append(
            f'<polyline points="{dashed}" fill="none" stroke="#79706e" stroke-width="1.5" '
            'stroke-dasharray="4 3"/>'
        )
    values = dict(history)
    for day in flagged:
        x, y = point(day, values.get(day, 0.0))
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{BAD}"><title>{day}: '
            f"{values.get(day, 0.0):,.2f}</title></circle>"
        )
    out.append(
        f'<text x="{left}" y="{height - 2}" class="axis">{history[0][0]:%b %d}</text>'
        f'<text x="{left + plot_w}" y="{height - 2}" text-anchor="end" class="axis">'
        f"{history[-1][0]:%b %d}</text>"
    )
    out.append("</svg>")
    return "".join(out)
