"""The durable outbox against platforms that misbehave: errors, throttling, rate limits, crashes."""

import asyncio
import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from bot.channels.base import Channel, PermanentError, TransientError
from bot.clock import Clock
from bot.inbound import Outgoing
from scheduler.outbox import Dispatcher, Outbox
from storage.models import ChatIdentity, OutboxMessage, OutboxStatus, Person

REPO = Path(__file__).resolve().parent.parent


class FlakyPlatform(Channel):
    """A fake platform: refuses some calls with 5xx-like errors or throttling, and records every call it
    receives (accepted or not) so the test can check the rate the dispatcher kept."""

    name = "flaky"

    def __init__(self, fail_rate=0.3, throttle_rate=0.1, max_batch=1, permanent=()):
        self.fail_rate, self.throttle_rate, self.max_batch = fail_rate, throttle_rate, max_batch
        self.permanent = set(permanent)
        self.calls: list[float] = []
        self.accepted: collections.Counter = collections.Counter()
        self.rng = random.Random(7)

    def _maybe_fail(self):
        self.calls.append(time.monotonic())
        roll = self.rng.random()
        if roll < self.fail_rate:
            raise TransientError("HTTP 502 Bad Gateway")
        if roll < self.fail_rate + self.throttle_rate:
            raise TransientError("throttled: 45009", retry_after=0.05)

    async def deliver(self, address, text, fmt, key):
        if address.user_id in self.permanent:
            self.calls.append(time.monotonic())
            raise PermanentError("invaliduser")
        self._maybe_fail()
        self.accepted[key] += 1

    async def deliver_batch(self, addresses, text, fmt, keys):
        self._maybe_fail()
        for key in keys:
            self.accepted[key] += 1
        return [None] * len(keys)


async def people(services, n, channel="flaky"):
    async with services.db.transaction() as s:
        ids = []
        for i in range(n):
            p = Person(name=f"人{i}", created_at=services.clock.now())
            s.add(p)
            await s.flush()
            s.add(ChatIdentity(channel=channel, platform_user_id=f"x{i}", person_id=p.id, created_at=services.clock.now()))
            ids.append(p.id)
    return ids


def real_outbox(services, channels=("flaky",)):
    services.config.outbox.backoff_base_seconds = 0.02
    services.config.outbox.backoff_max_seconds = 0.2
    services.config.outbox.max_attempts = 50
    return Outbox(services.db, Clock(), services.config, channels)


async def queue(outbox, services, messages):
    async with services.db.transaction() as s:
        return await outbox.enqueue_many(s, messages)


