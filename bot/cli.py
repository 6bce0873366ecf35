"""``bangdai``: serve, chat, db, import, export — and, as later issues add them, jobs, outbox, broadcast.

Every subcommand takes ``--config FILE`` after its name; ``BANGDAI_CONFIG`` names the file too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO

from .config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from .clock import Clock

# Staff run these commands by hand: each subcommand imports what it needs when it runs (the database
# layer, Alembic, the handlers, aiohttp, the platform SDKs), so `bangdai --help` loads none of them and
# `jobs list` no database at all (docs/benchmarks.md; tests/test_cli.py checks what --help imports).

log = logging.getLogger("bangdai")

COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {}


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", metavar="FILE", help="配置文件（也可用环境变量 BANGDAI_CONFIG）")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bangdai", description="帮带助手 Bangdai")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _common(sub.add_parser("serve", help="启动服务（HTTP、各渠道、定时任务、发件箱）"))
    serve.add_argument("--demo", action="store_true", help="载入虚构的演示花名册")

    chat = _common(sub.add_parser("chat", help="在终端里以本地用户身份聊天"))
    chat.add_argument("--as", dest="user", required=True, metavar="USER", help="本地用户 ID，如 u1")
    chat.add_argument("--url", help="服务地址，默认取配置中的 [server]")

    db = _common(sub.add_parser("db", help="数据库迁移"))
    db.add_argument("action", choices=["upgrade", "current"])

    imp = _common(sub.add_parser("import", help="导入花名册、结对表、三联名单或常青藤编组表（.xlsx/.csv）"))
    imp.add_argument("kind", choices=["roster", "pairs", "liaisons", "squads"])
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="只检查并报告（含将写入的前几行），不写入")
    imp.add_argument("--sheet", metavar="NAME", help="有几个工作表都像要导入的表时，指明导入哪一个")
    imp.add_argument("--full", action="store_true",
                     help="花名册是完整名单：停用不在其中的人（先用 --dry-run 看将停用谁）")

    exp = _common(sub.add_parser("export", help="导出 Excel（手机号已脱敏）"))
    exp.add_argument("file")

    do = _common(sub.add_parser("do", help="以花名册中某位组工干部的身份执行一条聊天命令（如 结对、季评、考核）"))
    do.add_argument("--as", dest="person", required=True, metavar="姓名", help="执行人姓名，如 陈静 或 陈静（县委组织部）")
    do.add_argument("text", nargs="+", help="聊天命令，如：季评 李娜 较好 帮带扎实")

    cases = _common(sub.add_parser("cases", help="预审：把某件预审收到的文件复制到一个目录，供审核"))
    cases.add_argument("action", choices=["files"])
    cases.add_argument("case", type=int, metavar="编号", help="预审编号，如 7")
    cases.add_argument("target", metavar="目录", help="复制到这个目录（不存在会新建）")

    jobs = _common(sub.add_parser("jobs", help="定时任务：列出下次运行时间，或手动运行一次"))
    jobs_sub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    _common(jobs_sub.add_parser("list", help="各任务的时间表和下次运行时间"))
    run = _common(jobs_sub.add_parser("run", help="为某一时刻所在的周期运行一次任务"))
    run.add_argument("name")
    run.add_argument("--at", metavar="DATETIME", help="如 2026-11-19T16:00 或 2026-11-19（默认现在，北京时间）")
    run.add_argument("--dry-run", action="store_true", help="只列出会发给谁、发什么，不排队、不占用该周期")
    run.add_argument("--force", action="store_true", help="运行当前以外的周期（会真的发给相关人员）")

    outbox = _common(sub.add_parser("outbox", help="发件箱：排队/已发/失败数量和失败原因"))
    outbox.add_argument("--failed", action="store_true", help="列出失败和无法送达的消息")
    outbox.add_argument("--retry", type=int, nargs="+", metavar="ID", help="把失败的消息重新排队")

    bc = _common(sub.add_parser("broadcast", help="常青藤招募广播（私信全部退职干部并发到常青藤群），或查看送达情况"))
    bc.add_argument("programme", metavar="常青藤|状态", help="广播对象“常青藤”，或“状态”查看最近的广播")
    bc.add_argument("text", nargs="?", default="", help="广播文案")
    bc.add_argument("--confirm", action="store_true", help="今天已发过相同文案时，确认再发一次")
    cert = _common(sub.add_parser("certificates", help="生成某年“优秀导师”证书（PDF）并私信告知导师"))
    cert.add_argument("year", type=int, help="年度，如 2026")
    cert.add_argument("--reissue", action="store_true", help="重新生成已颁发证书的 PDF（不再重复私信）")
    return parser


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one ``bangdai`` command and return its exit code. What it prints goes to ``stdout`` and
    ``stderr`` when given (run in process: tests, a wrapper), else to the process's own streams."""
    with contextlib.redirect_stdout(stdout or sys.stdout), contextlib.redirect_stderr(stderr or sys.stderr):
        try:
            return _main(argv)
        except SystemExit as exc:  # argparse: --help (0) or words it cannot read (2), already printed
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # The service logs what it does; one-shot commands print their result and log only problems.
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    handler = COMMANDS.get(args.command) or globals()[f"cmd_{args.command}"]
    try:
        return handler(args, config)
    except ConfigError as exc:  # found while starting, e.g. a channel's key that cannot work
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _prepare_database(config: Config, create: bool = False) -> None:
    """Migrate SQLite; only ``serve`` (and ``db upgrade``) may create the file, or a command run from the
    wrong directory would answer from a new, empty database."""
    from storage.db import is_sqlite, sqlite_file
    from storage.migrate import upgrade_sqlite

    if is_sqlite(config.database.url):
        path = sqlite_file(config.database.url)
        if path is not None and not path.exists():
            if not create:
                raise ConfigError(f"找不到数据库 {path}（[database] url；相对路径从配置文件所在目录算起，没有配置文件时从"
                                  f"当前目录）。请用 --config 指定配置文件，或先运行 bangdai db upgrade 建库")
            path.parent.mkdir(parents=True, exist_ok=True)
        upgrade_sqlite(config.database.url)


