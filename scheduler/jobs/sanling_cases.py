"""预审 jobs: the daily overdue reminder (like the mailbox's) and the retention purge of decided cases."""

from __future__ import annotations

import logging

from sqlmodel import select

from bot.identity import staff_ids
from handlers.sanling_case_ops import is_overdue, purge_decided, queue, staff_views
from storage.files import FileStore
from storage.models import ReviewFile

from ..outbox import Outgoing
from ..registry import JobContext, job

log = logging.getLogger(__name__)
ORPHAN_GRACE_SECONDS = 86400  # a file younger than this may belong to a message being handled right now


@job("case_overdue", period="day",
     description="预审超期提醒：超过流程时限（工作日）仍未答复的预审，每个工作日提醒组工干部")
async def case_overdue(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    if not ctx.calendar.is_workday(ctx.today):  # a reminder on a rest day waits for the next working day
        return 0
    cases = [c for c in await queue(session) if is_overdue(c, ctx.at)]
    staff = await staff_ids(session)
    if not cases or not staff:
        return 0
    render = services.renderer.renderer_for("sanling/job_case_overdue")
    day = ctx.today.isoformat()
    messages = []
    for view in await staff_views(session, cases, ctx.at, ctx.calendar):
        body = render(v=view)
        messages += [Outgoing(key=f"case-overdue:{view['c'].id}:{day}:{pid}", person_id=pid, body=body,
                              source="case_overdue") for pid in staff]
    return await services.outbox.enqueue_many(session, messages)


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
