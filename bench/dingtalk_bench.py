"""DingTalk channel benchmark — run by hand, not a test.

    python bench/dingtalk_bench.py [--messages 3000] [--concurrency 50] [--rates 100,20] [--seconds 10]
                                   [--database-url URL] [--hog] [--no-channel-row] [--profile-serve FILE]

Side by side in one run, each bot in its own process against the loopback fake DingTalk
(``tests/fakes/dingtalk.py``) running in this process, all through the real ``dingtalk-stream`` SDK:

- **echo**: a bare bot on the SDK's own client and connection loop; its handler acks and POSTs the
  text back to the sessionWebhook with aiohttp. No Bangdai, no database: the ceiling.
- **Bangdai's channel alone**: ``DingTalkChannel`` answering every message without the gateway (no
  database work): what the channel adds to the bare SDK.
- **Bangdai** ``bangdai serve`` with ``[dingtalk]`` enabled (SQLite, the embedded default, unless
  ``--database-url``), for ``本周`` (reads) and ``记录`` (a write), from 100 mentees.

Two loads per command: *saturated* (``--concurrency`` users, each sending its next message when the
reply to the last one came: commands per second) and *paced* (an open loop at each of ``--rates`` messages
per second for ``--seconds``: latency). Latency is measured at the fake, from the frame leaving it to the
reply reaching the sessionWebhook; "ack" is from the frame leaving to its ack arriving.

On PostgreSQL a last row runs ``记录`` against two ``serve`` processes on the one database (DingTalk
picks one of the two connections for each message): the scale-out throughput beside the one-process row.

The truth on a shared machine: each row prints the load average before it and the load (and the cores
busy) while it ran; "bot CPU ms/command" is the bot processes' own user + system time, steady when the
wall clock is not, and "CPU × echo" compares it with the echo bot of the same run. ``--hog`` keeps one
core busy with an unrelated process for the whole run (``bench/hog.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.dingtalk import FakeDingTalk, Pushed  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from hog import Hog, LoadSampler, machine_line  # noqa: E402

MENTEES = 100
# ``bangdai`` under cProfile timed by CPU, not the wall clock: on a shared machine a wall-clock profile
# charges the time the process waited for a core to whatever call it was preempted in.
PROFILED = """import cProfile, runpy, sys, time
out = sys.argv[1]
sys.argv = ["bangdai", *sys.argv[2:]]
profile = cProfile.Profile(time.process_time)
profile.enable()
try:
    runpy.run_module("bot.cli", run_name="__main__")
except SystemExit:
    pass
finally:
    profile.disable()
    profile.dump_stats(out)
