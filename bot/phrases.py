"""Command phrases as people type them on phones: words run together ("记录赵强今天电话沟通…",
"记录 赵强 面谈讨论工作") and parts in any order before the free text.

Handlers call these and turn a :class:`PhraseError` into their usage answer; the error says what in
*this* message was wrong, naming the words, never a generic "wrong format".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Mapping

from .dates import DateError, parse_day, split_leading_day
from .text import Args, Reasoned, fold


class PhraseError(Reasoned):
    """What was wrong in the message, naming the words the person typed (templates/errors/phrases/)."""


@dataclass(frozen=True)
class Contact:
    """记录's words: whom (None: the only pair), which day, how (面谈…), what was discussed."""

    name: str | None
    day: dt.date
    mode: str
    note: str


def _leading(text: str, words: Iterable[str]) -> str | None:
    """The longest of ``words`` that ``text`` starts with (case-insensitively), or None."""
    folded = fold(text).lower()
    best = None
    for word in words:
        if word and folded.startswith(word.lower()) and (best is None or len(word) > len(best)):
            best = word
    return best


def read_contact(raw: str, today: dt.date, names: Iterable[str], modes: Mapping[str, str]) -> Contact:
    """``[姓名] [日期] 方式 内容`` with or without spaces between the parts; the date may also come
    right after the mode (``面谈 昨天 内容``).

    ``names`` are the sender's counterparts (a glued name is only split off when it is one of them);
    ``modes`` maps every accepted word (面谈, 电话, face…) to its canonical mode. A token that is neither
    a known name, a date nor a mode is taken as a name — the pair check then says whose it is not.
    """
    names = [n for n in names if n]
    args = Args(raw)
    name: str | None = None
    day: dt.date | None = None
    unknown: list[str] = []

    def put_day(token: str) -> None:
        nonlocal day
        try:
            parsed = parse_day(token, today)
        except DateError as exc:
            raise PhraseError(exc.reason, **exc.values) from None
        if day is not None:
            raise PhraseError("errors/phrases/two_days", token=token)
        day = parsed

    def put_day_after_mode(args: Args) -> None:
        nonlocal day
        word = args.peek()
        if word is None:
            return
        try:
            parsed = parse_day(word, today)
        except DateError:
            return  # shaped like a date but impossible: left in the note, as before
        if parsed is not None:  # only called while no day was given
            args.take()
            day = parsed

    while True:
        token = args.take()
        if token is None:
            break
        piece = token
        # Peel known parts off the front of the token: a name, a date, then the mode ends it.
        while piece:
            mode_word = _leading(piece, modes)
            if mode_word is not None:
                rest = piece[len(mode_word):]
                if day is None and not rest:
                    # "记录 面谈 昨天 谈了…": a date said right after the mode is the day, not the start
                    # of the note (people say it in that order; taken as text it was logged as today).
                    put_day_after_mode(args)
                # The content is welcome but not required ("记录 面谈" is a one-tap link): 周联 asks
                # only that the 面谈 happened.
                note = (rest + (" " if rest and args else "") + args.rest()).strip(" :：,，")
                if len(unknown) > 1 or unknown and name is not None:
                    raise PhraseError("errors/phrases/unknown_words", words=unknown)
                if unknown:
                    name = unknown[0]
                return Contact(name, day or today, modes[mode_word.lower()], note)
            known = _leading(piece, names)
            if known is not None:
                if name is not None:
                    raise PhraseError("errors/phrases/two_names", first=name, second=known)
                name, piece = known, piece[len(known):]
                continue
            glued = split_leading_day(piece)
            if glued is not None:
                put_day(glued[0])
                piece = glued[1]
                continue
            unknown.append(piece)
            break
        if len(unknown) + (name is not None) + (day is not None) > 3:
            break
    if unknown:
        raise PhraseError("errors/phrases/no_mode_before", word=unknown[-1])
    raise PhraseError("errors/phrases/no_mode")


def space_out(raw: str, names: Iterable[str], actions: Iterable[str]) -> str:
    """``[姓名][动作]…`` with the spaces put back where they were left out ("赵强添加熟悉信访工作" →
    "赵强 添加 熟悉信访工作", "完成2" → "完成 2"): a known name, then a known action word, at the start."""
    text = raw.strip()
    out = []
    for words in (names, actions):
        word = _leading(text, [w for w in words if w])
        if word is not None:
            out.append(text[:len(word)])
            text = text[len(word):].lstrip()
    return " ".join([*out, text]) if text else " ".join(out)
