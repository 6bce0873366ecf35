"""导师帮带: each mentee's 帮带 (one continuing record), its mentors over time, training plan and contacts.

A 帮带 belongs to the mentee (SPEC §3a): re-pairing, team changes, 清退 and the correction of a mistake
change who mentors from when (:class:`PairingMentor` rows with dates); the contacts, the 培养计划 and the
季评 hang on the 帮带 itself, so no such change resets or hides them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

CONTACT_MODES = ("面谈", "电话", "视频", "线上")
FACE_TO_FACE = "面谈"
# The five content areas of 帮带 (SPEC §3a, 浙江 “五带五助”): short tag → full name. Contacts and plan
# items carry one tag (``#党建``) or none ("").
AREAS = {
    "思想": "带思想情怀助扎根",
    "群众": "带群众工作优办事",
    "党建": "带基层党建筑堡垒",
    "财富": "带财富振兴强成长",
    "治理": "带基层治理促和谐",
}


class Pairing(SQLModel, table=True):
    """帮带 — the mentee's record in the programme, one per mentee for good. ``active`` says whether it
    has mentors today (kept by the pairing operations so chat commands find current pairs in one query);
    every figure goes by the dated :class:`PairingMentor` rows instead."""

    id: int | None = Field(default=None, primary_key=True)
    mentee_id: int = Field(foreign_key="person.id", index=True, unique=True)
    start_date: dt.date  # the first day anyone mentored this mentee
    agreement_date: dt.date | None = None  # 《帮带结对协议》签订日期
    active: bool = Field(default=True, index=True)
    ended_on: dt.date | None = None  # set while nobody mentors (结对 结束 or the last mentor 清退)
    end_reason: str = Field(default="", max_length=200)
    created_at: dt.datetime


class PairingMentor(SQLModel, table=True):
    """One mentor's term in a 帮带: from ``start_date`` up to, not including, ``end_date`` (open while
    mentoring). A term ended and begun on the same day (a mistake undone) covers no day and so counts
    nowhere, but stays readable as history. ``dismissed``: the term ended by 清退."""

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairing.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    is_lead: bool = False  # 牵头导师
    start_date: dt.date
    end_date: dt.date | None = None
    start_reason: str = Field(default="", max_length=200)
    end_reason: str = Field(default="", max_length=200)
    dismissed: bool = False


class PlanItem(SQLModel, table=True):
    """《培养计划》的一项 — numbered per pairing so people can type ``计划 完成 2``."""

    __table_args__ = (UniqueConstraint("pairing_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairing.id", index=True)
    seq: int
    text: str = Field(max_length=2000)
    area: str = Field(default="", max_length=10)  # one of AREAS, or ""
    created_by: int = Field(foreign_key="person.id")
    created_at: dt.datetime
    done_at: dt.datetime | None = None
    done_by: int | None = Field(default=None, foreign_key="person.id")


class ContactLog(SQLModel, table=True):
    """师徒联系记录 — one contact in a 帮带, logged by either side (周联: 面谈 at least once a week). The
    mentors who took part are :class:`ContactMentor` rows (a mentor's 辅导次数 in 捆绑考核)."""

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairing.id", index=True)
    author_id: int = Field(foreign_key="person.id")
    counterpart_id: int | None = Field(default=None, foreign_key="person.id")
    day: dt.date = Field(index=True)
    mode: str = Field(max_length=10)
    note: str = Field(max_length=2000)
    area: str = Field(default="", max_length=10)  # one of AREAS, or ""
    created_at: dt.datetime


class ContactMentor(SQLModel, table=True):
    """A mentor who took part in a contact."""

    contact_id: int = Field(foreign_key="contactlog.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True, index=True)


REVIEW_RATINGS = ("好", "较好", "一般", "差")
ANNUAL_GRADES = ("优秀", "称职", "基本称职", "不称职")


class PairReview(SQLModel, table=True):
    """季评 — the organization department's quarterly review of one pair (分析研判)."""

    __table_args__ = (UniqueConstraint("pairing_id", "quarter"),)

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairing.id", index=True)
    quarter: str = Field(max_length=10)  # 2026-Q4
    rating: str = Field(max_length=10)
    comment: str = Field(default="", max_length=2000)
    reviewer_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: dt.datetime


REPORT_ITEMS = {"done": "帮带情况", "problems": "存在问题", "fixes": "整改方向", "next_focus": "下步重点"}


class ReviewReport(SQLModel, table=True):
    """季评汇报 — a mentor's own account of one 帮带's quarter, asked for at quarter end and shown to
    staff while they rate it: what was done, the problems found, 整改方向 and 下步重点. One per mentor
    per 帮带 per quarter (a 导师团's mentors each report); items sent later replace earlier ones."""

    __table_args__ = (UniqueConstraint("pairing_id", "quarter", "mentor_id"),)

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairing.id", index=True)
    quarter: str = Field(max_length=10, index=True)
    mentor_id: int = Field(foreign_key="person.id", index=True)
    done: str = Field(default="", max_length=2000)
    problems: str = Field(default="", max_length=2000)
    fixes: str = Field(default="", max_length=2000)
    next_focus: str = Field(default="", max_length=2000)
    updated_at: dt.datetime


class AnnualGrade(SQLModel, table=True):
    """年度考核 of a mentee, the basis of 捆绑考核: the mentor may be rated 优秀 only if the mentee is
    称职 or better, and is preferred for 优秀 (with the 优秀导师 certificate) when the mentee is 优秀 or
    was commended by the county (县委县政府以上表彰)."""

    __table_args__ = (UniqueConstraint("person_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    year: int
    grade: str = Field(max_length=10)
    commended: bool = False
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: dt.datetime
