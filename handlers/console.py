"""后台: a staff member asks in a private chat for a one-time link to the web console; 退出 ends
their console sessions. The console itself is ``bot.console``."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.audit import audit
from bot.console.auth import console_base, end_sessions_of, issue_link
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router
from bot.text import Args
from handlers.args import nothing_more

router = Router()


@router.command("后台", "console", roles=STAFF_ROLES, private_only=True, order=85,
                summary="打开网页后台（组工干部）：发来一次性登录链接", usage="后台", examples=("后台",))
async def console_link(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config) -> Answer:
    nothing_more(args)
    base = console_base(config)
    if base is None:
        raise Refusal("console/off")
    now = clock.now()
    secret = await issue_link(session, sender, now, config)
    return Answer.of("console/link", url=f"{base}/console/login?t={secret}", minutes=config.console.link_minutes,
                     hours=config.console.session_hours)


@router.command("退出", "logout", roles=STAFF_ROLES, private_only=True, order=86,
                summary="退出网页后台（组工干部）", usage="退出", examples=("退出",))
async def console_logout(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    nothing_more(args)
    now = clock.now()
    ended = await end_sessions_of(session, sender.id, now)
    audit(session, now, sender, "console.logout", via="chat", sessions=ended)
    return Answer.of("console/logged_out", ended=ended)
