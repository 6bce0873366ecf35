"""常青藤 monthly ranking (晾晒比拼): this month's group ranking posted to every configured 常青藤 group."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from handlers.changqing.common import split_lines
from bot.notify import Notice
from bot.router import Answer
from handlers.changqing.records import month_label, month_ranking, ranking_picture
from storage.models import OutboxMessage

from bot.inbound import Outgoing
from ..registry import JobContext, job

log = logging.getLogger(__name__)


def ranking_key(channel: str, group: str, period: str, part: int = 1) -> str:
    return f"changqing-ranking:{channel}:{group}:{period}" + (f"#{part}" if part > 1 else "")


@job("monthly_ranking", period="month", description="常青藤月度排行：本月各组实绩排行发到各常青藤群（晾晒比拼）")
async def monthly_ranking(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    targets = services.config.changqing.targets()
    if not targets:
        log.info("monthly_ranking: no [changqing] groups configured, nothing to post")
        return 0
    rows = await month_ranking(session, ctx.today)
    if not rows:
        log.info("monthly_ranking: no 常青藤 groups (编组) yet, nothing to post")
        return 0
    body = ctx.notify.render(Answer.of("changqing/ranking", rows=rows, month=month_label(ctx.today), mine=None,
                                       post=True)).text
    # A long ranking (23 groups and more) is posted in parts that fit WeCom's 2048 bytes.
    parts = split_lines(body)
    # One post per group per month: a group that already has this month's first part gets nothing new,
    # even if the ranking has grown since (a re-run must not post a second, different ranking).
    first_keys = [ranking_key(ch, name, ctx.period) for ch, name in targets]
    done = set((await session.exec(select(OutboxMessage.key).where(col(OutboxMessage.key).in_(first_keys)))).all())
    queued = await ctx.notify.queue(session, [
        Outgoing(ranking_key(ch, name, ctx.period, i), part, group=(ch, name), source="monthly_ranking")
        for ch, name in targets if ranking_key(ch, name, ctx.period) not in done
        for i, part in enumerate(parts, start=1)
    ])
    # 晾晒 is meant to be seen: the same ranking as a picture after the text (which stays for channels
    # that show none).
    picture = ranking_picture(services.renderer, rows, month_label(ctx.today), services.config.programme.county)
    return queued + await ctx.notify.many(session, [
        Notice(ranking_key(ch, name, ctx.period) + ":picture", picture, group=(ch, name), source="monthly_ranking")
        for ch, name in targets if ranking_key(ch, name, ctx.period) not in done
    ])
