"""The weekly report as HTML (inline SVG charts, for mail clients), CSV and JSON.

The HTML has no JavaScript, no stylesheet link and no image URL: mail clients block external
resources and scripts, and many drop <style> blocks, so every style is inline. Charts are inline
SVG (Apple Mail, Thunderbird and most web mail show it; Outlook for Windows does not, which is why
every charted number is also in a table next to it).

All three formats are made from ``report_data``, so their numbers cannot disagree.
"""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any

from reports.build import Report

__all__ = ["render_csv", "render_html", "render_json", "report_data"]


def report_data(report: Report) -> dict[str, Any]:
    """The report as JSON-able data (the JSON format, and what CSV and HTML are made of)."""
    limits = report.thresholds
    return {
        "week": report.week, "start": report.start.isoformat(), "end": report.end.isoformat(),
        "thresholds": {"complaint_rate": limits.complaint_rate, "bounce_review": limits.bounce_review,
                       "bounce_pause": limits.bounce_pause},
        "provider": {"week": report.provider.as_dict(), "previous": report.previous.as_dict()},
        "senders": [{"kind": s.kind, "value": s.value, "week": s.week.as_dict(),
                     "previous": s.previous.as_dict()} for s in report.senders],
        "bounce_groups": report.bounce_groups,
        "decisions": [{"kind": d.kind, "value": d.value, "state": d.state, "rule": d.rule,
                       "decided_at": d.decided_at.isoformat(),
                       "ended_at": d.ended_at.isoformat() if d.ended_at else None, "ended": d.ended}
                      for d in report.decisions],
        "rule_precision": report.precision,
        "ips": [{"ip": h.ip, "block_bounces": h.block_bounces, "blocklists": h.blocklists}
                for h in report.ips],
        "blocklists": report.blocklists,
        "scripts": [{"script": script, "complaints": count} for script, count in report.scripts],
    }


def render_json(report: Report) -> str:
    """The report as indented JSON."""
    return json.dumps(report_data(report), indent=2, ensure_ascii=False) + "\n"


def _csv_rows(data: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, value in data["thresholds"].items():
        rows.append(["threshold", "", "", name, value])
    for period in ("week", "previous"):
        rows += [["provider", period, "", k, v] for k, v in data["provider"][period].items()]
    for sender in data["senders"]:
        for period in ("week", "previous"):
            rows += [[sender["kind"], period, sender["value"], k, v] for k, v in sender[period].items()]
    rows += [["bounce_group", "", group, "bounces", count] for group, count in data["bounce_groups"].items()]
    rows += [["decision", d["state"], f"{d['kind']}:{d['value']}", d["rule"] or "", d["ended"]]
             for d in data["decisions"]]
    for p in data["rule_precision"]:
        rows += [["rule_precision", "", p["rule"], k, p[k]]
                 for k in ("confirmed", "false_positives", "precision")]
    for ip in data["ips"]:
        rows.append(["ip", "", ip["ip"], "block_bounces", ip["block_bounces"]])
        rows += [["ip_blocklist", "", ip["ip"], name, count] for name, count in ip["blocklists"].items()]
    rows += [["blocklist", "", name, "bounces", count] for name, count in data["blocklists"].items()]
    rows += [["script", "", s["script"], "complaints", s["complaints"]] for s in data["scripts"]]
    return rows


def render_csv(report: Report) -> str:
    """The report as one long CSV table: section, period, name, metric, value (rates as fractions)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(["section", "period", "name", "metric", "value"])
    for row in _csv_rows(report_data(report)):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def percent(rate: float | None) -> str:
    """0.00312 -> '0.312 %'; None (no sends) -> '–'."""
    return "–" if rate is None else f"{rate * 100:.3f} %"


_TD = 'style="padding:2px 8px;border-bottom:1px solid #ddd;text-align:{}"'


def _table(head: list[str], rows: list[list[str]], keys: list[list[str]] | None = None) -> str:
    """A table; ``keys`` gives each cell a data-key (tests and scrapers read the numbers by it)."""
    cells = "".join(f"<th {_TD.format('left')}>{escape(h)}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        tds = []
        for j, cell in enumerate(row):
            key = keys[i][j] if keys and keys[i][j] else ""
            attribute = f' data-key="{escape(key)}"' if key else ""
            tds.append(f"<td {_TD.format('right' if j else 'left')}{attribute}>{escape(cell)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(head)}" {_TD.format("left")}>none this week</td></tr>')
    return f'<table style="border-collapse:collapse;font-size:13px"><tr>{cells}</tr>{"".join(body)}</table>'


def _bars(title: str, bars: list[tuple[str, float]], lines: list[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG, with vertical threshold lines."""
    width, label, row = 560, 150, 22
    top = max([value for _, value in bars] + [value for _, value in lines] + [1e-9])
    scale = (width - label - 70) / top
    height = row * max(len(bars), 1) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f"<title>{escape(title)}</title>"]
    for i, (name, value) in enumerate(bars):
        y = 10 + i * row
        shown = f"{value * 100:.3f} %" if unit == "%" else f"{value:g}"
        parts.append(f'<text x="0" y="{y + 14}" font-size="12" font-family="sans-serif">'
                     f'{escape(name[:24])}</text>'
                     f'<rect x="{label}" y="{y}" width="{value * scale:.1f}" height="16" fill="#4a7ab5"/>'
                     f'<text x="{label + value * scale + 4:.1f}" y="{y + 13}" font-size="11" '
                     f'font-family="sans-serif">{shown}</text>')
    for name, value in lines:
        x = label + value * scale
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 14}" stroke="#c0392b" '
                     f'stroke-dasharray="4 2"/><text x="{x + 2:.1f}" y="{height - 3}" font-size="10" '
                     f'fill="#c0392b" font-family="sans-serif">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_SHOWN_SENDERS = 25  # per kind in the HTML (the CSV and JSON list every sender)


