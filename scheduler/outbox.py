"""The durable outbox: everything that is not an immediate reply is a row first, then a delivery.

Writers (jobs, handlers) call :meth:`Outbox.enqueue_many` inside their own transaction, so a message
exists exactly when the change that caused it does. The :class:`Dispatcher` of each channel claims due
rows under a lease, hands them to the channel, and marks each sent only after the platform accepted
it. A crash leaves rows ``sending``; when their lease runs out they are due again, so nothing is lost
and only the messages in flight at the crash can go out twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import time
from collections import deque
from prometheus_client import Counter, Gauge
from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.base import Channel, DeliveryError, PermanentError, TransientError
from bot.clock import Clock
from bot.config import Config
from bot.inbound import ANONYMOUS_SOURCE, Address, Outgoing
from storage.db import Database
from storage.models import ChatIdentity, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

SENT = Counter("bangdai_outbox_sent_total", "Outbox messages the platform accepted", ["channel"])
RETRIED = Counter("bangdai_outbox_retries_total", "Transient delivery failures", ["channel"])
FAILED = Counter("bangdai_outbox_failed_total", "Outbox messages that failed for good", ["channel"])
QUEUE = Gauge("bangdai_outbox_queued", "Outbox messages waiting", ["channel"])

_ANONYMOUS_KINDS = {"answer": "答复", "closed": "关闭通知"}


@dataclass(frozen=True)
class OperatorView:
    """One outbox row as the CLI and the logs show it."""

    to: str
    what: str
    error: str


def operator_view(row: OutboxMessage) -> OperatorView:
    """Recipient, subject and last error of a row for people who run the service. For a notice to an
    anonymous letter's writer the address is masked (also inside the platform's error text) and the
    subject reads "匿名来信答复 #12": whoever runs the CLI must not learn who wrote it."""
    to = f"{row.channel or '-'}:{row.group_name or row.user_id or f'person:{row.person_id}'}"
    if row.source != ANONYMOUS_SOURCE:
        return OperatorView(to, row.key, row.last_error)
    parts = row.key.split(":")
    ticket, kind = (parts[1], parts[2]) if len(parts) >= 4 else ("?", "")
    error = row.last_error.replace(row.user_id, "***") if row.user_id else row.last_error
    return OperatorView(f"{row.channel or '-'}:***（匿名来信人）", f"匿名来信{_ANONYMOUS_KINDS.get(kind, '通知')} #{ticket}", error)


NO_ACCOUNT = "没有可用的聊天账号（未绑定或所在平台未启用）"


class Outbox:
    """The one writer of outbox rows (:class:`bot.inbound.OutboxWriter` for handlers and jobs) and what
    operators read of them."""

    def __init__(self, db: Database, clock: Clock, config: Config, enabled_channels: Iterable[str]) -> None:
        self.db, self.clock, self.config = db, clock, config
        enabled = set(enabled_channels)
        self.order = [c for c in config.outbox.channel_order if c in enabled] + sorted(
            enabled - set(config.outbox.channel_order)
        )
        self._listeners: list[asyncio.Event] = []

    def listen(self) -> asyncio.Event:
        """An event set whenever something new is queued (dispatchers wait on it instead of polling)."""
        event = asyncio.Event()
        self._listeners.append(event)
        return event

    def notify(self) -> None:
        for event in self._listeners:
            event.set()

    async def accounts(self, session: AsyncSession, person_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """The chat account each person gets messages on: the first enabled channel in the configured order."""
        ids = list(set(person_ids))
        out: dict[int, tuple[str, str]] = {}
        if not ids:
            return out
        rank = {c: i for i, c in enumerate(self.order)}
        for chunk in range(0, len(ids), 5000):
            rows = await session.exec(
                select(ChatIdentity.person_id, ChatIdentity.channel, ChatIdentity.platform_user_id).where(
                    col(ChatIdentity.person_id).in_(ids[chunk:chunk + 5000]),
                    col(ChatIdentity.channel).in_(self.order),
                )
            )
            for person_id, channel, user_id in rows.all():
                best = out.get(person_id)
                if best is None or rank[channel] < rank[best[0]]:
                    out[person_id] = (channel, user_id)
        return out

    async def enqueue_many(self, session: AsyncSession, messages: Sequence[Outgoing]) -> int:
        """Queue messages in the caller's transaction; a key already queued is kept as it was.
        Returns how many rows are new."""
        if not messages:
            return 0
        now = self.clock.now()
        accounts = await self.accounts(session, [m.person_id for m in messages if m.person_id is not None])
        rows = []
        for m in messages:
            row: dict[str, Any] = {
                "key": m.key, "person_id": m.person_id, "body": m.body, "format": m.format, "source": m.source,
                "status": OutboxStatus.QUEUED, "attempts": 0, "next_attempt_at": now, "created_at": now,
                "last_error": "", "user_id": None, "group_name": None, "channel": "",
            }
            if m.account is not None:
                row["channel"], row["user_id"] = m.account
            elif m.group is not None:
                row["channel"], row["group_name"] = m.group
                if m.group[0] not in self.order:
                    row["status"], row["last_error"] = OutboxStatus.UNDELIVERABLE, f"渠道 {m.group[0]} 未启用"
            elif m.person_id is not None and m.person_id in accounts:
                row["channel"], row["user_id"] = accounts[m.person_id]
            else:
                row["status"], row["last_error"] = OutboxStatus.UNDELIVERABLE, NO_ACCOUNT
            rows.append(row)
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        # One compiled statement, executed for many parameter sets (SQLAlchemy's "insertmanyvalues"):
        # a .values([...]) per chunk would recompile a statement with tens of thousands of parameters.
        stmt = insert(OutboxMessage).on_conflict_do_nothing(index_elements=["key"]).returning(OutboxMessage.id)
        conn = await session.connection()
        new = 0
        for chunk in range(0, len(rows), 5000):
            result = await conn.execute(stmt, rows[chunk:chunk + 5000])
            new += len(result.all())
        self.notify()
        return new

    async def enqueue(self, session: AsyncSession, message: Outgoing) -> bool:
        return await self.enqueue_many(session, [message]) == 1

    async def keys_queued(self, session: AsyncSession, account: tuple[str, str], source: str,
                          since: dt.datetime) -> list[str]:
        """The keys of messages from ``source`` queued to one chat account since ``since`` (the WeCom
        channel's once-a-day welcome asks this instead of reading the table itself)."""
        channel, user = account
        rows = await session.exec(select(OutboxMessage.key).where(
            OutboxMessage.channel == channel, OutboxMessage.user_id == user,
            OutboxMessage.source == source, OutboxMessage.created_at >= since,
        ))
        return list(rows.all())

    # --- what operators see ------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        async with self.db.transaction() as session:
            rows = await session.exec(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
            return dict(rows.all())

    async def problems(self, limit: int = 50, offset: int = 0) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            rows = await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.status).in_([OutboxStatus.FAILED, OutboxStatus.UNDELIVERABLE]))
                .order_by(col(OutboxMessage.id).desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows.all())

    async def retry(self, ids: Iterable[int]) -> int:
        """Put failed messages back in the queue by hand (after fixing whatever failed)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            result = await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(list(ids)), OutboxMessage.status == OutboxStatus.FAILED)
                .values(status=OutboxStatus.QUEUED, next_attempt_at=now, attempts=0, lease_until=None)
            )  # type: ignore[call-overload]
        self.notify()
        return result.rowcount or 0


class SlidingWindowLimiter:
    """At most ``rate`` calls in any one-second window, and no fewer when there is work.

    Platforms count calls per second (DingTalk: 20 QPS per app and API), so this is the quantity to
    bound. aiolimiter was tried first: its leaky bucket lets up to twice the rate through in the first
    second of a burst, and a bucket of one loses a timer tick per call (167/s for 200/s configured),
    so neither keeps "never above, within 5 % of" the configured rate.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        window = 1.0 if rate >= 1 else 1.0 / rate
        self.max_calls = max(1, int(rate * window))
        # 1 % wider than the platform's window: calls reach it a little after they leave here, unevenly.
        self.window = window * 1.01
        self.calls: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self.calls and now - self.calls[0] >= self.window:
                    self.calls.popleft()
                if len(self.calls) < self.max_calls:
                    self.calls.append(now)
                    return
                await asyncio.sleep(self.window - (now - self.calls[0]))


