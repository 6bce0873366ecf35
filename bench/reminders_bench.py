"""Benchmark (run by hand, not a test): the weekly reminder at county-and-beyond scale.

    python bench/reminders_bench.py [--pairs 100000] [--rate 200] [--seconds 10] [--db URL]

1. Builds 100,000 active pairs (150,000 people, each with a chat account), half of them with a 面谈
   this week, in a fresh SQLite file (or the PostgreSQL database given with --db, which it empties).
2. Runs ``weekly_reminder`` in a child process and reports the time to compute and enqueue, and that
   process's peak memory (max RSS).
3. Dispatches for --seconds against a platform that accepts at once, with the outbox limited to
   --rate calls a second, and reports the achieved rate and the most calls seen in any one second.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, text  # noqa: E402

from bot.clock import TZ, FrozenClock  # noqa: E402
from bot.config import Config  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import ChatIdentity, ContactLog, Pairing, PairingMentor, Person, metadata  # noqa: E402

NOW = dt.datetime(2026, 11, 19, 16, 0, tzinfo=TZ)


async def build(url: str, pairs: int) -> None:
    db = Database(url)
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    mentors = pairs // 2
    people = pairs + mentors
    now = NOW
    t0 = time.perf_counter()
    async with db.engine.begin() as conn:
        for start in range(0, people, 10000):
            rows = [{"id": i + 1, "name": f"干部{i}", "phone": None, "title": "", "active": True, "created_at": now}
                    for i in range(start, min(people, start + 10000))]
            await conn.execute(insert(Person), rows)
            await conn.execute(insert(ChatIdentity), [
                {"channel": "local", "platform_user_id": f"u{r['id']}", "person_id": r["id"], "linked_by": "roster",
                 "created_at": now} for r in rows])
        for start in range(0, pairs, 10000):
            ids = range(start, min(pairs, start + 10000))
            await conn.execute(insert(Pairing), [
                {"id": i + 1, "mentee_id": i + 1, "start_date": dt.date(2026, 3, 1), "active": True, "end_reason": "",
                 "created_at": now} for i in ids])
            await conn.execute(insert(PairingMentor), [
                {"pairing_id": i + 1, "person_id": pairs + 1 + i // 2, "is_lead": True, "start_date": dt.date(2026, 3, 1),
                 "end_date": None, "start_reason": "", "end_reason": "", "dismissed": False} for i in ids])
            await conn.execute(insert(ContactLog), [
                {"pairing_id": i + 1, "author_id": i + 1, "day": dt.date(2026, 11, 17), "mode": "面谈", "note": "x",
                 "created_at": now} for i in ids if i % 2 == 0])
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            for table in ("person", "pairing", "pairingmentor", "chatidentity", "contactlog"):
                await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    await db.close()
    print(f"built {pairs} pairs / {people} people in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


async def enqueue(url: str) -> dict:
    from bot.app import build_services
    from scheduler.runner import run_job

    config = Config()
    config.database.url = url
    services = build_services(config, FrozenClock(NOW))
    t0 = time.perf_counter()
    result = await run_job(services, "weekly_reminder", NOW)
    seconds = time.perf_counter() - t0
    await services.db.close()
    return {"queued": result.queued, "seconds": round(seconds, 2),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


async def dispatch(url: str, rate: float, seconds: float) -> dict:
    from bot.channels.base import Channel
    from bot.clock import Clock
    from scheduler.outbox import Dispatcher, Outbox

    class Instant(Channel):
        name = "local"
        calls: list[float] = []

        async def deliver(self, address, text, fmt, key):
            self.calls.append(time.monotonic())

    config = Config()
    config.database.url = url
    db = Database(url)
    channel = Instant()
    dispatcher = Dispatcher(Outbox(db, Clock(), config, ["local"]), channel, rate)
    t0 = time.monotonic()
    await dispatcher.start()
    await asyncio.sleep(seconds)
    await dispatcher.stop()
    elapsed = time.monotonic() - t0
    await db.close()
    calls = sorted(channel.calls)
    peak, j = 0, 0
    for i, t in enumerate(calls):
        while t - calls[j] >= 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    # Whole one-second windows from the first call: the limiter fills each window, then waits.
    whole = int((calls[-1] - calls[0]) // 1.0) if calls else 0
    in_whole = sum(1 for t in calls if t - calls[0] < whole) if whole else 0
    return {"delivered": len(calls), "seconds": round(elapsed, 2), "configured_rate": rate,
            "achieved_rate": round(in_whole / whole, 1) if whole else None, "max_in_any_second": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--db")
    parser.add_argument("--phase", choices=["all", "enqueue"], default="all")
    args = parser.parse_args()
    if args.phase == "enqueue":
        print(json.dumps(asyncio.run(enqueue(args.db))))
        return
    url = args.db or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    asyncio.run(build(url, args.pairs))
    child = subprocess.run([sys.executable, __file__, "--phase", "enqueue", "--db", url],
                           capture_output=True, text=True, check=True)
    result = {"pairs": args.pairs, "database": url.split(":")[0], "enqueue": json.loads(child.stdout.strip().splitlines()[-1])}
    result["dispatch"] = asyncio.run(dispatch(url, args.rate, args.seconds))
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
