"""Housekeeping: what the service keeps only as long as it needs it."""

from __future__ import annotations

import datetime as dt
import logging

from sqlmodel import col, delete

from storage.models import BindAttempt, ProcessedMessage

from ..registry import JobContext, job

log = logging.getLogger(__name__)


@job("purge_processed_messages", period="day",
     description="清理：删除超过保留天数的已处理消息记录（含当时的回复内容）和过期的绑定失败记录")
async def purge_processed_messages(ctx: JobContext) -> int:
    """Every handled chat message is recorded with its replies, so a platform's redelivery answers the
    same and changes nothing. Redeliveries come within minutes; the replies can hold other people's
    records and mailbox text, so the record is kept ``[programme] processed_message_days`` and no
    longer. Failed 绑定 tries are read only for two lock windows, so older ones go too (they name
    the account that tried). Queues no messages."""
    config = ctx.services.config.programme  # type: ignore[attr-defined]
    window = dt.timedelta(minutes=config.bind_lock_minutes)
    tries_cutoff = ctx.at - max(2 * window, dt.timedelta(days=1))
    result = await ctx.session.exec(delete(BindAttempt).where(col(BindAttempt.at) < tries_cutoff))  # type: ignore[call-overload]
    log.info("purged %d failed bind attempt(s) before %s", result.rowcount, tries_cutoff.isoformat())
    days = config.processed_message_days
    if days < 1:  # 0 or less would forget messages a platform may still redeliver
        log.error("[programme] processed_message_days = %s: must be at least 1; nothing purged", days)
        return 0
    cutoff = ctx.at - dt.timedelta(days=days)
    result = await ctx.session.exec(delete(ProcessedMessage).where(col(ProcessedMessage.received_at) < cutoff))  # type: ignore[call-overload]
    log.info("purged %d processed-message record(s) received before %s", result.rowcount, cutoff.isoformat())
    return 0
