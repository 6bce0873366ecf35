"""Staff console benchmark — run by hand, not a test.

    python bench/console_bench.py [--pairs 2000] [--contacts 20] [--repeat 20] [--db URL]

A county-sized programme and more: ``--pairs`` active pairs (one mentor for every two mentees), each
with ``--contacts`` contacts over the last months, a plan item and a 季评; then a logged-in staff member
opens each console page ``--repeat`` times through the real HTTP server. Reports the median and the
slowest time per page (server time as the client sees it on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--contacts", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--db", default="")
    args = ap.parse_args()

    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import Bangdai, build_services
    from bot.clock import TZ, FrozenClock
    from bot.config import Config
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster
    from storage.migrate import upgrade
    from storage.models import ContactLog, PairReview, Pairing, PlanItem

    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    url = args.db or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)  # alembic runs its own event loop
    config = Config()
    config.database.url = url
    config.schedule.enabled = False
    config.outbox.dispatch = False
    clock = FrozenClock(dt.datetime(2026, 11, 19, 10, 0, tzinfo=TZ))
    services = build_services(config, clock)
    now = clock.now()

    mentors = max(1, args.pairs // 2)

    def name(prefix: str, i: int) -> str:  # names may not hold digits
        return prefix + chr(0x4E00 + i // 1000) + chr(0x5000 + i % 1000)

    roster = ["姓名,手机,单位,角色,本地ID", "陈静,13700005678,县委组织部,组工干部,staff"]
    roster += [f"{name('导师', i)},1380{i:07d},单位{i % 40},导师," for i in range(mentors)]
    roster += [f"{name('徒弟', i)},1390{i:07d},单位{i % 40},徒弟," for i in range(args.pairs)]
    (folder / "roster.csv").write_text("\n".join(roster), encoding="utf-8")
    pairs = ["徒弟,导师,开始日期"] + [f"{name('徒弟', i)},{name('导师', i // 2)},2026-03-02" for i in range(args.pairs)]
    (folder / "pairs.csv").write_text("\n".join(pairs), encoding="utf-8")
    t = time.perf_counter()
    assert (await import_roster(services.db, folder / "roster.csv", now=now)).ok
    assert (await import_pairs(services.db, folder / "pairs.csv", now=now)).ok
    async with services.db.transaction() as s:
        from sqlmodel import select

        ids = [p.id for p in (await s.exec(select(Pairing))).all()]
        mentees = dict((await s.exec(select(Pairing.id, Pairing.mentee_id))).all())
        rows = []
        for n, pid in enumerate(ids):
            for k in range(args.contacts):
                day = dt.date(2026, 11, 19) - dt.timedelta(days=(n + 7 * k) % 250)
                rows.append(ContactLog(pairing_id=pid, author_id=mentees[pid], day=day,
                                       mode="面谈" if k % 2 == 0 else "电话", note="讨论工作", created_at=now))
            rows.append(PlanItem(pairing_id=pid, seq=1, text="熟悉信访工作流程", created_by=mentees[pid], created_at=now))
            if n % 3 == 0:
                rows.append(PairReview(pairing_id=pid, quarter="2026-Q4", rating="较好", created_at=now))
        s.add_all(rows)
    print(f"loaded {args.pairs} pairs, {args.pairs * args.contacts} contacts in {time.perf_counter() - t:.1f} s")

    client = TestClient(TestServer(Bangdai(services).web_app()))
    await client.start_server()
    try:
        reply = await (await client.post("/api/local/messages", json={"user": "staff", "text": "后台"})).json()
        import re

        token = re.search(r"t=([0-9a-f]{64})", reply["replies"][0]["text"]).group(1)
        assert (await client.post("/console/login", data={"t": token}, allow_redirects=False)).status == 302
        pages = ["/console/", "/console/pairs", "/console/pairs?state=lapsed", "/console/pairs?page=20",
                 f"/console/pairs/{mentees[ids[0]]}", "/console/mailbox", "/console/changqing", "/console/outbox",
                 "/console/data/export.xlsx"]
        print(f"\n{platform.platform()}, Python {platform.python_version()}, {services.db.dialect}")
        print("| page | median | slowest |\n|---|---:|---:|")
        for page in pages:
            times = []
            for _ in range(args.repeat if not page.endswith(".xlsx") else 3):
                start = time.perf_counter()
                resp = await client.get(page)
                await resp.read()
                times.append(time.perf_counter() - start)
                assert resp.status == 200, (page, resp.status)
            print(f"| `{page}` | {statistics.median(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |")
    finally:
        await client.close()
        await services.db.close()


if __name__ == "__main__":
    asyncio.run(main())