async def statuses(services):
    async with services.db.transaction() as s:
        return dict((await s.exec(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all())


def max_in_window(times, window=1.0):
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_flaky_platform_gets_everything_once_within_the_rate_limit(services):
    outbox = real_outbox(services)
    ids = await people(services, 60)
    assert await queue(outbox, services, [Outgoing(f"k{i}", f"第{i}条", person_id=p) for i, p in enumerate(ids)]) == 60
    platform = FlakyPlatform()
    dispatcher = Dispatcher(outbox, platform, rate_per_second=20)
    await dispatcher.start()
    try:
        for _ in range(400):
            if (await statuses(services)).get(OutboxStatus.SENT) == 60:
                break
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
    assert await statuses(services) == {OutboxStatus.SENT: 60}
    assert set(platform.accepted.values()) == {1} and len(platform.accepted) == 60
    assert len(platform.calls) > 60  # there were failures, and they were retried
    assert max_in_window(platform.calls) <= 20


async def test_permanent_failure_is_recorded_not_retried_and_can_be_retried_by_hand(services):
    outbox = real_outbox(services)
    ids = await people(services, 3)
    await queue(outbox, services, [Outgoing(f"k{i}", "同一条", person_id=p) for i, p in enumerate(ids)])
    platform = FlakyPlatform(fail_rate=0, throttle_rate=0, permanent={"x1"})
    dispatcher = Dispatcher(outbox, platform, rate_per_second=100)
    assert await dispatcher.run_once() == 3
    assert await dispatcher.run_once() == 0
    [failed] = await outbox.problems()
    assert failed.status == OutboxStatus.FAILED and failed.last_error == "invaliduser" and failed.attempts == 1
    platform.permanent.clear()
    assert await outbox.retry([failed.id]) == 1
    assert await dispatcher.run_once() == 1
    assert await statuses(services) == {OutboxStatus.SENT: 3}


async def test_transient_failures_give_up_after_max_attempts(services):
    outbox = real_outbox(services)
    services.config.outbox.max_attempts = 3
    [pid] = await people(services, 1)
    await queue(outbox, services, [Outgoing("k", "x", person_id=pid)])
    dispatcher = Dispatcher(outbox, FlakyPlatform(fail_rate=1.0), rate_per_second=100)
    for _ in range(50):
        await dispatcher.run_once()
        if (await statuses(services)).get(OutboxStatus.FAILED):
            break
        await asyncio.sleep(0.05)
    [row] = await outbox.problems()
    assert row.attempts == 3 and "502" in row.last_error


async def test_identical_messages_are_batched(services):
    outbox = real_outbox(services)
    ids = await people(services, 45)
    await queue(outbox, services, [Outgoing(f"k{i}", "同一条提醒", person_id=p) for i, p in enumerate(ids)]
                + [Outgoing("other", "另一条", person_id=ids[0])])
    platform = FlakyPlatform(fail_rate=0, throttle_rate=0, max_batch=20)
    assert await Dispatcher(outbox, platform, rate_per_second=100).run_once() == 46
    assert len(platform.calls) == 4  # 20 + 20 + 5 identical, and one different


async def test_idempotency_key_and_preferred_channel(services):
    services.config.outbox.channel_order = ["wecom", "local"]
    outbox = Outbox(services.db, services.clock, services.config, ["local", "wecom"])
    [pid] = await people(services, 1, channel="local")
    async with services.db.transaction() as s:
        s.add(ChatIdentity(channel="wecom", platform_user_id="w1", person_id=pid, created_at=services.clock.now()))
    assert await queue(outbox, services, [Outgoing("same", "一", person_id=pid)]) == 1
    assert await queue(outbox, services, [Outgoing("same", "二", person_id=pid)]) == 0
    async with services.db.transaction() as s:
        [row] = (await s.exec(select(OutboxMessage))).all()
    assert (row.channel, row.user_id, row.body) == ("wecom", "w1", "一")
    # wecom not enabled on this process: the person still gets it on the next channel in order
    local_only = Outbox(services.db, services.clock, services.config, ["local"])
    await queue(local_only, services, [Outgoing("k2", "三", person_id=pid)])
    async with services.db.transaction() as s:
        row = (await s.exec(select(OutboxMessage).where(OutboxMessage.key == "k2"))).one()
    assert (row.channel, row.user_id) == ("local", "x0")


async def test_chat_keeps_answering_while_the_outbox_is_backed_up(services, chat, bangdai, seeded):
    outbox = real_outbox(services)
    ids = await people(services, 50)
    await queue(outbox, services, [Outgoing(f"k{i}", f"{i}", person_id=p) for i, p in enumerate(ids)])
    slow = FlakyPlatform(fail_rate=0, throttle_rate=0)
    dispatcher = Dispatcher(outbox, slow, rate_per_second=5)  # 50 messages take ~10 s
    await dispatcher.start()
    try:
        await asyncio.sleep(0.3)
        for _ in range(5):
            assert "本周帮带情况" in await chat.say("u2", "本周")
        assert (await statuses(services)).get(OutboxStatus.SENT, 0) < 50  # answered while still backed up
    finally:
        await dispatcher.stop()


CRASH_WORKER = r"""
import asyncio, os, sys, time
sys.path.insert(0, os.environ["REPO"])
from bot.channels.base import Channel
from bot.clock import Clock
from bot.config import Config
from scheduler.outbox import Dispatcher, Outbox
from storage.db import Database

class FilePlatform(Channel):
    name = "file"
    async def deliver(self, address, text, fmt, key):
        await asyncio.sleep(0.01)
        with open(os.environ["PLATFORM_LOG"], "a") as f:   # the platform accepts...
            f.write(key + "\n"); f.flush(); os.fsync(f.fileno())

async def main():
    config = Config(); config.database.url = os.environ["DB_URL"]
    db = Database(config.database.url)
    outbox = Outbox(db, Clock(), config, ["file"])
    d = Dispatcher(outbox, FilePlatform(), rate_per_second=200, lease_seconds=float(os.environ["LEASE"]), batch_limit=20)
    while await d.run_once():
        pass
    await db.close()

asyncio.run(main())
"""


async def test_sigkill_during_dispatch_loses_nothing_and_duplicates_at_most_in_flight(services, tmp_path, config):
    db_url = config.database.url
    outbox = Outbox(services.db, services.clock, services.config, ["file"])
    ids = await people(services, 120, channel="file")
    await queue(outbox, services, [Outgoing(f"k{i}", f"{i}", person_id=p) for i, p in enumerate(ids)])
    log = tmp_path / "platform.log"
    env = {**os.environ, "REPO": str(REPO), "DB_URL": db_url, "PLATFORM_LOG": str(log), "LEASE": "1",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WORKER], env=env)
    for _ in range(500):  # kill it mid-way, once the platform has accepted some messages
        if log.exists() and len(log.read_text().split()) >= 30:
            break
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    accepted_before = len(log.read_text().split())
    assert 0 < accepted_before < 120
    await asyncio.sleep(1.1)  # the dead process's lease runs out
    subprocess.run([sys.executable, "-c", CRASH_WORKER], env=env, check=True, timeout=120)
    keys = log.read_text().split()
    counts = collections.Counter(keys)
    assert set(counts) == {f"k{i}" for i in range(120)}  # nothing lost
    # Only messages in flight at the kill (accepted, not yet marked sent) may go out twice.
    in_flight = Dispatcher(outbox, FlakyPlatform(), 200).max_unrecorded  # the worker's defaults
    assert sum(c - 1 for c in counts.values()) <= in_flight
    assert await statuses(services) == {OutboxStatus.SENT: 120}


async def test_every_outcome_is_recorded_when_deliveries_overlap(services):
    """Deliveries finish out of order and flushes happen while others are still sending: after one
    round no row may be left 'sending' (it would be sent again when its lease ran out)."""

    class Jittery(FlakyPlatform):
        async def deliver(self, address, text, fmt, key):
            await asyncio.sleep(self.rng.random() / 100)
            self.accepted[key] += 1

    outbox = real_outbox(services)
    ids = await people(services, 80)
    await queue(outbox, services, [Outgoing(f"k{i}", f"第{i}条", person_id=p) for i, p in enumerate(ids)])
    assert await Dispatcher(outbox, Jittery(), rate_per_second=1000).run_once() == 80
    assert await statuses(services) == {OutboxStatus.SENT: 80}
