"""三零 (Kaihua): the 三联信箱 mailbox, the 三联 liaison links and their monthly visits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class InquiryStatus:
    OPEN = "open"  # waiting for staff
    ANSWERED = "answered"  # at least one 答复 went to the submitter
    CLOSED = "closed"  # closed without an answer, with a reason


class Inquiry(SQLModel, table=True):
    """三联信箱来信 — one inquiry a cadre sent the mailbox; its id is the ticket number (``#12``).

    ``submitter_id`` is kept even when ``anonymous``: the answer must reach the submitter. Anonymous
    means no staff view, notification, audit entry or export ever names them.
    """

    id: int | None = Field(default=None, primary_key=True)
    submitter_id: int = Field(foreign_key="person.id", index=True)
    anonymous: bool = False
    category: str = Field(max_length=20)
    text: str = Field(max_length=2000)
    status: str = Field(default=InquiryStatus.OPEN, max_length=20, index=True)
    created_at: dt.datetime = Field(index=True)
    answered_at: dt.datetime | None = None  # the first 答复
    closed_at: dt.datetime | None = None
    close_reason: str = Field(default="", max_length=500)


class InquiryAnswer(SQLModel, table=True):
    """答复 — one answer staff gave to an inquiry (an interim "已转人社局" and the final word are two)."""

    id: int | None = Field(default=None, primary_key=True)
    inquiry_id: int = Field(foreign_key="inquiry.id", index=True)
    author_id: int = Field(foreign_key="person.id")
    text: str = Field(max_length=2000)
    created_at: dt.datetime


class LiaisonLink(SQLModel, table=True):
    """三联 — a department leader or organization cadre linked to a township, department or 专班."""

    __table_args__ = (UniqueConstraint("person_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    active: bool = True
    created_at: dt.datetime


class Visit(SQLModel, table=True):
    """一月一走访 — a liaison's visit to one of their linked units."""

    id: int | None = Field(default=None, primary_key=True)
    liaison_id: int = Field(foreign_key="person.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    day: dt.date = Field(index=True)
    note: str = Field(max_length=2000)
    created_at: dt.datetime
