"""The gateway's hot path in process — run by hand, not a test.

    python bench/hot_path_bench.py [--database-url URL] [--commands 本周,记录] [--messages 1000]
                                   [--warmup 300] [--repeat 3] [--concurrency 1] [--profile N]

The steadiest way to compare two versions of the code (docs/benchmarks.md, "Method (issue 19)"): the
database of ``bench/dingtalk_bench.py`` (100 pairs, each person with a DingTalk account), one
``Gateway`` in this process, and ``gateway.handle`` called ``--warmup`` times and then ``--messages``
times, one message after another (or ``--concurrency`` senders at once, as in the DingTalk bench's
saturated rows), from the 100 mentees in turn. CPU is ``time.process_time`` (this
process, all its threads); with PostgreSQL on the same machine the server's own CPU is not in it. It
leaves out the channel (~0.4–0.5 ms a command, the "channel, no gateway" row of the DingTalk bench).

Each command is measured ``--repeat`` times; the table gives the lowest and the median (the lowest is
the least disturbed by neighbours). ``--profile N`` instead runs each command once under cProfile and
prints the N functions with the most cumulative and own time.

SQLite (a fresh file) unless ``--database-url`` names a PostgreSQL database: a fresh one, as the
roster and pairs are imported into it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import itertools
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from dingtalk_bench import MENTEES, prepare_database  # noqa: E402
from hog import LoadSampler, machine_line  # noqa: E402

TEXTS = {
    "本周": lambda n: "本周",
    "记录": lambda n: f"记录 面谈 第{n}次交流",  # distinct: a repeat within minutes is answered "只记一次"
}
EXPECT = {"本周": "本周帮带情况", "记录": "已记录"}


async def run(args) -> None:
    from bot.app import build_services
    from bot.config import Config
    from bot.gateway import Gateway
    from bot.inbound import InboundMessage

    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='hot-path-')}/bench.db"
    await prepare_database(url)
    config = Config()
    config.database.url = url
    services = build_services(config)
    gateway = Gateway(services)
    users = [f"dt_e{i:03d}" for i in range(MENTEES)]
    seq = itertools.count()

    async def send(command: str, count: int) -> None:
        left = itertools.count()
        await asyncio.gather(*(one_by_one(command, left, count) for _ in range(args.concurrency)))

    async def one_by_one(command: str, left, count: int) -> None:
        while next(left) < count:
            n = next(seq)
            msg = InboundMessage("dingtalk", users[n % len(users)], f"c{n % len(users)}", TEXTS[command](n),
                                 msg_id=f"m{n}")
            replies = await gateway.handle(msg)
            if EXPECT[command] not in replies[0].text:
                raise SystemExit(f"{command}: unexpected reply {replies[0].text!r}")

    print(machine_line())
    print(f"database {url.split(':')[0]}, {args.messages} messages after {args.warmup} warm-up, "
          f"{args.concurrency} at a time, "
          f"pid {os.getpid()}\n")
    gc.collect()
    gc.freeze()  # as `serve` does after start-up
    try:
        if args.profile:
            for command in args.commands:
                await send(command, args.warmup)
                profiler = cProfile.Profile(time.process_time)  # CPU: waiting for a core is not ours
                profiler.enable()
                await send(command, args.messages)
                profiler.disable()
                if args.profile_file:
                    profiler.dump_stats(f"{args.profile_file}.{command}")
                for key in ("cumulative", "tottime"):
                    out = io.StringIO()
                    pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.profile)
                    print(f"--- {command}, by {key} ---")
                    print(out.getvalue())
            return
        print("| command | CPU ms/command, lowest | median | runs | load before | during |")
        print("|---|---:|---:|---|---|---|")
        for command in args.commands:
            await send(command, args.warmup)
            sampler = LoadSampler()
            runs = []
            for _ in range(args.repeat):
                cpu = time.process_time()
                await send(command, args.messages)
                runs.append((time.process_time() - cpu) / args.messages * 1000)
            print(f"| {command} | {min(runs):.2f} | {statistics.median(runs):.2f} | "
                  f"{', '.join(f'{r:.2f}' for r in runs)} | {sampler.before} | {sampler.during()} |", flush=True)
    finally:
        await services.db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--commands", type=lambda v: v.split(","), default=list(TEXTS))
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1,
                        help="senders at once, each sending its next message when the last was answered")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="run each command once under cProfile and print the top N functions")
    parser.add_argument("--profile-file", default="", metavar="PREFIX",
                        help="with --profile, also write each command's profile to PREFIX.<command>")
    asyncio.run(run(parser.parse_args()))
