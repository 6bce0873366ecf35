"""常青藤 facts several commands share: who the retired cadres are, finding people and months, and the
size limit every message sent to the platforms must respect."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import identity
from bot.clock import day_start, period_bounds
from bot.router import Refusal
from storage.models import Person, PersonRole, Role

# The smallest limit among the places a 常青藤 message can go: WeCom app messages and group-robot text
# are cut off at 2048 bytes (UTF-8). DingTalk markdown takes about 5000 characters, so whatever fits
# WeCom fits DingTalk too. A Chinese character is 3 bytes: about 680 characters.
MAX_MESSAGE_BYTES = 2048



def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_lines(body: str, max_bytes: int = MAX_MESSAGE_BYTES) -> list[str]:
    """``body`` cut at line ends into pieces of at most ``max_bytes`` (a long ranking becomes 2 posts)."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in body.split("\n"):
        pieces = []
        while utf8_len(line) > max_bytes:  # one line longer than a message: cut it by characters
            cut = len(line.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore"))
            pieces.append(line[:cut])
            line = line[cut:]
        pieces.append(line)
        for piece in pieces:
            add = utf8_len(piece) + (1 if current else 0)
            if current and size + add > max_bytes:
                parts.append("\n".join(current))
                current, size, add = [], 0, utf8_len(piece)
            current.append(piece)
            size += add
    parts.append("\n".join(current))
    return [p.strip("\n") for p in parts if p.strip()]


async def retired_cadres(session: AsyncSession) -> dict[int, str]:
    """Every active person holding the 退职干部 role: id -> name."""
    rows = await session.exec(
        select(Person.id, Person.name)
        .join(PersonRole, PersonRole.person_id == Person.id)
        .where(PersonRole.role == Role.RETIRED.value, Person.active == True)  # noqa: E712
        .order_by(Person.id)
    )
    return dict(rows.all())  # type: ignore[arg-type]


async def is_retired(session: AsyncSession, person_id: int) -> bool:
    return await session.get(PersonRole, (person_id, Role.RETIRED.value)) is not None


async def find_person(session: AsyncSession, raw: str) -> Person:
    """:func:`bot.identity.find_person` (``李忠兴``, or ``李忠兴（县服务业办）`` where names repeat),
    answered with 常青藤's refusals."""
    try:
        return await identity.find_person(session, raw)
    except identity.NotFound as exc:
        if exc.units:
            raise Refusal("changqing/person_ambiguous", name=exc.name, units=exc.units) from None
        raise Refusal("changqing/person_unknown", name=exc.text) from None


def month_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Start of ``day``'s month and of the next one, as Asia/Shanghai moments."""
    first, last = period_bounds("month", day)
    return day_start(first), day_start(last + dt.timedelta(days=1))


def previous_month(day: dt.date) -> dt.date:
    return day.replace(day=1) - dt.timedelta(days=1)


