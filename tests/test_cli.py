"""The ``bangdai`` command as operators run it, on a real SQLite file. Most commands run in process
(``bot.cli.main`` with the arguments and two streams, as the console script calls it: the same parsing,
the same exit codes, the same output); ``serve`` and ``chat`` run as real processes on a real port, and
what a fresh process imports is checked in one."""

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import sys
import time
import urllib.request
from dataclasses import astuple, dataclass
from pathlib import Path

import pytest

from bot.cli import main
from conftest import PAIRS_CSV, PG_URL, ROSTER_CSV, write

# These use their own SQLite file whatever the suite's database is, so the PostgreSQL pass of .ci/run
# would only repeat them.
pytestmark = pytest.mark.skipif(bool(PG_URL), reason="the CLI tests use their own SQLite file; run once")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cfg(tmp_path: Path, template_db: str) -> Path:
    """A config beside its database, named relatively (as operators write it), already migrated."""
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///cli.db"\n[server]\nport = {port}\n', encoding="utf-8")
    shutil.copy(template_db, tmp_path / "cli.db")
    return path


REPO = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    """No BANGDAI_ settings from the outside, and this checkout's code first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGDAI_")}
    env["PYTHONPATH"] = str(REPO)
    return env


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def bangdai(*args: str, cwd: Path | None = None) -> Ran:
    """``bangdai args`` in this process: no BANGDAI_ settings from the outside, run from ``cwd``."""
    out, err = io.StringIO(), io.StringIO()
    outside = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("BANGDAI_")}
    try:
        with contextlib.chdir(cwd or Path.cwd()):
            code = main(list(args), stdout=out, stderr=err)
    finally:
        os.environ.update(outside)
    return Ran(code, out.getvalue(), err.getvalue())


def process(*args: str, input: str | None = None, timeout: float = 60, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """``bangdai args`` as a real process, as operators start it."""
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          input=input, timeout=timeout, env=clean_env(), cwd=cwd)


def http(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_import_dry_run_then_real_then_again(cfg, tmp_path):
    roster = write(tmp_path, "r.csv", ROSTER_CSV + "坏行,123,,,,,\n")
    dry = bangdai("import", "roster", str(roster), "--dry-run", "--config", str(cfg))
    assert "试运行（未写入）：新增 6" in dry.stdout and "第 8 行" in dry.stdout and dry.returncode == 1
    real = bangdai("import", "roster", str(roster), "--config", str(cfg))
    assert "导入完成：新增 6" in real.stdout
    again = bangdai("import", "roster", str(roster), "--config", str(cfg))
    assert "新增 0，更新 0，未变 6" in again.stdout
    pairs = bangdai("import", "pairs", str(write(tmp_path, "p.csv", PAIRS_CSV)), "--config", str(cfg))
    assert "新增 2" in pairs.stdout and pairs.returncode == 0
    out = tmp_path / "台账.xlsx"
    exported = bangdai("export", str(out), "--config", str(cfg))
    assert out.exists() and "人员 6 行" in exported.stdout
    assert "13800001234" not in exported.stdout + exported.stderr


def test_cli_errors_are_plain(cfg, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n", encoding="utf-8")
    r = bangdai("import", "roster", "x.csv", "--config", str(bad))
    assert r.returncode == 2 and "配置错误" in r.stderr and "Traceback" not in r.stderr
    r = bangdai("import", "roster", str(tmp_path / "missing.csv"), "--config", str(cfg))
    assert r.returncode == 1 and "找不到文件" in r.stdout
    r = bangdai("export", "out.csv", "--config", str(cfg))
    assert r.returncode == 2 and ".xlsx" in r.stderr


def test_serve_demo_chat_and_clean_stop(cfg, tmp_path):
    port = int(cfg.read_text().split("port = ")[1].split()[0])
    env = clean_env()
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--demo", "--config", str(cfg)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = http(f"{base}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("serve did not come up")
        assert health["status"] in ("ok", "degraded") and health["database"]["ok"]
        reply = http(f"{base}/api/local/messages", {"user": "u1", "text": "绑定 张伟 1234"})
        assert "绑定成功" in reply["replies"][0]["text"]
        chat = process("chat", "--as", "u1", "--config", str(cfg), input="本周\n/quit\n")
        assert "本周帮带情况" in chat.stdout, chat.stdout + chat.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        log = proc.stdout.read()
        assert proc.returncode == 0, log
        assert "1234" not in log.replace("127.0.0.1", "")  # nothing typed with a phone digit leaks to logs
    finally:
        if proc.poll() is None:
            proc.kill()


def test_jobs_and_outbox_commands(cfg, tmp_path):
    bangdai("import", "roster", str(write(tmp_path, "r.csv", ROSTER_CSV)), "--config", str(cfg))
    bangdai("import", "pairs", str(write(tmp_path, "p.csv", PAIRS_CSV)), "--config", str(cfg))
    listed = bangdai("jobs", "list", "--config", str(cfg))
    assert listed.returncode == 0 and "weekly_reminder" in listed.stdout and "下次" in listed.stdout
    assert "（2026-W" in listed.stdout  # the period each next run is about, labelled as everywhere else
    dry = bangdai("jobs", "run", "weekly_reminder", "--at", "2026-11-19T16:00", "--dry-run", "--config", str(cfg))
    assert "试运行" in dry.stdout and "会新发 4 条，涉及 4 人" in dry.stdout, dry.stdout + dry.stderr
    assert "  李娜：" in dry.stdout and "  张伟：" in dry.stdout  # who would get what
    assert "排队 0" in bangdai("outbox", "--config", str(cfg)).stdout  # queued nothing
    past = bangdai("jobs", "run", "weekly_reminder", "--at", "2026-11-19T16:00", "--config", str(cfg))
    assert past.returncode == 2 and "不是当前周期" in past.stderr and "4 人" in past.stderr and "--force" in past.stderr
    assert "排队 0" in bangdai("outbox", "--config", str(cfg)).stdout
    from bot.clock import Clock
    from bot.calendar import WorkCalendar
    from scheduler.service import Schedule

    now = Clock().now()  # the CLI runs on the real clock
    planned = Schedule("last-working-day 17:00", "month", WorkCalendar()).planned(now.date())
    if planned is not None and now < planned:  # all month but its last working evening
        early = bangdai("jobs", "run", "monthly_ranking", "--config", str(cfg))
        assert early.returncode == 2 and "计划于" in early.stderr and "--force" in early.stderr, early.stderr
    run = bangdai("jobs", "run", "weekly_reminder", "--at", "2026-11-19T16:00", "--force", "--config", str(cfg))
    assert "weekly_reminder 2026-W47：新排队 4 条消息" in run.stdout, run.stdout + run.stderr  # not used up by the dry run
    again = bangdai("jobs", "run", "weekly_reminder", "--at", "2026-11-19 17:00", "--force", "--config", str(cfg))
    assert "新排队 0 条消息（该周期已运行过" in again.stdout
    unknown = bangdai("jobs", "run", "nosuch", "--config", str(cfg))
    assert unknown.returncode == 2 and "weekly_reminder" in unknown.stderr and "Traceback" not in unknown.stderr
    bad_at = bangdai("jobs", "run", "weekly_reminder", "--at", "下周四", "--config", str(cfg))
    assert bad_at.returncode == 2 and "2026-11-19T16:00" in bad_at.stderr
    outbox = bangdai("outbox", "--failed", "--config", str(cfg))
    assert "排队 4" in outbox.stdout and outbox.returncode == 0


def test_staff_commands_from_the_cli(cfg, tmp_path):
    bangdai("import", "roster", str(write(tmp_path, "r.csv", ROSTER_CSV)), "--config", str(cfg))
    bangdai("import", "pairs", str(write(tmp_path, "p.csv", PAIRS_CSV)), "--config", str(cfg))
    done = bangdai("do", "--as", "陈静", "季评", "李娜", "较好", "帮带扎实", "--config", str(cfg))
    assert "季评：张伟、王芳 — 李娜 — 较好" in done.stdout, done.stdout + done.stderr
    refused = bangdai("do", "--as", "张伟", "季评", "李娜", "好", "--config", str(cfg))
    assert "季评的评议由组工干部进行" in refused.stdout
    refused = bangdai("do", "--as", "李娜", "季评", "--config", str(cfg))
    assert "仅限导师、管理员、组工干部使用" in refused.stdout
    unknown = bangdai("do", "--as", "王五", "季评", "--config", str(cfg))
    assert unknown.returncode == 2 and "花名册中没有“王五”" in unknown.stderr


def test_certificates_from_the_cli(cfg, tmp_path):
    bangdai("import", "roster", str(write(tmp_path, "r.csv", ROSTER_CSV)), "--config", str(cfg))
    bangdai("import", "pairs", str(write(tmp_path, "p.csv", PAIRS_CSV)), "--config", str(cfg))
    this_year = str(dt.date.today().year)
    unset = bangdai("certificates", this_year, "--config", str(cfg))
    assert unset.returncode == 2 and "[programme] county" in unset.stderr
    cfg.write_text(cfg.read_text(encoding="utf-8") + f'[programme]\ncounty = "常山县"\ncertificate_dir = "certs"\n',
                   encoding="utf-8")  # relative: beside the config file, not where the command runs
    bangdai("do", "--as", "陈静", "考核", "李娜", "优秀", "--config", str(cfg))
    made = bangdai("certificates", this_year, "--config", str(cfg))
    assert made.returncode == 0 and "王芳：" in made.stdout and "新颁发，已排队私信" in made.stdout, made.stderr
    assert (tmp_path / "certs" / this_year / f"优秀导师-{this_year}-王芳-2.pdf").read_bytes()[:4] == b"%PDF"


def test_the_cli_finds_its_database_from_any_directory_and_never_makes_an_empty_one(cfg, tmp_path):
    bangdai("import", "roster", str(write(tmp_path, "r.csv", ROSTER_CSV)), "--config", str(cfg))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = bangdai("do", "--as", "陈静", "统计", "--config", str(cfg), cwd=elsewhere)
    assert done.returncode == 0 and "花名册中没有" not in done.stderr, done.stdout + done.stderr
    assert list(elsewhere.iterdir()) == []
    # No config here: the default bangdai.db of this directory does not exist, and is not created.
    lost = bangdai("do", "--as", "陈静", "统计", cwd=elsewhere)
    assert lost.returncode == 2 and str(elsewhere / "bangdai.db") in lost.stderr and "db upgrade" in lost.stderr
    assert "Traceback" not in lost.stderr and list(elsewhere.iterdir()) == []
    for args in (("outbox",), ("export", "x.xlsx"), ("import", "roster", "r.csv")):
        assert bangdai(*args, cwd=elsewhere).returncode == 2, args
    assert list(elsewhere.iterdir()) == []
    # db upgrade creates it (and its folder), beside the config that names it.
    fresh = elsewhere / "fresh.toml"
    fresh.write_text('[database]\nurl = "sqlite+aiosqlite:///data/bangdai.db"\n', encoding="utf-8")
    assert bangdai("db", "upgrade", "--config", str(fresh), cwd=tmp_path).returncode == 0
    assert (elsewhere / "data" / "bangdai.db").exists()


def start_serve(cfg: Path, cwd: Path) -> tuple[subprocess.Popen, str]:
    port = int(cfg.read_text().split("port = ")[1].split()[0])
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--demo", "--config", str(cfg)],
                            cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            http(f"{base}/healthz")
            return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("serve did not come up: " + (proc.stdout.read() if proc.stdout else ""))


def stop_serve(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def say(base: str, user: str, text: str) -> str:
    return "\n".join(r["text"] for r in http(f"{base}/api/local/messages", {"user": user, "text": text})["replies"])


def test_the_demo_has_every_programme_and_a_restart_keeps_what_changed(tmp_path):
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///demo.db"\n[server]\nport = {port}\n'
                   '[outbox]\npoll_seconds = 0.2\n', encoding="utf-8")
    proc, base = start_serve(cfg, tmp_path)
    try:
        assert "绑定成功" in say(base, "u1", "绑定 张伟 1234")
        week = say(base, "u1", "本周")
        assert "与徒弟 李娜" in week and "与徒弟 赵强" in week  # a mentor with two mentees, one a 导师团
        assert "与导师 张伟、王芳" in say(base, "u2", "本周")
        visits = say(base, "u5", "走访")
        assert "✅ 示例镇人民政府" in visits and "破山行动专班" in visits  # 三联 links and a visit
        squad = say(base, "u6", "编组")
        assert "招商一组" in squad and "李忠兴" in squad and "承诺" in squad
        assert "协调万洋众创项目土地指标" in say(base, "u6", "实绩")  # a 常青藤 实绩
        assert "招商一组" in say(base, "u6", "排行")
        assert "#1" in say(base, "u5", "信箱 待办")  # a 三联信箱 letter
        assert "已记录" in say(base, "u1", "记录 李娜 面谈 重启前的面谈")
    finally:
        stop_serve(proc)
    proc, base = start_serve(cfg, tmp_path)
    try:
        # Still bound, the contact still there, the demo not loaded twice.
        assert "重启前的面谈" in say(base, "u1", "本周")
        assert "统计" in say(base, "u5", "帮助") and "在册结对 2 对" in say(base, "u5", "统计")
        # bangdai chat shows a pushed message while it waits for input: 赵建国's letter is answered.
        chat = subprocess.Popen([sys.executable, "-m", "bot.cli", "chat", "--as", "u7", "--config", str(cfg)],
                                env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            assert "以本地用户 u7 身份连接" in chat.stdout.readline()
            assert "已答复" in say(base, "u5", "答复 #1 已转人社局，本周内回复")
            lines: list[str] = []
            reader = threading.Thread(target=lambda: lines.extend(iter(chat.stdout.readline, "")), daemon=True)
            reader.start()
            for _ in range(100):
                if any("已转人社局" in line for line in lines):
                    break
                time.sleep(0.1)
            assert any("[通知" in line for line in lines) and any("已转人社局" in line for line in lines), lines
        finally:
            chat.stdin.write("/quit\n")
            chat.stdin.close()
            chat.wait(timeout=10)
    finally:
        stop_serve(proc)


def test_case_files_are_copied_out_from_the_cli(cfg, tmp_path):
    with cfg.open("a", encoding="utf-8") as out:
        out.write(f'[sanling]\nfiles_dir = "{tmp_path}/case_files"\n')
    bangdai("import", "roster", str(write(tmp_path, "r.csv", ROSTER_CSV)), "--config", str(cfg))
    opened = bangdai("do", "--as", "李娜", "预审", "借用顶岗", "--config", str(cfg))
    assert "已开始预审 **#1" in opened.stdout, opened.stdout + opened.stderr
    copied = bangdai("cases", "files", "1", str(tmp_path / "out"), "--config", str(cfg))
    assert copied.returncode == 0 and "预审 #1：已复制 0 个文件" in copied.stdout, copied.stdout + copied.stderr
    missing = bangdai("cases", "files", "9", str(tmp_path / "out"), "--config", str(cfg))
    assert missing.returncode == 1 and "没有预审 #9" in missing.stderr


# What a command loads is what staff wait for at every run (about 0.3 s of CPU for the database layer
# alone, more for Alembic, the handlers and the platform SDKs). Measured in docs/benchmarks.md; here
# only *what* is imported, which does not depend on how busy the machine is.
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "aiohttp", "openpyxl", "dingtalk_stream", "wechatpy",
         "apscheduler", "prometheus_client", "jinja2", "asyncpg", "handlers", "storage")


def loaded_by(*argv: str, cwd: Path) -> set[str]:
    """The top-level packages among HEAVY that ``bangdai argv`` has imported when it finishes."""
    code = ("import sys\nfrom bot.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('LOADED:', *sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                          env=clean_env(), cwd=cwd)
    assert "LOADED:" in done.stdout, done.stderr
    return set(done.stdout.rpartition("LOADED:")[2].split())


def test_help_loads_no_library(tmp_path):
    assert loaded_by("--help", cwd=tmp_path) == set()
    assert loaded_by("outbox", "--help", cwd=tmp_path) == set()


def test_jobs_list_needs_no_database(tmp_path):
    """The schedules come from the config and the calendar; the database may not even be reachable."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "sqlite+aiosqlite:////nonexistent/dir/bangdai.db"\n', encoding="utf-8")
    listed = bangdai("jobs", "list", "--config", str(cfg))
    assert listed.returncode == 0 and "weekly_reminder" in listed.stdout, listed.stderr
    assert not (tmp_path / "bangdai.db").exists()
    loaded = loaded_by("jobs", "list", "--config", str(cfg), cwd=tmp_path)
    assert not loaded & {"alembic", "aiohttp", "openpyxl", "dingtalk_stream", "wechatpy", "asyncpg"}