def _provider(data: dict[str, Any]) -> str:
    week, previous, limits = data["provider"]["week"], data["provider"]["previous"], data["thresholds"]
    limit = {"complaint_rate": percent(limits["complaint_rate"]),
             "bounce_rate": f"{percent(limits['bounce_review'])} / {percent(limits['bounce_pause'])}"}
    rows, keys = [], []
    for name in ("sends", "complaints", "bounces", "hard_bounces", "complaint_rate", "bounce_rate"):
        show = percent if name.endswith("_rate") else str
        rows.append([name.replace("_", " "), show(week[name]), show(previous[name]), limit.get(name, "")])
        keys.append(["", f"provider.week.{name}", f"provider.previous.{name}", ""])
    chart = _bars("Complaint and bounce rates", [
        ("complaints, this week", week["complaint_rate"] or 0.0),
        ("complaints, last week", previous["complaint_rate"] or 0.0),
        ("bounces, this week", week["bounce_rate"] or 0.0),
        ("bounces, last week", previous["bounce_rate"] or 0.0)],
        [("Gmail/Yahoo", limits["complaint_rate"]), ("SES 5%", limits["bounce_review"])], unit="%")
    return _table(["", "this week", "last week", "threshold"], rows, keys) + chart


def _senders(data: dict[str, Any], kind: str) -> str:
    rows, keys = [], []
    for s in [s for s in data["senders"] if s["kind"] == kind][:_SHOWN_SENDERS]:
        week, previous = s["week"], s["previous"]
        rows.append([s["value"], str(week["sends"]), str(week["complaints"]),
                     percent(week["complaint_rate"]), percent(previous["complaint_rate"]),
                     str(week["hard_bounces"]), percent(week["bounce_rate"]),
                     percent(previous["bounce_rate"])])
        prefix = f"{kind}.{s['value']}."
        keys.append(["", prefix + "sends", prefix + "complaints", prefix + "complaint_rate", "",
                     prefix + "hard_bounces", prefix + "bounce_rate", ""])
    head = [kind, "sends", "complaints", "rate", "last week", "hard bounces", "rate", "last week"]
    return _table(head, rows, keys)


def _sections(data: dict[str, Any]) -> list[tuple[str, str]]:
    groups = data["bounce_groups"]
    return [
        ("Provider-wide", _provider(data)),
        ("Customers, worst first", _senders(data, "customer")),
        ("Accounts, worst first", _senders(data, "account")),
        ("Bounces by signal group", _table(["group", "bounces"], [[g, str(n)] for g, n in groups.items()],
                                           [["", f"bounce_group.{g}"] for g in groups])
         + (_bars("Bounces by signal group", [(g, float(n)) for g, n in groups.items()], [])
            if groups else "")),
        ("Senders acted on, and how it ended", _table(
            ["sender", "state", "rule", "from", "until", "ended"],
            [[f"{d['kind']} {d['value']}", d["state"], d["rule"] or "", d["decided_at"][:16],
              (d["ended_at"] or "")[:16], d["ended"].replace("_", " ")] for d in data["decisions"]])),
        ("Rule precision (admin verdicts)", _table(
            ["rule", "confirmed", "false positives", "precision"],
            [[p["rule"], str(p["confirmed"]), str(p["false_positives"]),
              "–" if p["precision"] is None else f"{p['precision'] * 100:.0f} %"]
             for p in data["rule_precision"]])),
        ("Outbound IP health", _table(
            ["outbound IP", "block bounces", "blocklists named"],
            [[h["ip"], str(h["block_bounces"]), ", ".join(f"{n} ({c})" for n, c in h["blocklists"].items())]
             for h in data["ips"]], [["", f"ip.{h['ip']}.block_bounces", ""] for h in data["ips"]])
         + "<p>Blocklists named in any bounce: " + escape(", ".join(
             f"{n} ({c})" for n, c in data["blocklists"].items()) or "none") + "</p>"),
        ("Scripts with the most complaints", _table(
            ["script", "complaints"], [[s["script"], str(s["complaints"])] for s in data["scripts"]],
            [["", f"script.{s['script']}"] for s in data["scripts"]])),
    ]


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline styles and SVG, no scripts, no links out)."""
    data = report_data(report)
    body = "".join(f'<h2 style="font-size:16px;margin:24px 0 8px">{escape(title)}</h2>{html}'
                   for title, html in _sections(data))
    title = f"Ricochet reputation report, {data['week']}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>{escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;color:#222;max-width:760px">'
            f'<h1 style="font-size:20px">{escape(title)}</h1>'
            f"<p>{escape(data['start'][:10])} to {escape(data['end'][:10])} (excluded), UTC. "
            "Rates are per send; "
            f"the bounce rate counts hard bounces, as Amazon SES does.</p>{body}</body></html>\n")