class Dispatcher:
    """Drains one channel's due messages within its rate limit, batching identical messages."""

    def __init__(self, outbox: Outbox, channel: Channel, rate_per_second: float, *, lease_seconds: float = 60,
                 batch_limit: int = 200, max_in_flight: int = 4, record_batch: int = 16) -> None:
        self.outbox, self.channel = outbox, channel
        self.db, self.clock, self.config = outbox.db, outbox.clock, outbox.config.outbox
        self.limiter = SlidingWindowLimiter(rate_per_second)
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.batch_limit = batch_limit
        self.max_in_flight = max_in_flight
        self.record_batch = record_batch
        self._unrecorded: list[tuple[OutboxMessage, DeliveryError | None]] = []
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._wakeup = outbox.listen()

    async def claim(self) -> list[OutboxMessage]:
        """Take due rows (queued and due, or sending with an expired lease) under a fresh lease."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            due = or_(
                and_(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_attempt_at <= now),
                and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now),  # type: ignore[operator]
            )
            query = (
                select(OutboxMessage)
                .where(OutboxMessage.channel == self.channel.name, due)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(self.batch_limit)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.exec(query)).all())
            if rows:
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_([r.id for r in rows]))
                    .values(status=OutboxStatus.SENDING, lease_until=now + self.lease)
                )  # type: ignore[call-overload]
        return rows

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were attempted.

        Calls start no faster than the rate limit, and up to ``max_in_flight`` of them run at once, so
        a slow platform or a slow database write never holds the pace below the limit. Those are also
        the only messages that can go out twice after a crash (accepted, but not yet marked sent).
        """
        rows = await self.claim()
        groups: dict[tuple, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            groups[(row.body, row.format, row.group_name is not None)].append(row)
        size = max(1, getattr(self.channel, "max_batch", 1))
        slots = asyncio.Semaphore(self.max_in_flight)
        tasks = []

        async def send(chunk: list[OutboxMessage], body: str, fmt: str) -> None:
            try:
                await self.limiter.acquire()  # nothing between the limiter and the platform call
                results = await self._deliver(chunk, body, fmt)
                # Only now look up the list: a flush during the await replaces it.
                self._unrecorded.extend(zip(chunk, results))
                if len(self._unrecorded) >= self.record_batch:
                    await self._flush()
            finally:
                slots.release()

        try:
            for (body, fmt, is_group), members in groups.items():
                chunks = [[m] for m in members] if is_group else [members[i:i + size] for i in range(0, len(members), size)]
                for chunk in chunks:
                    await slots.acquire()
                    if self._stopping:  # leave the rest to the lease: claimed rows are due again later
                        slots.release()
                        break
                    tasks.append(asyncio.create_task(send(chunk, body, fmt)))
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            # Never leave deliveries running behind a stopped or cancelled round.
            pending = [t for t in tasks if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await self._flush()
        return len(rows)

    @property
    def max_unrecorded(self) -> int:
        """The most messages that can be accepted by the platform but not yet marked sent — the
        messages a crash at the worst moment could send twice."""
        return self.record_batch + self.max_in_flight * max(1, getattr(self.channel, "max_batch", 1))

    async def _flush(self) -> None:
        """Write the outcomes of finished deliveries, several per transaction."""
        async with self._flush_lock:
            done, self._unrecorded = self._unrecorded, []
            if done:
                await self._record([row for row, _ in done], [error for _, error in done])

    async def _deliver(self, rows: list[OutboxMessage], body: str, fmt: str) -> list[DeliveryError | None]:
        addresses = [Address(self.channel.name, user_id=r.user_id, group=r.group_name) for r in rows]
        keys = [r.key for r in rows]
        try:
            if len(rows) == 1:
                await self.channel.deliver(addresses[0], body, fmt, keys[0])
                return [None]
            return list(await self.channel.deliver_batch(addresses, body, fmt, keys))
        except DeliveryError as exc:
            return [exc] * len(rows)
        except Exception as exc:  # an unexpected error is treated as transient, and logged in full
            log.exception("channel %s failed delivering %d message(s)", self.channel.name, len(rows))
            return [TransientError(f"{type(exc).__name__}: {exc}")] * len(rows)

    async def _record(self, rows: list[OutboxMessage], results: list[DeliveryError | None]) -> None:
        now = self.clock.now()
        name = self.channel.name
        async with self.db.transaction() as session:
            for row, error in zip(rows, results):
                values: dict[str, Any] = {"lease_until": None}
                if error is None:
                    values.update(status=OutboxStatus.SENT, sent_at=now, last_error="", attempts=row.attempts + 1)
                    SENT.labels(name).inc()
                elif isinstance(error, PermanentError) or row.attempts + 1 >= self.config.max_attempts:
                    values.update(status=OutboxStatus.FAILED, last_error=error.reason[:500], attempts=row.attempts + 1)
                    FAILED.labels(name).inc()
                    view = operator_view(row.model_copy(update={"last_error": error.reason}))
                    log.warning("outbox %s failed for good on %s: %s", view.what, name, view.error)
                else:
                    delay = self.backoff(row.attempts + 1, getattr(error, "retry_after", None))
                    values.update(status=OutboxStatus.QUEUED, attempts=row.attempts + 1, last_error=error.reason[:500],
                                  next_attempt_at=now + dt.timedelta(seconds=delay))
                    RETRIED.labels(name).inc()
                await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))  # type: ignore[call-overload]

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; never sooner than the platform asked."""
        cap = min(self.config.backoff_max_seconds, self.config.backoff_base_seconds * 2 ** (attempt - 1))
        delay = random.uniform(cap / 2, cap)
        return max(delay, retry_after or 0)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                attempted = await self.run_once()
            except Exception:
                log.exception("dispatcher %s: round failed", self.channel.name)
                attempted = 0
            if attempted == 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.config.poll_seconds)
                except asyncio.TimeoutError:
                    pass

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=f"dispatch-{self.channel.name}")

    async def stop(self) -> None:
        """Stop the background loop; the dispatcher can still be driven by hand with run_once()."""
        self._stopping = True
        self._wakeup.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, 5)
            except asyncio.TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._stopping = False
