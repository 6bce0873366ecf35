"""Several ``bangdai serve`` processes on one PostgreSQL, as README's "Running it for real" sets them up:
real processes, the real dingtalk-stream SDK against the loopback fake DingTalk in this process.

- the same DingTalk message pushed to two processes is handled once and answered once;
- SIGKILL of the scheduler's leader hands the jobs to the other process within 30 s, and no period runs twice;
- a broadcast that both processes dispatch reaches each person once;
- WeCom's per-member limit and DingTalk's monthly call count are one figure for all processes.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import delete, func
from sqlmodel import select

from bot.clock import Clock
from bot.inbound import Address
from conftest import PG_URL, write
from fakes.dingtalk import FakeDingTalk
from handlers.sheets.imports import import_pairs
from handlers.sheets.roster import import_roster
from storage.db import Database
from storage.models import ContactLog, JobRun, OutboxMessage, ProcessedMessage

REPO = Path(__file__).resolve().parent.parent

needs_postgresql = pytest.mark.skipif(not PG_URL, reason="several serve processes share one PostgreSQL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """One ``bangdai serve`` process with its own port and log."""

    def __init__(self, tmp_path: Path, name: str, db_url: str, fake: FakeDingTalk | None, extra: str = "") -> None:
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        cfg = tmp_path / f"{name}.toml"
        text = f'[database]\nurl = "{db_url}"\n[server]\nport = {self.port}\n[local]\nenabled = false\n'
        if fake is not None:
            text += (f'[dingtalk]\nenabled = true\nclient_id = "{fake.client_id}"\n'
                     f'client_secret = "{fake.client_secret}"\napi_base = "{fake.api_base}"\n'
                     "reconnect_base_seconds = 0.1\nreconnect_max_seconds = 1.0\n")
        cfg.write_text(text + extra, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANGDAI_")}
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)], cwd=tmp_path,
                                     env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as resp:
                return json.loads(resp.read())
        except Exception:
            return None

    async def wait_health(self, predicate, timeout: float = 60.0, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()[-2000:]}")
            body = await asyncio.to_thread(self.health)
            if body is not None and predicate(body):
                return body
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def processes():
    started: list[Serve] = []
    yield started
    for p in started:
        p.stop()


async def count(db_url: str, model, *where) -> int:
    db = Database(db_url)
    try:
        async with db.transaction() as s:
            return (await s.exec(select(func.count()).select_from(model).where(*where))).one()
    finally:
        await db.close()


async def load(db_url: str, tmp_path: Path, roster: str, pairs: str | None = None) -> None:
    db = Database(db_url)
    try:
        now = Clock().now()
        report = await import_roster(db, write(tmp_path, "roster.csv", roster), now=now)
        assert report.ok, report.lines()
        if pairs:
            report = await import_pairs(db, write(tmp_path, "pairs.csv", pairs), now=now)
            assert report.ok, report.lines()
    finally:
        await db.close()


# --- one message, two processes ------------------------------------------------------------------------

ROSTER = """\
姓名,手机,单位,职务,角色,钉钉ID
张伟,13800001234,县委组织部,原副部长,导师,dt_m1
李娜,13900003456,华埠镇,镇长,徒弟,dt_e1
"""
PAIRS = """\
徒弟,导师,牵头导师,开始日期,协议签订日期
李娜,张伟,,2026-03-01,
"""


@needs_postgresql
async def test_the_same_message_on_two_processes_is_handled_and_answered_once(db_url, tmp_path, processes):
    await load(db_url, tmp_path, ROSTER, PAIRS)
    fake = await FakeDingTalk(ack_timeout=60).start()
    try:
        processes += [Serve(tmp_path, "a", db_url, fake), Serve(tmp_path, "b", db_url, fake)]
        await fake.wait_until(lambda: len(fake.connection_numbers()) == 2, 60, "both processes connected")
        first, second = fake.connection_numbers()

        # Pushed to one process and, at once, again to the other (DingTalk re-pushes when an ack is late,
        # to any connection of the app): both handle it side by side.
        pushed = await fake.push_text("dt_e1", "记录 面谈 讨论招商项目推进方法", to=first)
        await fake.redeliver(pushed, to=second)
        replies = await fake.wait_reply(pushed, timeout=30)
        # A copy that came 40 s later, to the other process than the one that answered.
        late = await fake.push_text("dt_e1", "记录 电话 了解近况", to=first, created_ago=40)
        await fake.wait_reply(late, timeout=30)
        await fake.redeliver(late, to=second)
        await fake.wait_until(lambda: fake.pushed[late.msg_id].acks >= 2 and pushed.acks >= 2, 30, "every copy acked")
        await asyncio.sleep(2)  # room for a second answer, if one were coming

        assert len(fake.replies_to(pushed)) == 1 and "已记录" in replies[0].text, fake.replies_to(pushed)
        assert len(fake.replies_to(late)) == 1
        assert await count(db_url, ContactLog) == 2
        assert await count(db_url, ProcessedMessage) == 2
    finally:
        for p in processes:
            p.stop()
        await fake.close()


# --- the scheduler's leader dies ------------------------------------------------------------------------

EVERY_PERIOD = "".join(f'{job} = "* * * * *"\n' for job in (
    "weekly_reminder", "weekly_digest", "monthly_visit_prompt", "mailbox_overdue", "quarterly_summary",
    "monthly_ranking", "purge_processed_messages"))


@needs_postgresql
async def test_sigkill_of_the_leader_hands_the_jobs_over_within_30_s_and_no_period_runs_twice(
        db_url, tmp_path, processes):
    extra = "[schedule]\n" + EVERY_PERIOD  # every job due in every period: the leader's catch-up runs them
    a = Serve(tmp_path, "a", db_url, None, extra)
    processes.append(a)
    await a.wait_health(lambda b: b.get("scheduler", {}).get("leader"), what="a leading")
    b = Serve(tmp_path, "b", db_url, None, extra)
    processes.append(b)
    await b.wait_health(lambda body: "scheduler" in body, what="b running")
    assert b.health()["scheduler"]["leader"] is False  # one leader
    await asyncio.sleep(3)  # a's catch-up has finished by now (it runs no job twice in any case)
    db = Database(db_url)
    try:
        async with db.transaction() as s:
            runs = {(r.job, r.period) for r in (await s.exec(select(JobRun))).all()}
        assert runs, "the leader ran its catch-up"
        # One period's run had not happened yet when the leader died:
        missed = sorted(runs)[0]
        async with db.transaction() as s:
            await s.exec(delete(JobRun).where(JobRun.job == missed[0], JobRun.period == missed[1]))
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        killed = time.monotonic()
        await b.wait_health(lambda body: body["scheduler"]["leader"], timeout=40, what="b leading")
        took = time.monotonic() - killed
        assert took < 30, f"the other process led only after {took:.1f} s"
        await asyncio.sleep(2)
        async with db.transaction() as s:
            after = list((await s.exec(select(JobRun))).all())
    finally:
        await db.close()
    pairs = collections.Counter((r.job, r.period) for r in after)
    assert set(pairs) == runs and max(pairs.values()) == 1  # the missed one run again, nothing else
    rerun = [r for r in after if (r.job, r.period) == missed]
    assert rerun[0].trigger == "catch-up"
    assert "Traceback" not in b.log.read_text()


# --- a broadcast dispatched by two processes ---------------------------------------------------------------

SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张"
GIVEN = "忠建国明华平军文志永"


def cadres(n: int) -> str:
    lines = ["姓名,单位,职务,角色,钉钉ID", "陈静,县委组织部,干部科科长,组工干部,dt_s1"]
    names = [s + a + b for s in SURNAMES for a in GIVEN for b in GIVEN][:n]
    lines += [f"{name},县服务业办,原主任,退职干部,dt_r{i}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


@needs_postgresql
async def test_a_broadcast_dispatched_by_two_processes_reaches_each_person_once(db_url, tmp_path, processes):
    people = 450
    await load(db_url, tmp_path, cadres(people))
    fake = await FakeDingTalk(ack_timeout=60).start()
    try:
        # Slow enough that one process's claim (up to 200 rows) is still being sent when the other looks.
        extra = "rate_per_second = 4\n[schedule]\nenabled = false\n"
        processes += [Serve(tmp_path, "a", db_url, fake, extra), Serve(tmp_path, "b", db_url, fake, extra)]
        await fake.wait_until(lambda: len(fake.connection_numbers()) == 2, 60, "both processes connected")
        cfg = tmp_path / "cli.toml"
        cfg.write_text(f'[database]\nurl = "{db_url}"\n[dingtalk]\nenabled = true\n[local]\nenabled = false\n',
                       encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANGDAI_")}
        env["PYTHONPATH"] = str(REPO)
        done = subprocess.run([sys.executable, "-m", "bot.cli", "broadcast", "常青藤", "“常青藤”行动计划启动，欢迎报名集结",
                               "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

        def delivered() -> collections.Counter:
            return collections.Counter(u for call in fake.batch_calls if call.status == 200 for u in call.users)

        await fake.wait_until(lambda: len(delivered()) >= people, 120, "every retired cadre reached")
        await asyncio.sleep(2)  # room for a second copy, if one were coming
        got = delivered()
        assert len(got) == people and set(got.values()) == {1}, got.most_common(3)
        assert len({call.token for call in fake.batch_calls}) == 2  # both processes sent a share
        assert await count(db_url, OutboxMessage, OutboxMessage.status != "sent") == 0
    finally:
        for p in processes:
            p.stop()
        await fake.close()


# --- limits shared through the database --------------------------------------------------------------------

async def test_two_processes_share_one_per_member_wecom_limit(services, db_url, clock):
    """Two channels on two engines of one database, as two processes are: 25 a minute between them."""
    from bot.channels.limits import SharedWindow

    other = Database(db_url)
    try:
        rules = [(25, 60), (1000, 3600)]
        windows = [SharedWindow(services.db, "wecom-member", rules, clock), SharedWindow(other, "wecom-member", rules, clock)]
        results = await asyncio.gather(*(windows[i % 2].reserve([("lina", 1)]) for i in range(40)))
        assert sum(1 for [wait] in results if wait == 0.0) == 25
        assert all(0 < wait <= 60 for [wait] in results if wait)
        assert await windows[1].count("lina", 60) == 25
        assert (await windows[0].reserve([("zhaoqiang", 3)])) == [0.0]  # another member has his own window
        clock.advance(seconds=61)
        assert (await windows[1].reserve([("lina", 25)])) == [0.0]
        assert (await windows[0].reserve([("lina", 1)]))[0] > 0
    finally:
        await other.close()


async def test_two_processes_add_up_one_dingtalk_monthly_count(services, db_url, clock):
    from bot.channels.dingtalk_api import ApiUsage

    other = Database(db_url)
    try:
        a, b = ApiUsage(services.db, clock), ApiUsage(other, clock)
        await asyncio.gather(*(u.add(1) for u in [a, b] * 10))
        assert await a.load() == 20 and await b.load() == 20
    finally:
        await other.close()


async def test_the_wecom_window_counts_what_another_process_sent(services, db_url, clock):
    """The channel itself: what one process's channel sent counts against the other's."""
    from bot.app import Bangdai, build_services

    from fakes.wecom import FakeWeCom, point_at, serving

    async with serving(FakeWeCom(clock)) as fake:
        point_at(services.config, fake, {})
        second = build_services(services.config, clock, Database(db_url))
        try:
            a, b = Bangdai(services).channels["wecom"], Bangdai(second).channels["wecom"]
            await asyncio.gather(*(ch.deliver_batch([Address("wecom", user_id="lina")], f"第{i}条", "text", [f"k{i}"])
                                   for i, ch in enumerate([a, b] * 15)))
            assert len(fake.inbox("lina")) == 25 and fake.dropped == []
            await a.stop()
            await b.stop()
        finally:
            await second.db.close()
