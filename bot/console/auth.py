"""Console logins: one-time links (``后台`` in a private chat) and browser sessions.

A link's secret and a session's cookie are random; only their sha256 is stored, so a copy of the
database opens nothing. A link works once, within ``link_minutes``, for the person it was sent to, and
only while that person is still active 组工干部/管理员 — checked again on every request, so removing the
role ends the console at once. The CSRF token of a form is an HMAC of the session's secret: a page
from elsewhere cannot know it, and nothing more needs storing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ConsoleLink, ConsoleSession

from ..audit import audit
from ..config import Config
from ..identity import STAFF_ROLES, Sender, sender_for_person

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CHANNEL = "console"  # how the console's actions are labelled when they run through the gateway


def console_base(config: Config) -> str | None:
    """The console's address for links, or None while it is off: disabled, or served on a non-local
    host without ``[console] base_url`` (a link must name an address people can reach)."""
    if not config.console.enabled:
        return None
    if config.console.base_url:
        return config.console.base_url.rstrip("/")
    if config.server.host in LOCAL_HOSTS:
        host = f"[{config.server.host}]" if ":" in config.server.host else config.server.host
        return f"http://{host}:{config.server.port}"
    return None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), b"console-csrf", hashlib.sha256).hexdigest()[:40]


def csrf_ok(session_secret: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_secret), str(given))


async def issue_link(session: AsyncSession, sender: Sender, now: dt.datetime, config: Config) -> str:
    """A new one-time link's secret for ``sender`` (the caller builds the address)."""
    secret = secrets.token_hex(32)  # hex: nothing a markdown renderer could read as emphasis
    session.add(ConsoleLink(token_hash=digest(secret), person_id=sender.id, created_at=now,
                            expires_at=now + dt.timedelta(minutes=config.console.link_minutes)))
    audit(session, now, sender, "console.link")
    return secret


@dataclass(frozen=True)
class LinkState:
    """What a link is worth now: ``ok``, or why not (``unknown``, ``used``, ``expired``, ``not_staff``)."""

    state: str
    person_id: int | None = None


async def staff_sender(session: AsyncSession, person_id: int) -> Sender | None:
    sender = await sender_for_person(session, person_id, CHANNEL)
    return sender if sender is not None and sender.roles & STAFF_ROLES else None


async def check_link(session: AsyncSession, secret: str, now: dt.datetime) -> LinkState:
    link = await session.get(ConsoleLink, digest(secret)) if secret else None
    if link is None:
        return LinkState("unknown")
    if link.used_at is not None:
        return LinkState("used", link.person_id)
    if now >= link.expires_at:
        return LinkState("expired", link.person_id)
    if await staff_sender(session, link.person_id) is None:
        return LinkState("not_staff", link.person_id)
    return LinkState("ok", link.person_id)


async def use_link(session: AsyncSession, secret: str, now: dt.datetime, config: Config) -> tuple[LinkState, str | None]:
    """Spend the link and open a session: (state, the session's cookie secret when ``ok``). The link is
    marked used by a conditional UPDATE, so of two simultaneous clicks only one gets in."""
    state = await check_link(session, secret, now)
    if state.state != "ok":
        return state, None
    spent = await session.exec(
        update(ConsoleLink)
        .where(ConsoleLink.token_hash == digest(secret), col(ConsoleLink.used_at).is_(None))
        .values(used_at=now)
    )  # type: ignore[call-overload]
    if spent.rowcount != 1:
        return LinkState("used", state.person_id), None
    cookie = secrets.token_urlsafe(32)
    session.add(ConsoleSession(id_hash=digest(cookie), person_id=state.person_id, created_at=now, last_seen=now,
                               expires_at=now + dt.timedelta(hours=config.console.session_hours)))
    sender = await staff_sender(session, state.person_id)  # type: ignore[arg-type]
    audit(session, now, sender, "console.login")  # type: ignore[arg-type]
    return state, cookie


async def current(session: AsyncSession, cookie: str | None, now: dt.datetime, config: Config) -> Sender | None:
    """The staff member a cookie stands for, or None (no session, ended, expired, idle, not staff any
    more). A live session's idle clock restarts."""
    if not cookie:
        return None
    row = await session.get(ConsoleSession, digest(cookie))
    if row is None or row.ended_at is not None:
        return None
    if now >= row.expires_at or now - row.last_seen >= dt.timedelta(minutes=config.console.idle_minutes):
        row.ended_at = now
        session.add(row)
        return None
    sender = await staff_sender(session, row.person_id)
    if sender is None:
        row.ended_at = now
        session.add(row)
        return None
    row.last_seen = now
    session.add(row)
    return sender


async def end_session(session: AsyncSession, cookie: str, now: dt.datetime) -> None:
    row = await session.get(ConsoleSession, digest(cookie))
    if row is not None and row.ended_at is None:
        row.ended_at = now
        session.add(row)


async def end_sessions_of(session: AsyncSession, person_id: int, now: dt.datetime) -> int:
    """``退出`` in the chat: every open session of that person ends; how many did."""
    rows = (await session.exec(select(ConsoleSession).where(
        ConsoleSession.person_id == person_id, col(ConsoleSession.ended_at).is_(None),
        ConsoleSession.expires_at > now))).all()
    for row in rows:
        row.ended_at = now
        session.add(row)
    return len(rows)
