"""People, their roles, their units and the chat identities they write from."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    """The programme's roles; a person can hold several."""

    MENTOR = "导师"
    MENTEE = "徒弟"
    STAFF = "组工干部"
    ADMIN = "管理员"
    LIAISON = "三联联系人"
    RETIRED = "退职干部"


class Unit(SQLModel, table=True):
    """单位 — a township, department or task force (专班)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    kind: str = Field(default="", max_length=20)


class Person(SQLModel, table=True):
    """人员 — one roster entry. ``phone`` is stored whole (binding checks its last four digits) and
    is masked in everything meant for reading."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=50)
    phone: str | None = Field(default=None, unique=True, max_length=20)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    title: str = Field(default="", max_length=100)
    birth_year: int | None = None
    active: bool = True
    created_at: dt.datetime


class PersonRole(SQLModel, table=True):
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    role: str = Field(primary_key=True, max_length=20)


class ChatIdentity(SQLModel, table=True):
    """A chat account (channel + platform user id) linked to one person."""

    __table_args__ = (UniqueConstraint("channel", "platform_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    platform_user_id: str = Field(max_length=128)
    person_id: int = Field(foreign_key="person.id", index=True)
    linked_by: str = Field(default="bind", max_length=20)  # "bind" or "roster"
    created_at: dt.datetime


class BindAttempt(SQLModel, table=True):
    """A failed ``绑定``. Too many in an hour lock that chat account, and too many naming one roster
    person (``person_name``, set when the name is on the roster; from any account on any channel)
    lock binding to that name for everyone: rotating account ids must not buy more guesses of a
    phone's last four digits. People who share a name share the lock. Purged daily."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    platform_user_id: str = Field(max_length=128, index=True)
    person_name: str | None = Field(default=None, max_length=50, index=True)
    at: dt.datetime = Field(index=True)
