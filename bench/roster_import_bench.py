"""Benchmark (run by hand, not a test): importing a county-and-beyond roster, and chat beside it.

    python bench/roster_import_bench.py [--rows 50000] [--format xlsx|csv] [--db URL]

1. Writes a roster of --rows people as an office would (title row, merged cells, 姓 名 / 手机号码 /
   单位（部门） headers, phones as numbers, a 角色 and a 钉钉ID each) in a temporary folder.
2. Imports it into a fresh SQLite file (or the PostgreSQL database given with --db, which it empties),
   and reports the time to read the file and the time of the whole import; then imports it again (every
   row unchanged) and reports that time.
3. While a third import of a changed file runs (every 角色 changed), a chat user sends 本周 through the
   gateway one message after another; reports how many were answered, the errors and the slowest reply.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from openpyxl import Workbook  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bot.app import build_services  # noqa: E402
from bot.clock import TZ, FrozenClock  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.gateway import Gateway  # noqa: E402
from bot.inbound import InboundMessage  # noqa: E402
from handlers.sheets.imports import ROSTER_COLUMNS  # noqa: E402
from handlers.sheets.roster import import_roster  # noqa: E402
from handlers.sheets.reader import read_sheet  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import metadata  # noqa: E402

NOW = dt.datetime(2026, 11, 19, 10, 0, tzinfo=TZ)
DIGITS = "零一二三四五六七八九"


def write_roster(folder: Path, rows: int, fmt: str, roles: tuple[str, str]) -> Path:
    header = ["序号", "姓 名", "手机号码", "单位（部门）", "职务", "角色", "钉钉ID", "出生年份"]
    body = [[i + 1, "干部" + "".join(DIGITS[int(c)] for c in f"{i:06d}"), 13_000_000_000 + i, f"单位{i % 300}",
             "科员", roles[i % 2], f"ding{i}", 1960 + i % 40] for i in range(rows)]
    if fmt == "csv":
        path = folder / f"roster-{roles[0]}.csv"
        path.write_text("\n".join(",".join(map(str, r)) for r in [header, *body]) + "\n", encoding="utf-8")
        return path
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("花名册")
    ws.append(["XX县干部花名册（2026年）"])
    ws.append(header)
    for r in body:
        ws.append(r)
    path = folder / f"roster-{roles[0]}.xlsx"
    wb.save(path)
    return path


async def chat_beside(services, import_task: asyncio.Task) -> dict:
    gateway = Gateway(services)
    times, errors, n = [], 0, 0
    while not import_task.done():
        n += 1
        msg = InboundMessage(channel="local", sender_id="u-staff", conversation_id="c", text="本周",
                             received_at=NOW, msg_id=f"bench-{n}")
        start = time.perf_counter()
        replies = await gateway.handle(msg)
        times.append(time.perf_counter() - start)
        errors += any("出了点问题" in r.text for r in replies)
    return {"answered": n, "errors": errors, "slowest_ms": round(max(times) * 1000, 1) if times else None,
            "median_ms": round(sorted(times)[len(times) // 2] * 1000, 1) if times else None}


async def main(args: argparse.Namespace, url: str, folder: Path) -> None:
    config = Config()
    config.database.url = url
    services = build_services(config, FrozenClock(NOW))
    if args.db:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name not in ("alembic_version", "directoryversion"))
        async with services.db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    first = write_roster(folder, args.rows, args.format, ("导师", "徒弟"))
    changed = write_roster(folder, args.rows, args.format, ("徒弟", "导师"))
    result: dict = {"rows": args.rows, "format": args.format, "database": url.split(":")[0],
                    "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
                    "file_mb": round(first.stat().st_size / 1e6, 1)}
    # Wall time and this process's CPU time (both threads): on a shared machine the CPU time is what
    # the same run costs when the machine is otherwise idle.
    start, cpu = time.perf_counter(), time.process_time()
    sheet = read_sheet(first, ROSTER_COLUMNS, {"name"}, kinds={"phone": "phone", "birth_year": "year"})
    result["read_s"] = round(time.perf_counter() - start, 2)
    result["read_cpu_s"] = round(time.process_time() - cpu, 2)
    assert len(sheet.rows) == args.rows
    start, cpu = time.perf_counter(), time.process_time()
    report = await import_roster(services.db, first, now=NOW)
    result["import_s"] = round(time.perf_counter() - start, 2)
    result["import_cpu_s"] = round(time.process_time() - cpu, 2)
    assert report.ok and report.created == args.rows, report.lines()[:5]
    start, cpu = time.perf_counter(), time.process_time()
    again = await import_roster(services.db, first, now=NOW)
    result["again_unchanged_s"] = round(time.perf_counter() - start, 2)
    result["again_cpu_s"] = round(time.process_time() - cpu, 2)
    assert again.unchanged == args.rows
    # a staff member to chat as, then a changed import with chat beside it
    async with services.db.transaction() as s:
        await s.exec(text("INSERT INTO chatidentity (channel, platform_user_id, person_id, linked_by, created_at) "
                          "VALUES ('local', 'u-staff', 1, 'bench', :now)"), params={"now": NOW})  # type: ignore[call-overload]
        await s.exec(text("INSERT INTO personrole (person_id, role) VALUES (1, '组工干部')"))  # type: ignore[call-overload]
    start = time.perf_counter()
    task = asyncio.create_task(import_roster(services.db, changed, now=NOW))
    result["chat_during_import"] = await chat_beside(services, task)
    report = await task
    result["changed_roles_s"] = round(time.perf_counter() - start, 2)
    assert report.ok and report.updated == args.rows, report.lines()[:5]
    await services.db.close()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    parser.add_argument("--db")
    cli = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bangdai-roster-"))
    db_url = cli.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
    upgrade(db_url)  # before the loop: migrations run their own
    asyncio.run(main(cli, db_url, tmp))
