"""预审 files over DingTalk — run by hand, not a test.

    python bench/case_files_bench.py [--sizes 1,5,20] [--repeat 3] [--database-url URL]

In one process: Bangdai's DingTalk channel (real ``dingtalk-stream`` SDK) against the loopback fake
(``tests/fakes/dingtalk.py``). A submitter opens a 预审 case, then sends a file of each size; the time
is from the frame leaving the fake to the reply reaching the sessionWebhook (download URL, GET, hash,
write to disk, two transactions). Meanwhile a second user sends ``本周`` every 50 ms: their worst reply
time shows whether a download holds up other messages. Peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.dingtalk import FakeDingTalk  # noqa: E402
from fakes.dingtalk_fixtures import configure_dingtalk  # noqa: E402

ROSTER = """姓名,手机,单位,职务,角色,钉钉ID
李娜,13900003456,华埠镇,镇长,徒弟,dt_ln
陈静,13700005678,县委组织部,干部科科长,组工干部,dt_cj
"""


async def run(sizes: list[int], repeat: int, url: str | None) -> None:
    from bot.app import Bangdai, build_services
    from bot.config import Config
    from handlers.sheets.roster import import_roster
    from storage.migrate import upgrade_async

    work = Path(tempfile.mkdtemp(prefix="case-bench-"))
    config = Config()
    config.database.url = url or f"sqlite+aiosqlite:///{work}/bench.db"
    config.schedule.enabled = False
    config.outbox.dispatch = False
    config.sanling.files_dir = str(work / "files")
    config.sanling.max_file_mb = max(sizes) + 1
    await upgrade_async(config.database.url)
    fake = await FakeDingTalk().start()
    services = build_services(config)
    configure_dingtalk(services, fake)
    (work / "roster.csv").write_text(ROSTER, encoding="utf-8")
    await import_roster(services.db, work / "roster.csv", now=services.clock.now())
    app = Bangdai(services)
    channel = app.channels["dingtalk"]
    await channel.start()
    await fake.wait_connected()
    await fake.say("dt_ln", "预审 借用顶岗")
    others: list[float] = []
    stop = asyncio.Event()

    async def bystander() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await fake.say("dt_cj", "预审 待办")
            others.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(bystander())
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"database {config.database.url.split(':')[0]}")
    print("| file | replies (s), each run | bystander worst reply during the run (s) |")
    print("|---:|---|---:|")
    for mb in sizes:
        data = os.urandom(mb * 1024 * 1024)
        times = []
        others.clear()
        for _ in range(repeat):
            start = time.perf_counter()
            reply = await fake.send_file("dt_ln", data, name=f"{mb}MB.pdf", timeout=120)
            times.append(time.perf_counter() - start)
            assert "已收到" in reply, reply
            data = data[:-1] + bytes([(data[-1] + 1) % 256])  # a new file each time, not a stored hash
        print(f"| {mb} MB | {', '.join(f'{t:.2f}' for t in times)} | {max(others, default=0):.2f} |")
    stop.set()
    await watcher
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    await channel.stop()
    await services.db.close()
    await fake.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,5,20")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(run([int(s) for s in args.sizes.split(",")], args.repeat, args.database_url))


if __name__ == "__main__":
    main()
