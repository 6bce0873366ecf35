"""开放型课堂 — 一对多 帮带: a mentor (or the organization department) teaches many mentees at once,
often at a 现场教学点. Mentees sign up and check in with a short code said at the class; each check-in
counts as one 辅导 of the host (捆绑考核) and stays on the mentee's record."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel


class OpenClass(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="person.id", index=True)  # who teaches (the one who announced it)
    starts_at: dt.datetime = Field(index=True)
    place: str = Field(max_length=100)
    topic: str = Field(max_length=500)
    code: str = Field(max_length=8)  # 签到码, said at the class
    created_at: dt.datetime


class ClassSignUp(SQLModel, table=True):
    """A mentee's sign-up for a class, and their check-in (``attended_at``) if they came."""

    class_id: int = Field(foreign_key="openclass.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True, index=True)
    signed_at: dt.datetime
    attended_at: dt.datetime | None = None
