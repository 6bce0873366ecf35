"""The durable outbox and the record of scheduled job runs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class OutboxStatus:
    QUEUED = "queued"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a dispatcher; back to queued if its lease runs out (crash)
    SENT = "sent"  # the platform accepted it
    FAILED = "failed"  # permanent error, or transient errors until max_attempts
    UNDELIVERABLE = "undeliverable"  # nobody to send it to (no chat account): shown to staff


class OutboxMessage(SQLModel, table=True):
    """发件箱 — one message that is not an immediate reply, kept until the platform accepted it.

    ``key`` is the idempotency key (``weekly-reminder:<person>:<ISO week>``): enqueuing the same key
    twice keeps the first. The recipient is a person's chat account (``user_id`` on ``channel``) or a
    configured group (``group_name`` on ``channel``).
    """

    __table_args__ = (Index("ix_outbox_due", "status", "channel", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    channel: str = Field(default="", max_length=20)
    user_id: str | None = Field(default=None, max_length=128)
    group_name: str | None = Field(default=None, max_length=100)
    body: str
    format: str = Field(default="markdown", max_length=20)
    source: str = Field(default="", max_length=50, index=True)  # job or feature that queued it
    status: str = Field(default=OutboxStatus.QUEUED, max_length=20)
    attempts: int = 0
    next_attempt_at: dt.datetime
    lease_until: dt.datetime | None = None
    last_error: str = Field(default="", max_length=500)
    created_at: dt.datetime = Field(index=True)
    sent_at: dt.datetime | None = None


class JobRun(SQLModel, table=True):
    """One run of a scheduled job for one period (``2026-W47``, ``2026-11``, ``2026-Q4``, ``2026-11-19``)."""

    __table_args__ = (UniqueConstraint("job", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=50)
    period: str = Field(max_length=20)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    queued: int = 0
    trigger: str = Field(default="schedule", max_length=20)  # schedule, catch-up, manual


class RecentSend(SQLModel, table=True):
    """最近发送 — messages sent to one recipient recently, for limits a platform counts per recipient
    (WeCom drops a member's 31st message in a minute without an error). Kept in the database so that
    every ``serve`` process sharing it counts the others' sends too; rows older than the longest window
    are deleted as the recipient's next send is counted."""

    __table_args__ = (Index("ix_recentsend_target", "scope", "target", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=30)  # wecom-member, wecom-robot
    target: str = Field(max_length=128)  # the member's UserID or the group's name
    at: dt.datetime
    parts: int = 1  # messages counted (a long message goes out in several parts)
