"""The staff console's logins: one-time links sent in the chat, and the browser sessions they open.

Only hashes of the secrets are stored, so a copy of the database opens no console.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel


class ConsoleLink(SQLModel, table=True):
    """后台登录链接 — a one-time link a staff member got by sending ``后台`` in a private chat."""

    token_hash: str = Field(primary_key=True, max_length=64)  # sha256 hex of the link's secret
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


class ConsoleSession(SQLModel, table=True):
    """A browser's console session: a working day at most, ended earlier by idling, ``退出`` or logout."""

    id_hash: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's secret
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: dt.datetime
    last_seen: dt.datetime
    expires_at: dt.datetime
    ended_at: dt.datetime | None = Field(default=None, index=True)
