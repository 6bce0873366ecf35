"""预审 cases: the facts the 预审 command, the 联审 command, the jobs, 统计 and the export share.

No commands are registered here and nothing happens on import: a job or the CLI reads the same
queries the chat does. Time limits are in working days (the statutory calendar), counted from each
submission; "days to decision" is counted in working days too, from the first submission.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import and_, delete, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.clock import TZ, day_start
from bot.text import fold
from bot.calendar import WorkCalendar
from storage.files import FileStore
from storage.models import (CaseStatus, JointPart, Person, ReviewCase, ReviewDecision, ReviewFile,
                            ReviewItem, Unit)


STATUS_LABELS = {
    CaseStatus.DRAFT: "填写中", CaseStatus.SUBMITTED: "待预审", CaseStatus.RETURNED: "已退回待补充",
    CaseStatus.APPROVED: "已通过", CaseStatus.TRANSFERRED: "已转办", CaseStatus.JOINT: "联审中",
    CaseStatus.CLOSED: "已办结", CaseStatus.WITHDRAWN: "已撤回",
}


_TICKET = re.compile(r"^\s*(?:第\s*)?[#＃]?\s*([0-9０-９]{1,9})\s*号?")
_SEP = " \t\n:,;：，；、\u3000"


def take_ticket(raw: str) -> tuple[int, str] | None:
    """``#7 缺少借用协议`` → (7, "缺少借用协议"); None when the text does not start with a number."""
    m = _TICKET.match(raw)
    if not m:
        return None
    return int(fold(m.group(1))), raw[m.end():].lstrip(_SEP).strip()


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(TZ)


def due_after(submitted_at: dt.datetime, days: int, calendar: WorkCalendar) -> dt.datetime:
    return calendar.add_workdays(local(submitted_at), days)


def workdays_between(start: dt.datetime, end: dt.datetime, calendar: WorkCalendar) -> int:
    """Working days after ``start``'s day up to and including ``end``'s day."""
    day, last, count = local(start).date(), local(end).date(), 0
    while day < last:
        day += dt.timedelta(days=1)
        count += calendar.is_workday(day)
    return count


def is_overdue(case: ReviewCase, now: dt.datetime) -> bool:
    """Past the guide's limit and not decided: waiting for staff, or a 联办单 still missing parts (its
    limit runs from submission to 办结, like the guide's "10 个工作日内办结")."""
    return case.status in (CaseStatus.SUBMITTED, CaseStatus.JOINT) and case.due_at is not None and now > case.due_at


async def items_of(session: AsyncSession, case_id: int) -> list[ReviewItem]:
    return list((await session.exec(
        select(ReviewItem).where(ReviewItem.case_id == case_id).order_by(ReviewItem.number))).all())


async def files_of(session: AsyncSession, case_id: int) -> list[ReviewFile]:
    return list((await session.exec(
        select(ReviewFile).where(ReviewFile.case_id == case_id).order_by(ReviewFile.id))).all())


async def checklist(session: AsyncSession, case: ReviewCase) -> list[dict]:
    """Each material with the files and text that cover it."""
    files = await files_of(session, case.id)  # type: ignore[arg-type]
    by_item: dict[int, list[ReviewFile]] = defaultdict(list)
    for f in files:
        by_item[f.item_number].append(f)
    return [{"item": i, "files": by_item.get(i.number, []), "done": bool(i.text or by_item.get(i.number)),
             "current": i.number == case.current_item}
            for i in await items_of(session, case.id)]  # type: ignore[arg-type]


