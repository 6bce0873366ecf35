"""Pictures of the figures people are shown: the 常青藤 monthly ranking (晾晒比拼) and the 周联 chart.

A picture travels as its data (a small JSON "spec", see ``Picture``) and is drawn when a channel sends
it: replies and outbox rows stay small, and no transaction waits for matplotlib. Every word on a
picture comes from ``templates/`` through the spec (``title``, ``subtitle``, ``unit``); this module only
draws. Drawing takes ~0.1 s of CPU, so channels call :func:`png` through :func:`render`, which runs it in
a worker thread, one at a time, and remembers the last few pictures (the same ranking goes to every
group).

The CJK font is Debian's ``fonts-noto-cjk`` (``.ci/run`` installs it); without it Chinese would be
drawn as empty boxes, so :func:`font_path` fails loudly instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)
MAX_BYTES = 2 * 1024 * 1024  # WeCom group robots take images up to 2 MB
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BAR = "#c0392b"
BAR_LOW = "#e6b0aa"
TARGET = "#2c3e50"

_lock = threading.Lock()
_cache: OrderedDict[str, bytes] = OrderedDict()
_CACHED = 8


class ChartError(RuntimeError):
    """The picture cannot be drawn (no CJK font, an unknown kind of chart)."""


def words(renderer: Any, template: str, **values: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """A chart's words from its template (``charts/…``): three heading lines (title, subtitle, axis),
    then one "label<TAB>value" line per bar."""
    heading: list[str] = []
    bars: list[tuple[str, str]] = []
    for line in renderer.text(template, **values).splitlines():
        if "\t" in line:
            label, _, value = line.partition("\t")
            bars.append((label.strip(), value.strip()))
        elif not bars:
            heading.append(line.strip())
    heading += [""] * (3 - len(heading))
    return heading, bars


def _mpl():
    """matplotlib, imported on first use: every process loads the handlers, few ever draw."""
    import matplotlib

    matplotlib.use("Agg")  # no display, ever
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return font_manager, FigureCanvasAgg, Figure


def font_path() -> str:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    font_manager, _, _ = _mpl()
    for found in font_manager.findSystemFonts():
        if "NotoSansCJK" in found or "NotoSerifCJK" in found:
            return found
    raise ChartError("没有中文字体：请安装 Debian 的 fonts-noto-cjk（.ci/run 会安装）")


def _font() -> Any:
    font_manager, _, _ = _mpl()
    return font_manager.FontProperties(fname=font_path())


def figure(spec: dict[str, Any]) -> Figure:
    """The chart of ``spec`` as a matplotlib Figure (tests read its texts back from here)."""
    kind = spec.get("kind")
    if kind == "ranking":
        return _ranking(spec)
    if kind == "compliance":
        return _compliance(spec)
    raise ChartError(f"unknown chart kind {kind!r}")


def _axes(width: float, height: float) -> tuple[Figure, Any, Any]:
    """A figure with one plot, and the CJK font every chart writes with."""
    font = _font()
    _, FigureCanvasAgg, Figure = _mpl()
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1), font


def _finish(fig: Figure, ax: Any, font: Any, spec: dict[str, Any], title_size: int) -> Figure:
    """What every chart ends with: no box on top and right, the title, the grey subtitle, a tight layout."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.suptitle(spec["title"], fontproperties=font, fontsize=title_size, fontweight="bold")
    if spec.get("subtitle"):
        ax.set_title(spec["subtitle"], fontproperties=font, fontsize=9, color="#555555")
    fig.tight_layout()
    return fig


def _ranking(spec: dict[str, Any]) -> Figure:
    """Horizontal bars, first place on top: group name (task force) on the left, score at the bar's end."""
    rows = spec["rows"]
    fig, ax, font = _axes(7.5, 1.6 + 0.42 * max(len(rows), 1))
    labels = [r["label"] for r in rows]
    scores = [float(r["score"]) for r in rows]
    positions = list(range(len(rows)))[::-1]
    top = max(scores, default=0) or 1.0
    bars = ax.barh(positions, scores, color=[BAR if s > 0 else BAR_LOW for s in scores], height=0.62)
    ax.set_yticks(positions, labels=labels, fontproperties=font, fontsize=10)
    for bar, row in zip(bars, rows):
        ax.text(bar.get_width() + top * 0.015, bar.get_y() + bar.get_height() / 2, row["value"],
                va="center", ha="left", fontproperties=font, fontsize=10)
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel(spec.get("unit", ""), fontproperties=font, fontsize=9)
    return _finish(fig, ax, font, spec, 14)


def _compliance(spec: dict[str, Any]) -> Figure:
    """The share of pairs that met 周联 each week, one bar per week, the last week highlighted."""
    weeks = spec["weeks"]
    fig, ax, font = _axes(6.0, 3.2)
    shares = [float(w["share"]) for w in weeks]
    colors = [BAR_LOW] * (len(weeks) - 1) + [BAR] if weeks else []
    bars = ax.bar(range(len(weeks)), shares, color=colors, width=0.6)
    ax.set_xticks(range(len(weeks)), labels=[w["label"] for w in weeks], fontproperties=font, fontsize=9)
    for bar, week in zip(bars, weeks):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 2, week["value"],
                ha="center", va="bottom", fontproperties=font, fontsize=9)
    ax.set_ylim(0, 115)
    ax.set_yticks([0, 50, 100], labels=["0%", "50%", "100%"], fontproperties=font, fontsize=8)
    return _finish(fig, ax, font, spec, 12)


def png(spec: dict[str, Any]) -> bytes:
    """The chart as PNG bytes (blocking; see :func:`render`)."""
    fig = figure(spec)
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    data = out.getvalue()
    if len(data) > MAX_BYTES:
        raise ChartError(f"图片 {len(data)} 字节，超过 2 MB")
    return data


def _png_cached(body: str, spec: dict[str, Any]) -> bytes:
    key = hashlib.sha1(body.encode()).hexdigest()
    with _lock:  # matplotlib's font cache and the Agg renderer are not meant for parallel threads
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        data = png(spec)
        _cache[key] = data
        while len(_cache) > _CACHED:
            _cache.popitem(last=False)
        return data


async def render(body: str) -> bytes:
    """The PNG of a picture body (the JSON a ``Picture`` travels as), drawn off the event loop."""
    try:
        spec = json.loads(body)
    except ValueError as exc:
        raise ChartError(f"图片数据不是 JSON：{exc}") from None
    if not isinstance(spec, dict):
        raise ChartError("图片数据不是 JSON 对象")
    return await asyncio.to_thread(_png_cached, body, spec)
