"""Inline SVG charts for the console: no script, no outside library, readable on a phone.

Each function returns markup; every label that came from the database is escaped here.
"""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

GREEN, RED, GREY, BLUE = "#2e7d32", "#c62828", "#cfd8dc", "#1565c0"


def bars(rows: list[tuple[str, float, str]], width: int = 640, row_height: int = 26) -> Markup:
    """Horizontal bars: (label, value, text shown after the bar). Scales to the largest value."""
    if not rows:
        return Markup("")
    label_w, text_w = 150, 90
    top = max((v for _, v, _ in rows), default=0) or 1
    span = width - label_w - text_w
    height = row_height * len(rows) + 4
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="排行" '
             f'preserveAspectRatio="xMinYMin meet">']
    for i, (label, value, text) in enumerate(rows):
        y = i * row_height + 2
        w = max(2.0, span * value / top) if value else 0
        parts.append(f'<text x="{label_w - 6}" y="{y + row_height * 0.65:.1f}" text-anchor="end" '
                     f'font-size="14">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_height - 8}" fill="{BLUE}" rx="2"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + row_height * 0.65:.1f}" font-size="13">'
                     f'{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def strip(weeks: list[tuple[dt.date, int, bool]], cell: int = 14) -> Markup:
    """Contacts per week, oldest left: green with a 面谈, blue with contacts but no 面谈, grey none."""
    if not weeks:
        return Markup("")
    width = len(weeks) * (cell + 2)
    parts = [f'<svg class="strip" width="{width}" height="{cell + 2}" viewBox="0 0 {width} {cell + 2}" role="img" '
             f'aria-label="每周联系">']
    for i, (week, count, face) in enumerate(weeks):
        colour = GREEN if face else BLUE if count else GREY
        parts.append(f'<rect x="{i * (cell + 2)}" y="1" width="{cell}" height="{cell}" fill="{colour}" rx="2">'
                     f'<title>{week.month}月{week.day}日那周：联系 {count} 次{"，有面谈" if face else ""}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def meter(part: int, whole: int, width: int = 220) -> Markup:
    """A progress bar of part / whole."""
    share = part / whole if whole else 0
    return Markup(f'<svg class="meter" width="{width}" height="12" viewBox="0 0 {width} 12" role="img" '
                  f'aria-label="{part}/{whole}"><rect width="{width}" height="12" fill="{GREY}" rx="3"/>'
                  f'<rect width="{width * share:.1f}" height="12" fill="{GREEN}" rx="3"/></svg>')


def number(value: float) -> str:
    """1.5, 4.25, 2 — as the chat's ranking writes scores."""
    return ("%.2f" % value).rstrip("0").rstrip(".")


def ranking(rows: list) -> Markup:
    """The month's 常青藤 ranking (``month_ranking`` rows) as bars of weighted score."""
    return bars([(r.squad, r.score, f"{number(r.score)} 分 / {r.count} 项") for r in rows])