"""


# --- the echo bot (runs in its own process: ``--echo-bot API_BASE CLIENT_ID SECRET``) ---------------

async def echo_bot(api_base: str, client_id: str, secret: str) -> None:
    import aiohttp
    import dingtalk_stream
    from dingtalk_stream import AckMessage, ChatbotMessage

    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    tasks: set[asyncio.Task] = set()

    async def reply(msg: ChatbotMessage) -> None:
        body = {"msgtype": "markdown", "markdown": {"title": "echo", "text": msg.text.content}}
        async with http.post(msg.session_webhook, json=body) as resp:
            await resp.read()

    class Echo(dingtalk_stream.CallbackHandler):
        async def process(self, callback):
            task = asyncio.create_task(reply(ChatbotMessage.from_dict(callback.data)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return AckMessage.STATUS_OK, "OK"

    # The SDK's documented way to point it elsewhere (read by class name in open_connection()).
    dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API = api_base + "/v1.0/gateway/connections/open"
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(client_id, secret))
    client.register_callback_handler(ChatbotMessage.TOPIC, Echo())
    await client.start()


# --- Bangdai's channel alone (``--channel-bot API_BASE CLIENT_ID SECRET DB_URL``) --------------------

async def channel_bot(api_base: str, client_id: str, secret: str, url: str) -> None:
    """DingTalkChannel with a handler that answers without the gateway: what the channel itself costs."""
    import signal

    from bot.app import build_services
    from bot.channels.dingtalk import DingTalkChannel
    from bot.config import Config, Secret
    from bot.inbound import Reply

    config = Config()
    config.database.url = url
    ding = config.dingtalk
    ding.enabled, ding.client_id, ding.client_secret, ding.api_base = True, client_id, Secret(secret), api_base

    class Echo:  # the channel alone: every message answered with its own text, nothing remembered
        async def handle(self, msg, as_person=None, outcome=None):
            return [Reply(msg.text)]

        async def answered(self, msg):
            return None

        async def remember(self, msg, replies):
            return replies

    channel = DingTalkChannel(build_services(config), Echo())
    await channel.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await channel.stop()


# --- driving a bot ---------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def latency(fake: FakeDingTalk, pushed: Pushed) -> float:
    return fake.replies_to(pushed)[0].at - pushed.sent_at


async def saturated(fake: FakeDingTalk, users: list[str], text, total: int, concurrency: int) -> dict:
    counter = itertools.count()
    lat: list[float] = []

    async def user_loop(user: str) -> None:
        while (i := next(counter)) < total:
            pushed = await fake.push_text(user, text(i))
            await fake.wait_reply(pushed, timeout=120)
            lat.append(latency(fake, pushed))

    start = time.monotonic()
    await asyncio.gather(*(user_loop(users[k % len(users)]) for k in range(concurrency)))
    elapsed = time.monotonic() - start
    return {"rate": total / elapsed, "p50": pct(lat, 0.50), "p99": pct(lat, 0.99)}


async def paced(fake: FakeDingTalk, users: list[str], text, rate: float, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    n = int(rate * seconds)
    before = len(fake.sent)
    pushed: list[Pushed] = []
    start = loop.time()
    for i in range(n):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pushed.append(await fake.push_text(users[i % len(users)], text(i)))
    offered = n / (loop.time() - start)
    await fake.wait_until(lambda: len(fake.sent) >= before + n, timeout=300, what="all replies")
    lat = [latency(fake, p) for p in pushed]
    acks = [p.acked_at - p.sent_at for p in pushed if p.acked_at]
    return {"offered": offered, "p50": pct(lat, 0.50), "p99": pct(lat, 0.99), "max": max(lat) * 1000,
            "ack_p99": pct(acks, 0.99), "redelivered": sum(p.deliveries > 1 for p in pushed)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the bot's process has used (all its threads): robust on a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(name: str, fake: FakeDingTalk, users: list[str], text, args, pids: list[int]) -> dict:
    # Warm-up: every user once or twice, so the rows measure the steady state (a person's first message
    # after start-up, or after a change to the directory, also loads who they are and their pairs).
    await saturated(fake, users, text, 2 * len(users), len(users))
    gc.collect()
    gc.freeze()  # the fake's own records of earlier rows stay out of this process's collections
    sampler = LoadSampler()  # the machine's load before this row, and while it runs
    cpu = sum(cpu_seconds(pid) for pid in pids)
    sat = await saturated(fake, users, text, args.messages, args.concurrency)
    sat["cpu_ms"] = (sum(cpu_seconds(pid) for pid in pids) - cpu) / args.messages * 1000
    row = {"name": name, **{f"sat_{k}": v for k, v in sat.items()}, "paced": {}, "load_before": sampler.before}
    for rate in args.rates:
        await asyncio.sleep(2)  # let any backlog drain
        row["paced"][rate] = await paced(fake, users, text, rate, args.seconds)
    row["load_during"] = sampler.during()
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def distinct(template: str):
    """Texts that are never the same twice in a run (warm-up, saturated and paced phases alike): 记录
    answers a repeat of the same contact within minutes with "只记一次" and writes nothing, which is
    right for a person's double tap and wrong for a benchmark of the write."""
    seq = itertools.count()
    return lambda _i: template.format(next(seq))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_process(cmd: list[str], fake: FakeDingTalk, cwd: str, log: Path, connections: int = 1
                        ) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGDAI_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    await fake.wait_until(lambda: fake.active >= connections, 60, f"{connections} connection(s)")
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # the SDK's own loop in the echo bot ignores SIGTERM's cancel
        proc.kill()
        proc.wait()


async def prepare_database(url: str) -> None:
    from bot.clock import Clock
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster
    from storage.db import Database
    from storage.migrate import upgrade_async

    await upgrade_async(url)
    tmp = Path(tempfile.mkdtemp())
    roster = ["姓名,手机,单位,职务,角色,钉钉ID"]
    pairs = ["徒弟,导师,牵头导师,开始日期,协议签订日期"]
    given = "甲乙丙丁戊己庚辛壬癸"
    for i in range(MENTEES):
        mentee, mentor = f"徒{given[i // 10]}{given[i % 10]}", f"师{given[i // 10]}{given[i % 10]}"
        roster += [f"{mentee},139{i:08d},单位{i},科员,徒弟,dt_e{i:03d}", f"{mentor},138{i:08d},单位{i},原局长,导师,dt_m{i:03d}"]
        pairs.append(f"{mentee},{mentor},,2026-03-01,")
    (tmp / "r.csv").write_text("\n".join(roster) + "\n", encoding="utf-8")
    (tmp / "p.csv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    db = Database(url)
    try:
        now = Clock().now()
        for fn, name in ((import_roster, "r.csv"), (import_pairs, "p.csv")):
            report = await fn(db, tmp / name, now=now)
            assert report.ok, report.lines()
    finally:
        await db.close()


def serve_config(work: Path, name: str, url: str, fake: FakeDingTalk) -> Path:
    cfg = work / f"{name}.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n[server]\nport = {free_port()}\n[local]\nenabled = false\n'
                   f'[schedule]\nenabled = false\n[dingtalk]\nenabled = true\nclient_id = "{fake.client_id}"\n'
                   f'client_secret = "{fake.client_secret}"\napi_base = "{fake.api_base}"\n', encoding="utf-8")
    return cfg


