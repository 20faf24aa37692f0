"""The report as one self-contained HTML file: charts as inline SVG, no script, no fonts or
images to fetch. A Content-Security-Policy of `default-src 'none'` makes the browser refuse
any request the page might make, so it opens the same offline, from a mail attachment or
an artefact store. The tables are the Markdown's sections (`render.sections`).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from aifinops.reporting import svg
from aifinops.reporting.render import Section, money, percent, sections, summary_line
from aifinops.reporting.report import Report

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0 auto; max-width: 960px; padding: 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.summary { color: #555; margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card b { display: block; font-size: 19px; } .card span { color: #666; font-size: 12px; }
.card.alert { border-color: #e15759; } .card.alert b { color: #c0392b; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: left; }
th { background: #f6f6f6; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; font-size: 12px; margin: 2px 0; }
.unknown { color: #c0392b; font-weight: 600; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .grid { stroke: #e5e5e5; } svg .axis-line { stroke: #999; }
svg .axis { fill: #777; } svg .value { fill: #333; }
.anomaly { display: flex; gap: 16px; align-items: center; border-top: 1px solid #eee; padding: 6px 0; }
.anomaly .facts { font-size: 13px; }
"""


def _table(section: Section) -> str:
    head = "".join(
        f'<th class="num">{escape(h)}</th>'
        if i in section.right_aligned
        else f"<th>{escape(h)}</th>"
        for i, h in enumerate(section.headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(c)}</td>'
            if i in section.right_aligned
            else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in section.rows
    )
    notes = "".join(
        f'<p class="note{" unknown" if n.startswith("UNKNOWN") else ""}">{escape(n)}</p>'
        for n in section.notes
        if n
    )
    return (
        f'<section id="{escape(section.key)}"><h2>{escape(section.title)}</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}</section>"
    )


def _cards(report: Report) -> str:
    project = next((b for b in report.by_key if b.key == "Project"), None)
    cards = [
        (f"{money(report.total.cost, report.currency)}", report.cost_column, False),
        (
            f"{money(report.total.billed, report.currency)}",
            "BilledCost (invoice)",
            False,
        ),
    ]
    if project is not None:
        cards.append((percent(project.untagged_share), "of charges without Project", False))
    if report.anomalies is not None:
        count = len(report.open_anomalies)
        cards.append((str(count), "open anomalies", count > 0))
    if report.idle_gpu is not None:
        cards.append((money(report.idle_gpu.idle_cost, report.currency), "idle-GPU cost", False))
    if report.malformed_count:
        cards.append((f"{report.malformed_count:,}", "malformed rows left out", True))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{" alert" if alert else ""}"><b>{escape(value)}</b><span>'
            f"{escape(label)}</span></div>"
            for value, label, alert in cards
        )
        + "</div>"
    )


def _charts(report: Report, top: int) -> list[str]:
    parts = []
    trend = svg.stacked_columns(report.trend, currency=report.currency)
    if trend:
        parts.append(f'<section id="chart-trend"><h2>Cost trend by project</h2>{trend}</section>')
    shares = [
        (b.key, float(b.untagged_share)) for b in report.by_key if b.untagged_share is not None
    ]
    if shares:
        parts.append(
            '<section id="chart-untagged"><h2>Untagged share of charges</h2>'
            f"{svg.share_bars(shares)}</section>"
        )
    if report.movers:
        rows = [(f"{m.project} / {m.service}", m.change) for m in report.movers[:top]]
        parts.append(
            '<section id="chart-movers"><h2>Top movers (last 7 days against the 7 before)</h2>'
            + svg.horizontal_bars(
                rows,
                name="movers",
                label="Change in cost",
                diverging=True,
                currency=report.currency,
            )
            + "</section>"
        )
    if report.anomalies:
        items = []
        for anomaly in report.anomalies[: min(top, 6)]:
            expected = {j.day: j.expected for j in anomaly.days if j.expected is not None}
            chart = svg.anomaly_chart(anomaly.history, [j.day for j in anomaly.days], expected)
            resources = ", ".join(
                f"{r.resource} ({r.increase:+,.2f})" for r in anomaly.resources[:3]
            )
            items.append(
                f'<div class="anomaly">{chart}<div class="facts"><b>{escape(anomaly.project)} / '
                f"{escape(anomaly.service)}</b>{' (open)' if anomaly.open else ''}<br>"
                f"{anomaly.first_day} to {anomaly.last_day}, {escape(anomaly.method)}: "
                f"{money(anomaly.last_cost)} against {money(anomaly.last_expected)} expected; "
                f"excess so far {money(anomaly.excess_so_far, report.currency)}<br>"
                f"{escape(resources or 'no resource ids')}</div></div>"
            )
        parts.append(
            '<section id="chart-anomalies"><h2>Anomalies</h2>' + "".join(items) + "</section>"
        )
    if report.idle_gpu is not None and report.idle_gpu.rows:
        rows = [(f"{r.project} / {r.fleet}", r.idle_cost) for r in report.idle_gpu.rows[:top]]
        parts.append(
            '<section id="chart-idle-gpu"><h2>Idle-GPU cost by project and fleet</h2>'
            + svg.horizontal_bars(
                rows,
                name="idle-gpu",
                label="Idle-GPU cost",
                colour="#f28e2b",
                currency=report.currency,
            )
            + "</section>"
        )
    return parts


def to_html(report: Report, top: int = 15) -> str:
    """One HTML document, no external resource."""
    names = ", ".join(Path(s).name for s in report.sources)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.notes)
    body = [
        f"<header><h1>Cost report: {escape(names)}</h1>",
        f'<p class="summary">{escape(summary_line(report))}</p>{notes}</header>',
        _cards(report),
        *_charts(report, top),
        *(_table(s) for s in sections(report, top)),
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Cost report: {escape(names)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
