"""Bookkeeping: inbound message ids already handled, and the audit log of staff actions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel


class ProcessedMessage(SQLModel, table=True):
    """An inbound message already handled, with the replies it got, so a redelivery answers the same
    and writes nothing. Keyed by the sender as well as the id: the same id from someone else is a
    different message, and must neither get these replies nor be dropped as a copy."""

    channel: str = Field(primary_key=True, max_length=20)
    sender_id: str = Field(primary_key=True, max_length=128)
    msg_id: str = Field(primary_key=True, max_length=128)
    received_at: dt.datetime = Field(index=True)
    replies: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class AuditLog(SQLModel, table=True):
    """Who changed what: every staff action and every state change staff may be asked about."""

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    actor_label: str = Field(default="", max_length=100)  # "cli", "import", a person's name
    action: str = Field(max_length=50, index=True)
    target: str = Field(default="", max_length=200)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class LocalDelivery(SQLModel, table=True):
    """What the local channel delivered to a local user — the local "platform's" own record, read by
    ``GET /api/local/inbox/{user}``."""

    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(max_length=128, index=True)
    text: str
    format: str = Field(default="markdown", max_length=20)
    key: str = Field(max_length=200, unique=True)
    sent_at: dt.datetime


class DirectoryVersion(SQLModel, table=True):
    """One row counting changes to the directory tables (people, roles, chat accounts, units, pairings);
    database triggers bump it (migration 0008), so a process can tell whether what it remembers of the
    directory is still true with one read. See ``storage.directory``."""

    id: int = Field(default=1, primary_key=True)
    value: int = Field(default=0, sa_type=BigInteger)


class Installation(SQLModel, table=True):
    """When this database was created (migration 0012 dates an older one by its first roster row): jobs
    never run for a period that ended before it (SPEC §3a), so a new install sends no report of a past
    quarter or week."""

    id: int = Field(default=1, primary_key=True)
    created_at: dt.datetime
