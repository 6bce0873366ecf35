"""常青藤: retired leading cadres called up by broadcast, signed up to the 六大员, organised in groups
(编组) inside task forces (专班), with public commitments, achievement records and a monthly ranking.

A task force is a :class:`~storage.models.people.Unit` of kind ``专班`` (the roster's units and the
task forces are one list, so 三联 links and 常青藤 groups name the same 专班).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

# 六大员, in the order the county announced them.
SIX_ROLES = (
    "项目攻坚协调员",
    "招商引资联络员",
    "矛盾纠纷化解员",
    "营商环境观察员",
    "基层治理服务员",
    "效率革命督导员",
)
TASK_FORCE_KIND = "专班"
COEFFICIENT_MIN, COEFFICIENT_MAX, COEFFICIENT_DEFAULT = 0.5, 3.0, 1.0


class BroadcastStatus:
    PENDING = "pending"  # an identical text went out today: waits for 广播 确认
    SENT = "sent"  # queued in the outbox
    CANCELLED = "cancelled"  # 广播 取消, or never confirmed


class Broadcast(SQLModel, table=True):
    """招募广播 — one recruitment call to every retired cadre and every configured 常青藤 group.

    Its outbox rows carry keys ``changqing-broadcast:<id>:…``, which is how 广播 状态 counts them.
    """

    id: int | None = Field(default=None, primary_key=True)
    text: str  # what staff wrote; the message sent is this plus the sign-up instructions
    text_hash: str = Field(max_length=64, index=True)
    status: str = Field(default=BroadcastStatus.SENT, max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    actor_label: str = Field(default="", max_length=100)
    created_at: dt.datetime = Field(index=True)
    sent_at: dt.datetime | None = Field(default=None, index=True)
    people: int = 0  # retired cadres addressed
    no_account: int = 0  # of them, without a chat account (undeliverable)
    groups: int = 0


class SignUp(SQLModel, table=True):
    """集结报名 — a retired cadre answering the call, optionally for one of the 六大员.

    One row per person: signing up again changes ``role``; ``signed_at`` keeps the first answer, which
    is what "140 in one day" counts.
    """

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    role: str = Field(default="", max_length=20)  # one of SIX_ROLES, or "" (not chosen yet)
    signed_at: dt.datetime = Field(index=True)
    updated_at: dt.datetime


class Squad(SQLModel, table=True):
    """编组 — a group of retired cadres embedded in a task force (专班), e.g. 招商一组 in 破山行动专班."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50, unique=True)
    task_force_id: int = Field(foreign_key="unit.id", index=True)
    leader_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: dt.datetime


class SquadMember(SQLModel, table=True):
    """A person's place in one group. Only the organization department moves people (seed: units may
    not recall members on their own); every move is in the AuditLog."""

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    squad_id: int = Field(foreign_key="squad.id", index=True)
    joined_at: dt.datetime


class Commitment(SQLModel, table=True):
    """公开承诺 — what a person publicly commits to for a year; visible to their group."""

    __table_args__ = (UniqueConstraint("person_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    year: int
    text: str = Field(max_length=500)
    created_at: dt.datetime
    updated_at: dt.datetime


class Achievement(SQLModel, table=True):
    """实绩 — one piece of work done by a group, weighted by a difficulty coefficient (难度系数) staff
    set. A voided record stays, with its reason, and no longer counts."""

    id: int | None = Field(default=None, primary_key=True)
    squad_id: int = Field(foreign_key="squad.id", index=True)
    author_id: int = Field(foreign_key="person.id")
    text: str = Field(max_length=1000)
    coefficient: float = COEFFICIENT_DEFAULT
    created_at: dt.datetime = Field(index=True)
    voided_at: dt.datetime | None = None
    void_reason: str = Field(default="", max_length=200)


class AchievementMember(SQLModel, table=True):
    """Who took part in a group's 实绩 (个人实绩档案): the author by default, or the members named."""

    achievement_id: int = Field(foreign_key="achievement.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True, index=True)


class SquadProject(SQLModel, table=True):
    """A 重点企业/项目 a group serves (in 常山 each group of the 破山 task force serves three)."""

    id: int | None = Field(default=None, primary_key=True)
    squad_id: int = Field(foreign_key="squad.id", index=True)
    name: str = Field(max_length=100, unique=True)
    created_at: dt.datetime


class ProjectFollowUp(SQLModel, table=True):
    """跟进 — one note on what was done for a 重点企业/项目."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="squadproject.id", index=True)
    author_id: int = Field(foreign_key="person.id")
    text: str = Field(max_length=1000)
    created_at: dt.datetime = Field(index=True)
