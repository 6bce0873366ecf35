"""Housekeeping: what the service keeps only as long as it needs it."""

from __future__ import annotations

import datetime as dt
import logging

from sqlmodel import col, delete

from storage.models import ProcessedMessage

from ..registry import JobContext, job

log = logging.getLogger(__name__)


@job("purge_processed_messages", period="day",
     description="清理：删除超过保留天数的已处理消息记录（含当时的回复内容）")
async def purge_processed_messages(ctx: JobContext) -> int:
    """Every handled chat message is recorded with its replies, so a platform's redelivery answers the
    same and changes nothing. Redeliveries come within minutes; the replies can hold other people's
    records and mailbox text, so the record is kept ``[programme] processed_message_days`` and no
    longer. Queues no messages."""
    days = ctx.services.config.programme.processed_message_days  # type: ignore[attr-defined]
    if days < 1:  # 0 or less would forget messages a platform may still redeliver
        log.error("[programme] processed_message_days = %s: must be at least 1; nothing purged", days)
        return 0
    cutoff = ctx.at - dt.timedelta(days=days)
    result = await ctx.session.exec(delete(ProcessedMessage).where(col(ProcessedMessage.received_at) < cutoff))  # type: ignore[call-overload]
    log.info("purged %d processed-message record(s) received before %s", result.rowcount, cutoff.isoformat())
    return 0
