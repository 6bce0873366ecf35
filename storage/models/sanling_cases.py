"""三零 零跑腿: 钉钉预审 cases with their checklist and files, the 调任联办单's parts, and the liaisons'
一月一汇报. Files live on disk (named by their hash); the database keeps only what points at them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class CaseStatus:
    DRAFT = "draft"  # the submitter is still sending text and files
    SUBMITTED = "submitted"  # waiting for staff (预审), in order of arrival
    RETURNED = "returned"  # 退回: open again for the submitter, with what to add
    APPROVED = "approved"  # 通过
    TRANSFERRED = "transferred"  # 转办 to another department
    JOINT = "joint"  # 联办单 accepted (一科受理), the departments' parts are coming in
    CLOSED = "closed"  # 联办单: every department's part is in
    WITHDRAWN = "withdrawn"  # 撤回 by the submitter before a decision

    OPEN_FOR_SUBMITTER = (DRAFT, RETURNED)
    WAITING = (SUBMITTED,)
    DECIDED = (APPROVED, TRANSFERRED, CLOSED, WITHDRAWN)


class ReviewCase(SQLModel, table=True):
    """预审案件 — one procedure a cadre submits for the department's 钉钉预审 (or a 调任联办单); its id is
    the case number (``#7``). ``due_at`` is set at each submission from the guide's working-day limit."""

    id: int | None = Field(default=None, primary_key=True)
    procedure: str = Field(max_length=100, index=True)  # the guide's file name (key)
    title: str = Field(max_length=100)
    joint: bool = False  # a 联办单: accepted once, then every listed department records its part
    submitter_id: int = Field(foreign_key="person.id", index=True)
    status: str = Field(default=CaseStatus.DRAFT, max_length=20, index=True)
    note: str = Field(default="", max_length=2000)  # the submitter's own words (说明)
    current_item: int = 1  # the checklist item files sent now belong to
    limit_days: int = 0  # working days the guide allows for the decision
    created_at: dt.datetime
    submitted_at: dt.datetime | None = Field(default=None, index=True)  # the latest submission
    first_submitted_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    returns: int = 0
    return_reason: str = Field(default="", max_length=500)
    transferred_to: str = Field(default="", max_length=100)


class ReviewItem(SQLModel, table=True):
    """One line of a case's checklist (the guide's 所需材料), and the submitter's text for it."""

    __table_args__ = (UniqueConstraint("case_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="reviewcase.id", index=True)
    number: int
    material: str = Field(max_length=200)
    text: str = Field(default="", max_length=2000)


class ReviewFile(SQLModel, table=True):
    """A file or picture sent for a case: the bytes are on disk under ``[sanling] files_dir`` as their
    SHA-256, never in the database."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="reviewcase.id", index=True)
    item_number: int
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)  # file, picture, video
    sha256: str = Field(max_length=64, index=True)
    size: int
    received_at: dt.datetime


class ReviewDecision(SQLModel, table=True):
    """A step in a case's life (提交, 退回, 通过, 转办, 受理), kept for the submitter's 查询 and the figures."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="reviewcase.id", index=True)
    action: str = Field(max_length=20)
    actor_id: int = Field(foreign_key="person.id")
    reason: str = Field(default="", max_length=500)
    at: dt.datetime


class JointPart(SQLModel, table=True):
    """联审 — one department's part of a 调任联办单 (一单抄告): who was told, and what they recorded."""

    __table_args__ = (UniqueConstraint("case_id", "department"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="reviewcase.id", index=True)
    department: str = Field(max_length=100)
    reviewers: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    result: str = Field(default="", max_length=20)  # 同意 / 不同意, empty while waiting
    note: str = Field(default="", max_length=500)
    by_id: int | None = Field(default=None, foreign_key="person.id")
    at: dt.datetime | None = None


class MonthlyReport(SQLModel, table=True):
    """一月一汇报 — a 三联 liaison's report for one month (optionally for one linked unit), with the
    思想动态 and 诉求 parts kept apart; a 诉求 stays open until staff close it."""

    __table_args__ = (UniqueConstraint("liaison_id", "month", "unit_key"),)

    id: int | None = Field(default=None, primary_key=True)
    liaison_id: int = Field(foreign_key="person.id", index=True)
    month: dt.date = Field(index=True)  # the first day of the month reported on
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    unit_key: int = 0  # unit_id or 0: one report per liaison, month and unit (NULLs are never equal)
    text: str = Field(default="", max_length=2000)
    thoughts: str = Field(default="", max_length=2000)  # 思想动态
    requests: str = Field(default="", max_length=2000)  # 诉求
    requests_closed_at: dt.datetime | None = None
    requests_answer: str = Field(default="", max_length=500)
    created_at: dt.datetime
    updated_at: dt.datetime