async def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="dingtalk-bench-"))
    users = [f"dt_e{i:03d}" for i in range(MENTEES)]
    rows = []
    print(machine_line())
    hog = Hog() if args.hog else None
    if hog:
        hog.start()
    try:
        await run_rows(args, work, users, rows)
    finally:
        if hog:
            hog.stop()
    report(args, rows, hog is not None)


async def run_rows(args, work: Path, users: list[str], rows: list[dict]) -> None:
    fake = await FakeDingTalk(ack_timeout=60).start()
    proc = await start_process([sys.executable, __file__, "--echo-bot", fake.api_base, fake.client_id,
                                fake.client_secret], fake, str(work), work / "echo.log")
    try:
        rows.append(await measure("echo (SDK only)", fake, users, lambda i: f"本周 {i}", args, [proc.pid]))
    finally:
        stop_process(proc)
        await fake.close()

    url = args.database_url or f"sqlite+aiosqlite:///{work}/bench.db"
    await prepare_database(url)

    if not args.no_channel_row:
        fake = await FakeDingTalk(ack_timeout=60).start()
        proc = await start_process([sys.executable, __file__, "--channel-bot", fake.api_base, fake.client_id,
                                    fake.client_secret, url], fake, str(work), work / "channel.log")
        try:
            rows.append(await measure("Bangdai channel, no gateway", fake, users, lambda i: f"本周 {i}", args, [proc.pid]))
        finally:
            stop_process(proc)
            await fake.close()
    fake = await FakeDingTalk(ack_timeout=60).start()
    cfg = serve_config(work, "serve", url, fake)
    serve = ["-c", PROFILED, args.profile_serve] if args.profile_serve else ["-m", "bot.cli"]
    proc = await start_process([sys.executable, *serve, "serve", "--config", str(cfg)], fake, str(work),
                               work / "serve.log")
    try:
        rows.append(await measure("Bangdai 本周", fake, users, lambda i: "本周", args, [proc.pid]))
        rows.append(await measure("Bangdai 记录", fake, users, distinct("记录 面谈 第{}次交流"), args, [proc.pid]))
        wrong = [s.text for s in fake.sent if "已记录" not in s.text and "本周帮带情况" not in s.text]
        assert not wrong, wrong[:3]
    finally:
        stop_process(proc)
        await fake.close()

    if url.startswith("postgresql"):  # several processes on one database: PostgreSQL only
        fake = await FakeDingTalk(ack_timeout=60).start()
        procs = []
        try:
            for n in (1, 2):
                cfg = serve_config(work, f"serve{n}", url, fake)
                procs.append(await start_process([sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)],
                                                 fake, str(work), work / f"serve{n}.log", connections=n))
            rows.append(await measure("Bangdai 记录, 2 processes", fake, users, distinct("记录 电话 第{}次沟通"),
                                      args, [p.pid for p in procs]))
        finally:
            for p in procs:
                stop_process(p)
            await fake.close()


def report(args, rows: list[dict], hog: bool) -> None:
    echo = rows[0]
    print()
    print(f"Saturated: {args.concurrency} users, each sending its next message when the last was answered, "
          f"{args.messages} messages." + (" One core kept busy by an unrelated process (--hog)." if hog else "") + "\n")
    print("| bot | commands/s | × echo | bot CPU ms/command | CPU × echo | p50 ms | p99 ms | load before | during |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['sat_rate']:.0f} | {r['sat_rate'] / echo['sat_rate']:.2f} | {r['sat_cpu_ms']:.2f} "
              f"| {r['sat_cpu_ms'] / echo['sat_cpu_ms']:.1f} | {r['sat_p50']:.1f} | {r['sat_p99']:.1f} "
              f"| {r['load_before']} | {r['load_during']} |")
    print(f"\nPaced: an open loop at a fixed rate for {args.seconds:g} s; latency from the frame leaving the fake "
          "to the reply reaching the sessionWebhook.\n")
    print("| bot | offered/s | p50 ms | p99 ms | max ms | ack p99 ms | pushed again |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        for rate, p in r["paced"].items():
            print(f"| {r['name']} | {rate:g} | {p['p50']:.1f} | {p['p99']:.1f} | {p['max']:.1f} | {p['ack_p99']:.1f} "
                  f"| {p['redelivered']} |")
    url = args.database_url or "sqlite"
    print(f"\nPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, database {url.split(':')[0]}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--echo-bot":
        asyncio.run(echo_bot(*sys.argv[2:]))
        sys.exit(0)
    if len(sys.argv) == 6 and sys.argv[1] == "--channel-bot":
        asyncio.run(channel_bot(*sys.argv[2:]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")], default=[100.0, 20.0],
                        help="paced rates, comma-separated (default 100,20)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--hog", action="store_true", help="keep one core busy with an unrelated process meanwhile")
    parser.add_argument("--no-channel-row", action="store_true", help="skip the channel-without-gateway row")
    parser.add_argument("--profile-serve", default="", metavar="FILE",
                        help="run the one-process `serve` under cProfile and write its profile to FILE "
                             "(read it with python -m pstats; the CPU figures of that run are cProfile's)")
    asyncio.run(main(parser.parse_args()))
