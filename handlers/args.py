"""Shared readers for a command's words: a name, a ticket number, a day, the rest of the text.

Each raises :class:`~bot.router.UsageError` with a reason template from ``templates/errors/usage/``;
the gateway adds the usage and example of the (sub-)command being run, so ``编组 调整`` without a name
answers with ``编组 调整``'s own form, not the whole command's.
"""

from __future__ import annotations

import datetime as dt
import re

from bot.dates import DateError, parse_day
from bot.router import UsageError
from bot.text import Args, fold

# #12, 12, ＃12, 第12号, 第 12 号
_TICKET = re.compile(r"(?:第\s*)?[#＃]?\s*([0-9０-９]{1,9})\s*号?(?=$|[\s:,;：，；、])")


def nothing_more(args: Args) -> None:
    """The form takes no more words (``编组 列表``, ``广播 确认``)."""
    if args:
        raise UsageError("errors/usage/nothing_more")


def word(args: Args, reason: str = "errors/usage/need_word", **values: object) -> str:
    """The next word, which the form requires (a name, a group); ``reason`` says what is missing."""
    token = args.take()
    if token is None:
        raise UsageError(reason, **values)
    return token


def ticket(args: Args, reason: str = "errors/usage/need_ticket", **values: object) -> int:
    """A number as people write one: ``#12``, ``12``, ``第12号``."""
    m = args.take_match(_TICKET)
    if m is None:
        raise UsageError(reason, **values)
    return int(fold(m.group(1)))


def day(args: Args, today: dt.date, example: str | None = None) -> dt.date | None:
    """A day (今天, 昨天, 11-19, 2026-11-19, 上周五) when the next word is one; None otherwise, nothing taken.
    A word shaped like a date but impossible is a usage answer (with ``example``, else the command's)."""
    token = args.peek()
    if token is None:
        return None
    try:
        found = parse_day(token, today)
    except DateError as exc:
        raise UsageError.because(exc, example) from None
    if found is not None:
        args.take()
    return found


def rest(args: Args, reason: str = "errors/usage/need_text", limit: int | None = None,
         too_long: str = "errors/usage/too_long", **values: object) -> str:
    """The rest of the text as typed (free text), required, at most ``limit`` characters (else ``too_long``,
    given ``limit`` and ``length``)."""
    text = args.rest()
    if not text:
        raise UsageError(reason, **values)
    if limit is not None and len(text) > limit:
        raise UsageError(too_long, limit=limit, length=len(text))
    return text
