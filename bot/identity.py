"""Who is writing: the chat identity resolved to a roster person and their roles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.directory import memo

from .text import Reasoned, fold
from storage.models import ChatIdentity, Person, PersonRole, Role, Unit

STAFF_ROLES = frozenset({Role.STAFF, Role.ADMIN})


@dataclass(frozen=True)
class Sender:
    person: Person
    roles: frozenset[str]
    unit_name: str
    channel: str
    platform_user_id: str

    @property
    def active(self) -> bool:
        """False once the roster no longer lists the person (``import roster --full``): they keep their
        chat account, so they are told so, but can do nothing but read 帮助."""
        return bool(self.person.active)

    @property
    def id(self) -> int:
        assert self.person.id is not None
        return self.person.id

    @property
    def name(self) -> str:
        return self.person.name

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)


async def roles_of(session: AsyncSession, person_id: int) -> frozenset[str]:
    rows = await session.exec(select(PersonRole.role).where(PersonRole.person_id == person_id))
    return frozenset(rows.all())


async def resolve_sender(session: AsyncSession, channel: str, platform_user_id: str) -> Sender | None:
    """The person behind a chat account, with their unit and roles — on every message, so remembered
    while the directory is unchanged (``storage.directory``)."""
    return await memo(session, ("sender", channel, platform_user_id),
                      lambda: _load_sender(session, channel, platform_user_id),
                      lambda sender: [sender.person] if sender else [])


async def _load_sender(session: AsyncSession, channel: str, platform_user_id: str) -> Sender | None:
    rows = (
        await session.exec(
            select(Person, Unit.name, PersonRole.role)
            .join(ChatIdentity, ChatIdentity.person_id == Person.id)
            .join(Unit, Unit.id == Person.unit_id, isouter=True)
            .join(PersonRole, PersonRole.person_id == Person.id, isouter=True)
            .where(ChatIdentity.channel == channel, ChatIdentity.platform_user_id == platform_user_id)
        )
    ).all()
    if not rows:
        return None
    person, unit_name, _ = rows[0]
    roles = frozenset(role for _, _, role in rows if role)
    return Sender(person, roles, unit_name or "", channel, platform_user_id)


async def sender_for_person(session: AsyncSession, person_id: int, channel: str) -> Sender | None:
    """The roster person acting directly (the CLI), without a chat account."""
    row = (
        await session.exec(
            select(Person, Unit.name).join(Unit, Unit.id == Person.unit_id, isouter=True).where(Person.id == person_id)
        )
    ).first()
    if row is None or not row[0].active:
        return None
    person, unit_name = row
    return Sender(person, await roles_of(session, person_id), unit_name or "", channel, f"person:{person_id}")


async def staff_ids(session: AsyncSession) -> list[int]:
    """Everyone who gets staff notifications: active 组工干部 and 管理员."""
    rows = await session.exec(
        select(PersonRole.person_id)
        .join(Person, Person.id == PersonRole.person_id)
        .where(col(PersonRole.role).in_([str(r) for r in STAFF_ROLES]), Person.active == True)  # noqa: E712
        .distinct()
    )
    return sorted(rows.all())


_NAME_WITH_UNIT = re.compile(r"^(.+?)[（(](.+)[)）]$")


class NotFound(Reasoned):
    """A name that matches no active roster person, or several (``units``: theirs, in roster order).
    Its template (``people/not_found/…``) says which and what to write; chat commands and imports
    answer from it, and 常青藤 from the fields."""

    def __init__(self, text: str, name: str, unit_name: str, units: list[str]) -> None:
        self.text, self.name, self.unit_name, self.units = text, name, unit_name, units
        if units:
            super().__init__("people/not_found/several", name=name, count=len(units))
        else:
            super().__init__("people/not_found/nobody", text=text, unit=unit_name)


async def find_person(session: AsyncSession, raw: str, unit_hint: str = "") -> Person:
    """The one active person a name names: ``张伟``, or ``张伟（华埠镇）`` where names repeat (or the
    name with ``unit_hint``, a spreadsheet's unit column). Raises :class:`NotFound`."""
    text = fold(str(raw or "")).strip()
    name, unit_name = text, unit_hint
    if m := _NAME_WITH_UNIT.match(text):
        name, unit_name = m.group(1).strip(), m.group(2).strip()
    found = (await session.exec(
        select(Person, Unit.name).join(Unit, col(Unit.id) == Person.unit_id, isouter=True)
        .where(Person.name == name, Person.active == True)  # noqa: E712
        .order_by(Person.id)
    )).all()
    if unit_name:
        found = [(p, u) for p, u in found if u == unit_name]
    if len(found) != 1:
        raise NotFound(text, name, unit_name, [u or "无单位" for _, u in found])
    return found[0][0]