def cmd_db(args: argparse.Namespace, config: Config) -> int:
    from storage.migrate import current

    if args.action == "upgrade":
        _prepare_database(config, create=True)
        print("数据库已升级到最新版本")
    else:
        current(config.database.url)
    return 0


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    from handlers.sheets.squads import import_squads
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster
    from handlers.sheets.liaisons import import_liaisons
    from storage.db import Database

    from .clock import Clock

    from handlers.sheets.reader import SheetLimits

    if args.full and args.kind != "roster":
        print("--full 只用于花名册：bangdai import roster 花名册.xlsx --full", file=sys.stderr)
        return 2
    _prepare_database(config)
    fn = {"roster": import_roster, "pairs": import_pairs, "liaisons": import_liaisons, "squads": import_squads}[args.kind]
    limits = SheetLimits(max_rows=config.imports.max_rows, max_columns=config.imports.max_columns,
                         max_unpacked_mb=config.imports.max_unpacked_mb, empty_run=config.imports.empty_run)
    extra = {"full": True} if args.full else {}

    async def run() -> Any:
        db = Database(config.database.url)
        try:
            return await fn(db, args.file, now=Clock().now(), dry_run=args.dry_run, sheet_name=args.sheet,
                            limits=limits, **extra)
        finally:
            await db.close()

    report = asyncio.run(run())
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from handlers.sheets.export import export_workbook
    from storage.db import Database

    from .clock import Clock

    if not args.file.lower().endswith(".xlsx"):
        print("导出文件名需以 .xlsx 结尾，例如：bangdai export 帮带台账.xlsx", file=sys.stderr)
        return 2
    _prepare_database(config)

    async def run() -> dict[str, int]:
        db = Database(config.database.url)
        try:
            return await export_workbook(db, Path(args.file), Clock(), config)
        finally:
            await db.close()

    counts = asyncio.run(run())
    print(f"已导出 {args.file}：" + "，".join(f"{k} {v} 行" for k, v in counts.items()))
    return 0


def cmd_cases(args: argparse.Namespace, config: Config) -> int:
    from handlers.sanling.case_ops import copy_case_files
    from storage.db import Database
    from storage.files import FileStore

    from .clock import Clock

    _prepare_database(config)

    async def run() -> list[Path] | None:
        db = Database(config.database.url)
        try:
            async with db.transaction() as session:
                return await copy_case_files(session, FileStore(config.sanling.files_dir), args.case,
                                             Path(args.target), Clock().now())
        finally:
            await db.close()

    copied = asyncio.run(run())
    if copied is None:
        print(f"没有预审 #{args.case}", file=sys.stderr)
        return 1
    print(f"预审 #{args.case}：已复制 {len(copied)} 个文件到 {args.target}")
    for path in copied:
        print(f"  {path.name}")
    return 0