async def people_labels(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """``李娜（华埠镇）`` for each person."""
    if not ids:
        return {}
    rows = await session.exec(select(Person.id, Person.name, Unit.name)
                              .join(Unit, Unit.id == Person.unit_id, isouter=True).where(col(Person.id).in_(ids)))
    return {pid: f"{name}（{unit}）" if unit else name for pid, name, unit in rows.all()}


async def queue(session: AsyncSession) -> list[ReviewCase]:
    """Cases waiting for staff, in order of arrival (the latest submission)."""
    return list((await session.exec(
        select(ReviewCase).where(ReviewCase.status == CaseStatus.SUBMITTED)
        .order_by(ReviewCase.submitted_at, ReviewCase.id))).all())


async def overdue_cases(session: AsyncSession, now: dt.datetime) -> list[ReviewCase]:
    cases = (await session.exec(
        select(ReviewCase).where(col(ReviewCase.status).in_((CaseStatus.SUBMITTED, CaseStatus.JOINT)),
                                 ReviewCase.due_at < now)  # type: ignore[operator]
        .order_by(ReviewCase.submitted_at, ReviewCase.id))).all()
    return [c for c in cases if is_overdue(c, now)]


async def pending_parts(session: AsyncSession, case_ids: list[int]) -> dict[int, list[JointPart]]:
    """联办单 parts not yet entered, by case."""
    out: dict[int, list[JointPart]] = defaultdict(list)
    if case_ids:
        for p in (await session.exec(select(JointPart).where(col(JointPart.case_id).in_(case_ids), JointPart.result == "")
                                     .order_by(JointPart.id))).all():
            out[p.case_id].append(p)
    return out


async def staff_views(session: AsyncSession, cases: list[ReviewCase], now: dt.datetime,
                      calendar: WorkCalendar) -> list[dict]:
    labels = await people_labels(session, {c.submitter_id for c in cases})
    counts: dict[int, int] = {}
    if cases:
        counts = dict((await session.exec(
            select(ReviewFile.case_id, func.count()).where(col(ReviewFile.case_id).in_([c.id for c in cases]))
            .group_by(ReviewFile.case_id))).all())
    return [{"c": c, "sender": labels.get(c.submitter_id, ""), "files": counts.get(c.id, 0),  # type: ignore[arg-type]
             "at": local(c.submitted_at) if c.submitted_at else None,
             "due": local(c.due_at) if c.due_at else None, "overdue": is_overdue(c, now),
             "waited": workdays_between(c.submitted_at, now, calendar) if c.submitted_at else 0}
            for c in cases]


# --- figures for 统计, the export and the quarterly summary ---------------------------------------------

@dataclass
class ProcedureFigures:
    title: str
    received: int = 0  # cases submitted at least once
    waiting: int = 0
    approved: int = 0
    transferred: int = 0
    closed: int = 0
    returns: int = 0  # 退回, counted each time
    overdue: int = 0
    decision_days: list[int] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return self.approved + self.transferred + self.closed

    @property
    def average_days(self) -> float | None:
        return round(sum(self.decision_days) / len(self.decision_days), 1) if self.decision_days else None


async def case_figures(session: AsyncSession, first: dt.date, last: dt.date, now: dt.datetime,
                       calendar: WorkCalendar) -> list[ProcedureFigures]:
    """Per procedure: cases first submitted from ``first`` to ``last`` (local days) and where they stand."""
    cases = (await session.exec(
        select(ReviewCase).where(col(ReviewCase.first_submitted_at).is_not(None),
                                 ReviewCase.first_submitted_at >= day_start(first),  # type: ignore[operator]
                                 ReviewCase.first_submitted_at < day_start(last + dt.timedelta(days=1)))  # type: ignore[operator]
        .order_by(ReviewCase.procedure))).all()
    out: dict[str, ProcedureFigures] = {}
    for c in cases:
        f = out.setdefault(c.procedure, ProcedureFigures(title=c.title))
        f.received += 1
        f.returns += c.returns
        if c.status == CaseStatus.APPROVED:
            f.approved += 1
        elif c.status == CaseStatus.TRANSFERRED:
            f.transferred += 1
        elif c.status == CaseStatus.CLOSED:
            f.closed += 1
        elif c.status in (CaseStatus.SUBMITTED, CaseStatus.RETURNED, CaseStatus.JOINT):
            f.waiting += 1
        f.overdue += is_overdue(c, now)
        if c.decided_at is not None and c.first_submitted_at is not None:
            f.decision_days.append(workdays_between(c.first_submitted_at, c.decided_at, calendar))
    return list(out.values())


async def copy_case_files(session: AsyncSession, store: FileStore, case_id: int, target: Path,
                          now: dt.datetime) -> list[Path] | None:
    """Copy a case's files out for staff to read (``bangdai cases files 7 目录``), named by checklist item
    and original name; None when there is no such case. Audited: the files are personal records."""
    case = await session.get(ReviewCase, case_id)
    if case is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for n, f in enumerate(await files_of(session, case_id), start=1):
        safe = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", f.name).strip(". ") or "file"
        path = target / f"{case_id}-{f.item_number}-{n}-{safe}"
        path.write_bytes(store.read(f.sha256))
        out.append(path)
    audit(session, now, Actor("cli"), "case.files_copied", f"case:{case_id}", files=len(out))
    return out


# --- retention ------------------------------------------------------------------------------------------

async def purge_decided(session: AsyncSession, store: FileStore, now: dt.datetime, retention_days: int) -> int:
    """Remove cases decided more than ``retention_days`` ago — and drafts started that long ago and
    never submitted — with their items, files and parts; a file leaves the disk once no remaining case
    points at it. Returns how many cases went."""
    cutoff = now - dt.timedelta(days=retention_days)
    ids = list((await session.exec(
        select(ReviewCase.id).where(or_(
            and_(col(ReviewCase.status).in_(CaseStatus.DECIDED), col(ReviewCase.decided_at).is_not(None),
                 ReviewCase.decided_at < cutoff),  # type: ignore[operator]
            and_(ReviewCase.status == CaseStatus.DRAFT, ReviewCase.created_at < cutoff)))
    )).all())
    if not ids:
        return 0
    hashes = set((await session.exec(select(ReviewFile.sha256).where(col(ReviewFile.case_id).in_(ids)))).all())
    for model in (ReviewFile, ReviewItem, ReviewDecision, JointPart):
        await session.exec(delete(model).where(col(model.case_id).in_(ids)))  # type: ignore[call-overload]
    await session.exec(delete(ReviewCase).where(col(ReviewCase.id).in_(ids)))  # type: ignore[call-overload]
    still = set((await session.exec(select(ReviewFile.sha256).where(col(ReviewFile.sha256).in_(hashes)))).all()) \
        if hashes else set()
    for sha in hashes - still:
        store.remove(sha)
    audit(session, now, None, "case.purge", "case:*", cases=ids, files=len(hashes - still))
    return len(ids)
