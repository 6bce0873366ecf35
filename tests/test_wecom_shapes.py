"""Pure pieces of the WeCom channel: message shape (text or markdown, 2048-byte parts) and the
sliding-window limit."""

import datetime as dt

import pytest

from bot.channels.limits import SlidingWindow
from bot.channels.wecom_api import split_message, to_plain, uses_markdown
from bot.clock import FrozenClock


@pytest.mark.parametrize("text,expected", [
    ("**本周帮带情况**", True), ("# 标题", True), ("> 引用", True), ("见[流程](https://x.cn/a)", True),
    ("已记录：11月19日 面谈", False), ("- 一条\n- 两条", False), ("2*3*4", False),
])
def test_markdown_only_when_used(text, expected):
    assert uses_markdown(text) is expected


def test_plain_text_loses_marks_and_escapes():
    assert to_plain("**本周** 李\\_娜\n# 标题\n[流程](https://x.cn)") == "本周 李_娜\n标题\n流程 https://x.cn"


def test_split_keeps_short_messages_whole():
    assert split_message("短消息\n第二行") == ["短消息\n第二行"]


def test_split_cuts_at_line_boundaries_within_the_byte_limit():
    lines = [f"第{i}行：" + "帮带" * 20 for i in range(100)]
    text = "\n".join(lines)
    parts = split_message(text)
    assert len(parts) > 1 and all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts) == text
    assert all(p.split("\n")[0].startswith("第") for p in parts)  # every part starts at a line


def test_split_cuts_one_huge_line_between_characters():
    text = "很" * 1500  # 4500 bytes, no line break
    parts = split_message(text)
    assert "".join(parts) == text and all(len(p.encode()) <= 2048 for p in parts)
    assert all(p.encode().decode() == p for p in parts)


def test_sliding_window_counts_every_rule():
    clock = FrozenClock(dt.datetime(2026, 11, 19, 10, 0))
    window = SlidingWindow([(3, 60), (5, 3600)], clock)
    for _ in range(3):
        assert window.wait("u") == 0
        window.take("u")
    assert window.wait("u") == pytest.approx(60)
    assert window.wait("other") == 0
    clock.advance(seconds=30)
    assert window.wait("u") == pytest.approx(30)
    assert window.wait("u", 2) == pytest.approx(30)
    clock.advance(seconds=30)
    assert window.wait("u") == 0
    window.take("u", 2)  # 5 in the hour now
    clock.advance(seconds=61)
    assert window.count("u", 60) == 0 and window.wait("u") == pytest.approx(3600 - 121)  # the first three leave the hour