def parse_at(value: str | None, clock: "Clock") -> dt.datetime:
    """``--at``: an ISO date or date-time, read in Asia/Shanghai when it has no offset."""
    if not value:
        return clock.now()
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError:
        raise ValueError(f"--at 的时间“{value}”看不懂，请写成 2026-11-19T16:00 或 2026-11-19") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.tz)
    return moment


def cmd_jobs(args: argparse.Namespace, config: Config) -> int:
    from bot.calendar import calendar_for
    from scheduler.service import ScheduleError, load_schedules

    from .clock import Clock

    clock = Clock()
    calendar = calendar_for(config)
    if args.action == "list":  # the schedules and the calendar: no database needed
        from scheduler.registry import JOBS

        try:
            schedules = load_schedules(config, calendar)
        except ScheduleError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        now = clock.now()
        for name, schedule in schedules.items():
            nxt = schedule.next_at_or_after(now)
            when = f"{nxt:%Y-%m-%d %H:%M %a}（{JOBS[name].label(nxt.date())}）" if nxt else "—"
            print(f"{name:22} {schedule.spec:36} 下次 {when}  {JOBS[name].description}")
        for warning in calendar.warnings():
            print(f"警告：{warning}")
        return 0

    from scheduler.runner import UnknownJob, run_job

    from .app import build_services

    _prepare_database(config)

    async def run() -> int:
        services = build_services(config, clock)
        try:
            at = parse_at(args.at, clock)
            if args.dry_run:
                result = await run_job(services, args.name, at, trigger="manual", calendar=calendar, dry_run=True)
                print(f"{result.job} {result.period}（试运行，不排队、不占用该周期）：会新发 {len(result.would_send)} 条，"
                      f"涉及 {result.people} 人/群")
                await _print_recipients(services, result.would_send)
                return 0
            from scheduler.registry import JOBS

            from scheduler.runner import load_jobs

            load_jobs()
            if args.name in JOBS and JOBS[args.name].label(at.date()) != JOBS[args.name].label(clock.today()) and not args.force:
                preview = await run_job(services, args.name, at, trigger="manual", calendar=calendar, dry_run=True)
                print(f"{preview.job} {preview.period} 不是当前周期（当前是 {JOBS[args.name].label(clock.today())}）。"
                      f"真的运行会给 {preview.people} 人/群 发 {len(preview.would_send)} 条消息；"
                      f"先用 --dry-run 查看，确需补发请加 --force", file=sys.stderr)
                return 2
            if args.name in JOBS and not args.force:
                # Early in the current period: running now uses the period up, and the planned run
                # would then send nothing new — say so instead of doing it silently.
                planned = load_schedules(config, calendar)[args.name].planned(at.date())
                if planned is not None and at < planned:
                    print(f"{args.name} {JOBS[args.name].label(at.date())} 计划于 {planned:%Y-%m-%d %H:%M} 运行；"
                          f"现在运行会占用本周期，到时不再发送。先用 --dry-run 查看，确需提前运行请加 --force",
                          file=sys.stderr)
                    return 2
            result = await run_job(services, args.name, at, trigger="manual", calendar=calendar)
            note = "" if result.first_run else "（该周期已运行过，重复的消息不会再发）"
            print(f"{result.job} {result.period}：新排队 {result.queued} 条消息{note}")
            for warning in calendar.warnings():
                print(f"警告：{warning}")
            return 0
        except (UnknownJob, ValueError, ScheduleError) as exc:
            print(str(exc), file=sys.stderr)
            return 2
        finally:
            await services.db.close()

    return asyncio.run(run())


async def _print_recipients(services, messages) -> None:
    """A dry run's messages, one line each: to whom, and the first line of what."""
    from sqlmodel import col, select

    from storage.models import Person

    ids = [m.person_id for m in messages if m.person_id]
    async with services.db.transaction() as session:
        names = dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids or [0])))).all())
    for m in messages:
        who = names.get(m.person_id, "") if m.person_id else "：".join(m.group or m.account or ())
        first = m.body.strip().splitlines()[0] if m.body.strip() else ""
        print(f"  {who}：{first[:60]}")


