"""导师库: how people become mentors (组织推荐 or 个人自荐, approved by the organization department), the
incentives mentors receive (体检、月补助、培训) and the 优秀导师 certificates issued to them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

NOMINATION_SOURCES = ("组织推荐", "个人自荐")
INCENTIVE_KINDS = ("体检", "补助", "培训")


class NominationStatus:
    PENDING = "待审核"
    APPROVED = "已通过"
    REJECTED = "未通过"


class MentorNomination(SQLModel, table=True):
    """One person's way into the pool; the latest application is the row (a rejected person may apply
    again), every step is also in the AuditLog. Approval grants the 导师 role."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    source: str = Field(max_length=10)  # one of NOMINATION_SOURCES
    reason: str = Field(max_length=500)
    nominated_by: int | None = Field(default=None, foreign_key="person.id")
    status: str = Field(default=NominationStatus.PENDING, max_length=10, index=True)
    decided_by: int | None = Field(default=None, foreign_key="person.id")
    decided_at: dt.datetime | None = None
    decision_note: str = Field(default="", max_length=500)
    created_at: dt.datetime


class MentorIncentive(SQLModel, table=True):
    """激励 given to a mentor: 体检 and 培训 with a note, in the month recorded; 补助 per month with its
    amount in yuan (one per mentor and month: recording it again corrects it)."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    kind: str = Field(max_length=10)  # one of INCENTIVE_KINDS
    month: str = Field(max_length=7)  # 2026-11: the month a 补助 is for, or when 体检/培训 was recorded
    amount: int | None = None  # yuan, 补助 only
    note: str = Field(default="", max_length=500)
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: dt.datetime


class MentorCertificate(SQLModel, table=True):
    """An issued 优秀导师 certificate: the PDF's path under ``[programme] certificate_dir``."""

    __table_args__ = (UniqueConstraint("person_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    year: int
    path: str = Field(max_length=500)
    created_at: dt.datetime
