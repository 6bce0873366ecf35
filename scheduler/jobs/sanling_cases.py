"""预审 jobs: the daily overdue reminder (like the mailbox's) and the retention purge of decided cases."""

from __future__ import annotations

import logging

from sqlmodel import select

from bot.identity import staff_ids
from handlers.sanling.case_ops import overdue_cases, pending_parts, purge_decided, staff_views
from storage.files import FileStore
from storage.models import ReviewFile

from bot.notify import Notice
from bot.router import Answer
from ..registry import JobContext, job

log = logging.getLogger(__name__)
ORPHAN_GRACE_SECONDS = 86400  # a file younger than this may belong to a message being handled right now


@job("case_overdue", period="day",
     description="预审超期提醒：超过流程时限（工作日）仍未答复的预审、未联审齐的联办单，每个工作日提醒")
async def case_overdue(ctx: JobContext) -> int:
    session = ctx.session
    if not ctx.calendar.is_workday(ctx.today):  # a reminder on a rest day waits for the next working day
        return 0
    cases = await overdue_cases(session, ctx.at)
    staff = await staff_ids(session)
    if not cases:
        return 0
    pending = await pending_parts(session, [c.id for c in cases if c.joint])  # type: ignore[misc]
    day = ctx.today.isoformat()
    notices = []
    for view in await staff_views(session, cases, ctx.at, ctx.calendar):
        parts = pending.get(view["c"].id, [])
        overdue = Answer.of("sanling/job_case_overdue", v=view, pending=parts)
        # A 联办单 waiting for departments also reminds the people who enter those parts.
        reviewers = {pid for p in parts for pid in p.reviewers}
        notices += [Notice(f"case-overdue:{view['c'].id}:{day}:{pid}", overdue, person_id=pid, source="case_overdue")
                    for pid in sorted(set(staff) | reviewers)]
    return await ctx.notify.many(session, notices)


@job("purge_case_files", period="day",
     description="清理：删除办结超过保留天数的预审案件及其文件；清掉没有案件引用的文件")
async def purge_case_files(ctx: JobContext) -> int:
    """Files sent for a case are personal records: kept ``[sanling] retention_days`` after the decision
    and no longer. A file whose message was rolled back (no row points at it) goes after a day. Queues
    no messages."""
    config = ctx.services.config.sanling  # type: ignore[attr-defined]
    if config.retention_days < 1:
        log.error("[sanling] retention_days = %s: must be at least 1; nothing purged", config.retention_days)
        return 0
    store = FileStore(config.files_dir)
    cases = await purge_decided(ctx.session, store, ctx.at, config.retention_days)
    referenced = set((await ctx.session.exec(select(ReviewFile.sha256))).all())
    orphans = 0
    for sha in store.names() - referenced:
        path = store.path(sha)
        if ctx.at.timestamp() - path.stat().st_mtime > ORPHAN_GRACE_SECONDS:
            orphans += store.remove(sha)
    log.info("purged %d decided case(s) and %d unreferenced file(s)", cases, orphans)
    return 0