def test_outbox_on_an_up_to_date_database_loads_neither_alembic_nor_the_handlers(cfg, tmp_path):
    assert bangdai("db", "upgrade", "--config", str(cfg)).returncode == 0
    loaded = loaded_by("outbox", "--config", str(cfg), cwd=tmp_path)
    assert "sqlalchemy" in loaded  # it did read the database
    assert not loaded & {"alembic", "handlers", "aiohttp", "openpyxl", "dingtalk_stream", "wechatpy", "jinja2"}
    # ...and a database that is behind is still brought up to date first, as before
    fresh = tmp_path / "fresh.toml"
    fresh.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/fresh.db"\n', encoding="utf-8")
    refused = bangdai("outbox", "--config", str(fresh))  # a missing database is not made here (issue 14)
    assert refused.returncode == 2 and str(tmp_path / "fresh.db") in refused.stderr
    assert bangdai("db", "upgrade", "--config", str(fresh)).returncode == 0
    shown = bangdai("outbox", "--config", str(fresh))
    assert shown.returncode == 0 and "排队 0" in shown.stdout, shown.stderr


def test_in_process_the_exit_code_and_the_output_come_back_as_from_a_process(tmp_path):
    """``main`` returns what the process would exit with, and prints only to the streams it is given."""
    shown = bangdai("--help")
    assert shown.returncode == 0 and "import" in shown.stdout and shown.stderr == ""
    wrong = bangdai("import", "nosuch", "x.csv")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr and wrong.stdout == ""
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n", encoding="utf-8")
    ran = process("import", "roster", "x.csv", "--config", str(bad))
    assert (ran.returncode, ran.stdout, ran.stderr) == astuple(bangdai("import", "roster", "x.csv", "--config", str(bad)))