def cmd_do(args: argparse.Namespace, config: Config) -> int:
    """Run one chat command as a roster person: the same router, checks and answers as in chat."""
    from bot.identity import NotFound, find_person

    from .app import build_services
    from .gateway import Gateway
    from .commands import present
    from .inbound import InboundMessage
    from .text import md_unescape

    _prepare_database(config)

    async def run() -> int:
        services = build_services(config)
        try:
            async with services.db.transaction() as session:
                try:
                    person = await find_person(session, args.person)
                except NotFound as exc:
                    print(md_unescape(services.renderer.text(exc.reason, **exc.values)), file=sys.stderr)
                    return 2
            text = " ".join(args.text)
            msg = InboundMessage(channel="cli", sender_id=f"person:{person.id}", conversation_id="cli", text=text,
                                 received_at=services.clock.now())
            for reply in await Gateway(services).handle(msg, as_person=person.id):
                if reply.format != "image":  # a terminal shows the text version of a picture
                    print(present(reply.text, "plain"))
            return 0
        finally:
            await services.db.close()

    return asyncio.run(run())


def cmd_outbox(args: argparse.Namespace, config: Config) -> int:
    from scheduler.outbox import Outbox
    from storage.db import Database

    from .clock import Clock
    from .config import enabled_channels

    _prepare_database(config)

    async def run() -> int:
        db = Database(config.database.url)  # the outbox alone: no handlers, templates or channels
        outbox = Outbox(db, Clock(), config, enabled_channels(config))
        try:
            if args.retry:
                n = await outbox.retry(args.retry)
                print(f"已重新排队 {n} 条（只有状态为 failed 的消息可以重试）")
            counts = await outbox.counts()
            labels = {"queued": "排队", "sending": "发送中", "sent": "已发送", "failed": "失败", "undeliverable": "无法送达"}
            print("发件箱：" + "，".join(f"{labels[k]} {counts.get(k, 0)}" for k in labels))
            if args.failed:
                from scheduler.outbox import operator_view

                for m in await outbox.problems(limit=200):
                    view = operator_view(m)  # an anonymous letter's writer stays unnamed here too
                    print(f"#{m.id} [{labels.get(m.status, m.status)}] {view.to} {view.what} 尝试 {m.attempts} 次：{view.error}")
            return 0
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_broadcast(args: argparse.Namespace, config: Config) -> int:
    """Queues the broadcast; the running ``bangdai serve`` delivers it."""
    from bot.audit import Actor
    from handlers.changqing.broadcast import PROGRAMMES, broadcast, status
    from .app import build_services
    from .router import Refusal, UsageError

    word = args.programme.strip().lower()
    if word not in (*PROGRAMMES, "状态", "status"):
        print(f"不认识广播对象“{args.programme}”，目前可以广播给：常青藤。例如：bangdai broadcast 常青藤 \"文案\"",
              file=sys.stderr)
        return 2
    _prepare_database(config)

    async def run() -> tuple[int, str]:
        services = build_services(config)
        try:
            async with services.db.transaction() as session:
                if word in ("状态", "status"):
                    answer = await status(session, services.clock.tz)
                else:
                    answer = await broadcast(session, args.text, Actor("命令行"), renderer=services.renderer,
                                             outbox=services.outbox, clock=services.clock, config=services.config,
                                             confirmed=args.confirm)
                return (1 if answer.template.endswith("confirm") else 0), services.renderer.text(answer.template, **answer.values)
        except Refusal as exc:
            return 1, services.renderer.text(exc.answer.template, **exc.answer.values)
        except UsageError as exc:
            return 2, f"{services.renderer.text(exc.reason, **exc.values)}。例如：bangdai broadcast 常青藤 \"“常青藤”行动计划启动，欢迎报名集结\""
        finally:
            await services.db.close()

    code, text = asyncio.run(run())
    print(text.replace("**", ""), file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_certificates(args: argparse.Namespace, config: Config) -> int:
    """Writes the year's 优秀导师 certificates and queues the private messages (the running serve sends them)."""
    from handlers.mentoring.certificates import CertificateSetupError, issue_certificates

    from .app import build_services

    _prepare_database(config)

    async def run() -> int:
        services = build_services(config)
        try:
            if not 2000 <= args.year <= services.clock.today().year:
                print(f"年份 {args.year} 不对，例如：bangdai certificates {services.clock.today().year}", file=sys.stderr)
                return 2
            async with services.db.transaction() as session:
                issued = await issue_certificates(session, args.year, config=services.config, clock=services.clock,
                                                  renderer=services.renderer, notify=services.notify,
                                                  reissue=args.reissue)
            if not issued:
                print(f"{args.year} 年捆绑考核中没有“优先确定为优秀”的导师，没有证书可生成")
            for i in issued:
                print(f"{i.mentor.name}：{i.path}（{'新颁发，已排队私信' if i.new else '此前已颁发'}）")
            return 0
        except CertificateSetupError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        finally:
            await services.db.close()

    return asyncio.run(run())


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from .app import local_channel_exposed

    if problem := local_channel_exposed(config):
        raise ConfigError(problem)
    _prepare_database(config, create=True)
    asyncio.run(_serve(config, demo=args.demo))
    return 0


async def _serve(config: Config, demo: bool = False) -> None:
    import gc
    import signal

    from aiohttp import web

    from storage.migrate import pending

    from .app import Bangdai, build_services

    services = build_services(config)
    missing = await pending(services.db)
    if missing:
        await services.db.close()
        raise SystemExit(f"数据库结构不是最新版本（缺少 {', '.join(sorted(missing))}），请先运行：bangdai db upgrade")
    if demo:
        from .app import load_demo

        await load_demo(services)
    bangdai = Bangdai(services)
    runner = web.AppRunner(bangdai.web_app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port)
    await site.start()
    # What start-up built (modules, templates, the router, SQLAlchemy's mappers) lives as long as the
    # process: freeze it out of the collector's way. Otherwise every full collection under load scans
    # it all again — measured as 70-90 ms pauses, the tail of chat latency (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    log.info("bangdai serving on http://%s:%s (channels: %s)", config.server.host, config.server.port,
             ", ".join(bangdai.channels) or "none")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
    await services.db.close()


def cmd_chat(args: argparse.Namespace, config: Config) -> int:
    url = (args.url or f"http://{config.server.host}:{config.server.port}").rstrip("/")
    return asyncio.run(_chat(url, args.user, config.local.token.reveal()))


async def _chat(url: str, user: str, token: str, poll_seconds: float = 1.0) -> int:
    """A terminal chat. The inbox is polled beside the prompt, so a pushed message (an answer to a
    letter, a reminder) shows when it arrives, not after the next thing typed."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    seen_keys: set[str] = set()
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            async with http.get(f"{url}/api/local/inbox/{user}") as resp:
                seen_keys = {m["key"] for m in (await resp.json())["messages"]}
        except aiohttp.ClientError as exc:
            print(f"连不上服务 {url}：{exc}。请先运行 bangdai serve。", file=sys.stderr)
            return 1
        # Said only once the inbox so far is known: a message pushed after this line is shown, never
        # taken for an old one (it was, when the line came first and a push beat the first inbox read).
        print(f"以本地用户 {user} 身份连接 {url}。输入消息后回车，输入 /quit 退出。", flush=True)

        async def show_pushed() -> None:
            async with http.get(f"{url}/api/local/inbox/{user}") as resp:
                for m in (await resp.json())["messages"]:
                    if m["key"] not in seen_keys:
                        seen_keys.add(m["key"])
                        print(f"\n[通知 {m['sent_at'][:16]}]\n{m['text']}\n", flush=True)

        async def watch() -> None:
            while True:
                await asyncio.sleep(poll_seconds)
                try:
                    await show_pushed()
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
                    pass  # the service is restarting or busy: try again next time

        watcher = asyncio.create_task(watch())
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, _read_line)
                if line is None or line.strip() in {"/quit", "/exit"}:
                    return 0
                if not line.strip():
                    continue
                try:
                    async with http.post(f"{url}/api/local/messages", json={"user": user, "text": line}) as resp:
                        body = await resp.json()
                        if resp.status != 200:
                            print(f"[错误 {resp.status}] {body.get('error')}")
                            continue
                    for reply in body["replies"]:
                        print(f"\n{reply['text']}\n", flush=True)
                except aiohttp.ClientError as exc:
                    print(f"[连接出错] {exc}")
        finally:
            watcher.cancel()


def _read_line() -> str | None:
    try:
        return input("> ")
    except EOFError:
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
