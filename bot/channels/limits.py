"""Sliding-window send limits kept by a channel for limits the platform enforces per recipient.

WeCom drops a member's 31st message in a minute without any error, so waiting for the platform to
complain is not an option: the channel counts what it sent and refuses (with a retry time) before
the platform would drop. :class:`SharedWindow` keeps that count in the database, shared by every
``serve`` process.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Iterable

from ..clock import Clock

if TYPE_CHECKING:
    from storage.db import Database


class SlidingWindow:
    """At most ``limit`` sends per ``seconds`` for each key, for every (limit, seconds) rule at once.

    A send at time t counts while ``t > now - seconds``. Time comes from the injected clock.
    """

    def __init__(self, rules: Iterable[tuple[int, float]], clock: Clock) -> None:
        self.rules = [(int(limit), float(seconds)) for limit, seconds in rules if limit > 0]
        self.clock = clock
        self.longest = max((s for _, s in self.rules), default=0.0)
        self._sent: dict[str, deque[dt.datetime]] = defaultdict(deque)

    def _recent(self, key: str, now: dt.datetime) -> deque[dt.datetime]:
        sent = self._sent[key]
        horizon = now - dt.timedelta(seconds=self.longest)
        while sent and sent[0] <= horizon:
            sent.popleft()
        return sent

    def wait(self, key: str, n: int = 1) -> float:
        """Seconds until ``n`` more sends to ``key`` fit every rule; 0.0 when they fit now."""
        now = self.clock.now()
        sent = self._recent(key, now)
        worst = 0.0
        for limit, seconds in self.rules:
            need = min(n, limit)
            window = [t for t in sent if t > now - dt.timedelta(seconds=seconds)]
            excess = len(window) + need - limit
            if excess > 0:
                leaves = window[excess - 1] + dt.timedelta(seconds=seconds)
                worst = max(worst, (leaves - now).total_seconds())
        if not sent:
            self._sent.pop(key, None)
        return worst

    def take(self, key: str, n: int = 1) -> None:
        """Count ``n`` sends to ``key`` now (counted when attempted: a send whose answer was lost may
        still have been delivered)."""
        now = self.clock.now()
        self._recent(key, now).extend([now] * n)

    def record(self, key: str, at: dt.datetime) -> None:
        """Count a send made earlier (e.g. by this service before a restart)."""
        sent = self._sent[key]
        sent.append(at)
        if len(sent) > 1 and sent[-2] > at:
            self._sent[key] = deque(sorted(sent))

    def count(self, key: str, seconds: float) -> int:
        now = self.clock.now()
        return sum(1 for t in self._sent.get(key, ()) if t > now - dt.timedelta(seconds=seconds))


class SharedWindow:
    """:class:`SlidingWindow`'s rules, counted in the database (``RecentSend``) instead of in memory, so
    several ``serve`` processes on one database keep one limit per recipient between them.

    :meth:`reserve` checks and counts in one transaction. On PostgreSQL it first takes a transaction
    advisory lock per recipient (two-int form, a key space apart from the scheduler's one-bigint lock),
    so two processes cannot both pass the same check; SQLite runs one writer at a time anyway.
    """

    LOCK_CLASS = 0x7264  # "rd": the first key of the per-recipient advisory locks

    def __init__(self, db: "Database", scope: str, rules: Iterable[tuple[int, float]], clock: Clock) -> None:
        self.db, self.scope, self.clock = db, scope, clock
        self.rules = [(int(limit), float(seconds)) for limit, seconds in rules if limit > 0]
        self.longest = max((s for _, s in self.rules), default=0.0)

    async def reserve(self, wants: list[tuple[str, int]]) -> list[float]:
        """For each (recipient, sends) in order: 0.0 when the sends fit every rule now — and they are
        counted — or the seconds until they would fit (nothing counted)."""
        if not wants or not self.rules:
            return [0.0] * len(wants)
        from sqlalchemy import delete, insert, select, text

        from storage.models import RecentSend

        table = RecentSend.__table__  # type: ignore[attr-defined]
        now = self.clock.now()
        horizon = now - dt.timedelta(seconds=self.longest)
        targets = sorted({target for target, _ in wants})
        async with self.db.transaction() as session:
            conn = await session.connection()
            if conn.dialect.name == "postgresql":
                for target in targets:  # in one order everywhere: no deadlock between processes
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext(:k))"),
                                       {"c": self.LOCK_CLASS, "k": f"{self.scope}:{target}"})
            window = SlidingWindow(self.rules, _At(now))
            rows = await conn.execute(select(table.c.target, table.c.at, table.c.parts).where(
                table.c.scope == self.scope, table.c.target.in_(targets), table.c.at > horizon))
            for target, at, parts in rows:
                for _ in range(parts):
                    window.record(target, at)
            waits, counted = [], []
            for target, n in wants:
                wait = window.wait(target, n)
                waits.append(wait)
                if wait == 0.0:
                    window.take(target, n)
                    counted.append({"scope": self.scope, "target": target, "at": now, "parts": n})
            if counted:
                await conn.execute(insert(table), counted)
            await conn.execute(delete(table).where(table.c.scope == self.scope, table.c.target.in_(targets),
                                                   table.c.at <= horizon))
        return waits

    async def count(self, target: str, seconds: float) -> int:
        """Sends counted to ``target`` in the last ``seconds`` (health figures, tests)."""
        from sqlalchemy import func, select

        from storage.models import RecentSend

        table = RecentSend.__table__  # type: ignore[attr-defined]
        since = self.clock.now() - dt.timedelta(seconds=seconds)
        async with self.db.transaction() as session:
            conn = await session.connection()
            return int((await conn.execute(select(func.coalesce(func.sum(table.c.parts), 0)).where(
                table.c.scope == self.scope, table.c.target == target, table.c.at > since))).scalar() or 0)


class _At:
    """A clock stopped at one moment: one reservation is checked at one instant."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment
