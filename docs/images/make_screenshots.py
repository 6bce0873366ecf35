"""Draws the pictures in docs/images from the real templates and chart code (fictional data):

    .venv/bin/python docs/images/make_screenshots.py      # needs Debian's chromium and fonts-noto-cjk

- ``dingtalk-links.png``: the 常青藤 call and the 岗位 list as a DingTalk Markdown message shows them, each
  command a tappable link (rendered to HTML here, screenshot by headless chromium);
- ``ranking.png``: the monthly ranking picture exactly as it is sent to the groups.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot import charts  # noqa: E402
from bot.commands import present  # noqa: E402
from bot.render import Renderer  # noqa: E402
from handlers.changqing.records import RankRow, ranking_picture  # noqa: E402
from storage.models.changqing import SIX_ROLES  # noqa: E402

OUT = Path(__file__).resolve().parent


def markdown_html(text: str) -> str:
    """The few Markdown forms Bangdai's messages use (bold, links, "- " lists, paragraphs)."""
    out, items = [], []
    for line in text.split("\n"):
        h = html.escape(line)
        h = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", h)
        h = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', h)
        if line.startswith("- "):
            items.append(f"<li>{h[2:]}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        out.append(f"<p>{h}</p>" if line.strip() else "")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(out)


def main() -> None:
    renderer = Renderer(ROOT / "templates")
    call = renderer.text("changqing/broadcast_message", text="“常青藤”行动计划启动，欢迎退出现职领导干部报名集结，发挥余热助力县域发展。",
                         posts=SIX_ROLES)
    posts = renderer.text("changqing/posts", roles=SIX_ROLES)
    bubbles = "".join(f'<div class="bubble">{markdown_html(present(t, "dingtalk"))}</div>' for t in (call, posts))
    page = f"""<!doctype html><meta charset="utf-8"><style>
      body {{ margin: 0; background: #f2f3f5; font: 15px/1.55 "Noto Sans CJK SC", sans-serif; color: #171a1d; }}
      .bar {{ background: #fff; padding: 12px 16px; font-weight: bold; border-bottom: 1px solid #e5e6eb; }}
      .bubble {{ background: #fff; margin: 12px 48px 12px 16px; padding: 4px 14px; border-radius: 8px; }}
      p {{ margin: 8px 0; }} ul {{ margin: 4px 0; padding-left: 20px; }}
      a {{ color: #007fff; text-decoration: none; }}
    </style><div class="bar">帮带助手（钉钉机器人）</div>{bubbles}"""
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "reply.html"
        page_file.write_text(page, encoding="utf-8")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp}/profile", "--hide-scrollbars", "--window-size=480,860",
                        f"--screenshot={OUT / 'dingtalk-links.png'}", page_file.as_uri()],
                       check=True, capture_output=True)
    rows = [RankRow(1, "招商一组", "破山行动专班", 5, 7.5), RankRow(2, "攻坚二组", "项目攻坚专班", 4, 5.0),
            RankRow(3, "治理三组", "基层治理专班", 3, 3.5), RankRow(4, "营商四组", "营商环境专班", 2, 2.0),
            RankRow(5, "督导五组", "效率革命专班", 0, 0.0)]
    (OUT / "ranking.png").write_bytes(charts.png(ranking_picture(renderer, rows, "2026年11月", "开化县").spec))


if __name__ == "__main__":
    main()
