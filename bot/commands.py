"""One-tap commands: a template marks "what to type next" once, each channel shows it its own way.

A template writes ``{{ cmd("记录 面谈") }}``. The rendered text carries a neutral mark — a Markdown link
to our own scheme, ``[记录 面谈](bangdai-cmd:%E8%AE%B0%E5%BD%95%20%E9%9D%A2%E8%B0%88)`` — and the channel
that sends the text turns it into what its platform can do:

- DingTalk Markdown: a ``dtmd://dingtalkclient/sendMessage?content=…`` link; tapped, DingTalk sends the
  command as the person's own message to the bot;
- WeCom template cards: a button whose key is the command (see ``buttons``);
- everywhere else (local channel, WeCom text, DingTalk text): the command in bold, to be typed.

The command is URL-encoded inside the mark, so a user-supplied name inside it (``季评 李娜 较好``) can
neither end the link nor inject another; the label is Markdown-escaped. User text elsewhere in a
message is Markdown-escaped (``[`` → ``\\[``), so it can never form a mark: the patterns below skip an
escaped bracket.
"""

from __future__ import annotations

import re
from typing import Iterator
from urllib.parse import quote, unquote

from markupsafe import Markup

SCHEME = "bangdai-cmd:"
DINGTALK_SEND = "dtmd://dingtalkclient/sendMessage?content="

# [label](bangdai-cmd:<url-encoded command>), the "[" not escaped; the label may hold escapes (\[, \*).
_INLINE = re.compile(r"([\\`*_\[\]])")
_MARK = re.compile(r"(?<!\\)\[((?:\\.|[^\]\\\n])+)\]\(" + re.escape(SCHEME) + r"([^)\s]*)\)")


def cmd(command: str, label: str | None = None) -> Markup:
    """The mark for one command a person may send next (a Jinja global). ``label`` is what a link or
    button shows when it should differ from the command (plain text always shows the command itself).

    Returned as ``Markup`` so an autoescaping environment leaves the mark alone; the values inside it
    are encoded here. Marks are remembered (a reply's few are the same in every reply)."""
    key = (type(command), command, type(label), label)  # types: 1 and True are equal keys, not marks
    try:
        return _MARKS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable value: made, not remembered
        return _cmd(command, label)
    mark = _MARKS[key] = _cmd(command, label)
    if len(_MARKS) > _MEMO_SIZE:
        _MARKS.clear()
    return mark


_MEMO_SIZE = 4096
_MARKS: dict[tuple, Markup] = {}
_SHOWN: dict[tuple[str, str], str] = {}  # (style, mark) -> what the channel shows for it


def _cmd(command: str, label: str | None) -> Markup:
    command = " ".join(str(command).split())
    shown = _inline(" ".join(str(label).split()) if label else command)
    return Markup(f"[{shown}]({SCHEME}{quote(command, safe='')})")


def commands_in(text: str) -> Iterator[tuple[str, str]]:
    """(label, command) of every mark in ``text``, in order; the label without Markdown escapes."""
    for m in _MARK.finditer(text):
        yield _unescape(m.group(1)), unquote(m.group(2))


def _inline(text: str) -> str:
    """Escape what would end or change a link label or bold text. Only those: "#", ">" or "|" mean
    nothing inside a line, and a backslash before them would show on some phones (答复 \\#12)."""
    return _INLINE.sub(r"\\\1", text)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def as_dingtalk_links(text: str) -> str:
    """Marks as DingTalk's send-message links (Markdown messages only)."""
    return _MARK.sub(_dingtalk_link, text)


def as_plain(text: str) -> str:
    """Marks as the command in bold: what to type where nothing can be tapped."""
    return _MARK.sub(_bold, text)


def _dingtalk_link(m: re.Match) -> str:
    shown = _SHOWN.get(("dingtalk", m.group(0)))
    if shown is None:
        shown = _remember_shown("dingtalk", m.group(0),
                                f"[{m.group(1)}]({DINGTALK_SEND}{quote(unquote(m.group(2)), safe='')})")
    return shown


def _bold(m: re.Match) -> str:
    shown = _SHOWN.get(("plain", m.group(0)))
    if shown is None:
        shown = _remember_shown("plain", m.group(0), f"**{_inline(unquote(m.group(2)))}**")
    return shown


def _remember_shown(style: str, mark: str, shown: str) -> str:
    """A mark's form for a channel depends on the mark alone: worked out once (URL decoding and
    encoding per mark was a tenth of a DingTalk reply's cost)."""
    if len(_SHOWN) >= _MEMO_SIZE:
        _SHOWN.clear()
    _SHOWN[(style, mark)] = shown
    return shown


def present(text: str, style: str) -> str:
    """The text as a channel shows it: ``style`` "dingtalk" (tappable links) or "plain"."""
    if SCHEME not in text:
        return text
    return as_dingtalk_links(text) if style == "dingtalk" else as_plain(text)
