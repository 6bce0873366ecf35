"""The roster is the source of truth for roles and for who is in the programme (issue 11 item 2), and a
big import leaves chat answering (issue 11 item 8)."""

import asyncio

import pytest
from sqlmodel import func, select

from conftest import ROSTER_CSV, write
from handlers.sheets.roster import import_roster
from storage.models import AuditLog, Person, PersonRole

pytestmark = pytest.mark.usefixtures("seeded")


def roster_without(*, role_of: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> str:
    """ROSTER_CSV with some people's 角色 changed and some people left out."""
    lines = ROSTER_CSV.strip().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        if cells[0] in drop:
            continue
        if role_of and cells[0] in role_of:
            cells[4] = role_of[cells[0]]
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


async def audit(services, action):
    async with services.db.transaction() as s:
        return list((await s.exec(select(AuditLog).where(AuditLog.action == action))).all())


async def roles_of(services, name):
    async with services.db.transaction() as s:
        person = (await s.exec(select(Person).where(Person.name == name))).one()
        return {r.role for r in (await s.exec(select(PersonRole).where(PersonRole.person_id == person.id))).all()}


async def test_demoted_staff_loses_staff_commands_at_the_next_message(chat, services, tmp_path):
    assert "本周" in await chat.say("u5", "统计")  # 陈静 is 组工干部; the memo now holds her roles
    report = await import_roster(services.db, write(tmp_path, "r.csv", roster_without(role_of={"陈静": ""})),
                                 now=services.clock.now())
    assert report.ok and report.updated == 1, report.lines()
    assert "仅限" in await chat.say("u5", "统计")
    assert "**统计**" not in await chat.say("u5", "帮助")
    [revoked] = await audit(services, "role.revoke")
    assert revoked.detail["role"] == "组工干部" and revoked.detail["name"] == "陈静" and revoked.actor_label == "cli"
    # promoted again: the grant is audited too, and staff commands come back
    await import_roster(services.db, write(tmp_path, "r2.csv", ROSTER_CSV), now=services.clock.now())
    grants = [a.detail["role"] for a in await audit(services, "role.grant") if a.detail["name"] == "陈静"]
    assert grants == ["组工干部", "组工干部"]  # when first imported, and now
    assert "本周" in await chat.say("u5", "统计")


async def test_roles_backed_by_an_active_pairing_stay_and_the_report_says_so(services, tmp_path):
    report = await import_roster(services.db, write(tmp_path, "r.csv", roster_without(role_of={"张伟": "组工干部"})),
                                 now=services.clock.now())
    assert report.ok
    assert await roles_of(services, "张伟") == {"导师", "组工干部"}
    assert any("保留其导师角色：张伟" in w for w in report.warning_texts())


async def test_without_a_roles_column_nobody_s_roles_change(services, tmp_path):
    report = await import_roster(services.db, write(tmp_path, "r.csv", "姓名,手机\n陈静,13700005678\n"),
                                 now=services.clock.now())
    assert report.ok and "没有“角色”列" in "\n".join(report.lines())
    assert await roles_of(services, "陈静") == {"组工干部"}


async def test_full_import_lists_then_deactivates_those_missing(chat, services, tmp_path):
    path = write(tmp_path, "r.csv", roster_without(drop=("周敏",)))
    dry = await import_roster(services.db, path, now=services.clock.now(), dry_run=True, full=True)
    assert dry.deactivated == ["周敏（县人社局）"]
    assert "将停用 1 人（不在这份花名册中）：周敏（县人社局）" in "\n".join(dry.lines())
    assert "您已不在" not in await chat.say("u6", "本周")  # the dry run changed nothing
    # a plain import never deactivates
    plain = await import_roster(services.db, path, now=services.clock.now())
    assert plain.deactivated == [] and "您已不在" not in await chat.say("u6", "帮助")

    report = await import_roster(services.db, path, now=services.clock.now(), full=True)
    assert report.ok and report.deactivated == ["周敏（县人社局）"]
    [entry] = await audit(services, "person.deactivate")
    assert entry.target.startswith("person:") and entry.detail["name"] == "周敏（县人社局）"
    for text in ("本周", "信箱 退休待遇怎么落实", "绑定 周敏 6789", "绑定 张伟 1234", "帮助"):
        assert "您已不在帮带助手的花名册中" in await chat.say("u6", text), text
    # a new account cannot bind to a deactivated person either
    assert "未能绑定" in await chat.say("u99", "绑定 周敏 6789")
    # listed again: active again, audited
    await import_roster(services.db, write(tmp_path, "r2.csv", ROSTER_CSV), now=services.clock.now())
    assert "您已不在" not in await chat.say("u6", "本周")
    assert len(await audit(services, "person.reactivate")) == 1


async def test_full_import_with_row_errors_deactivates_nobody(services, tmp_path):
    body = roster_without(drop=("周敏",)) + "孙丽,1234,县委组织部,,,,\n"
    report = await import_roster(services.db, write(tmp_path, "r.csv", body), now=services.clock.now(), full=True)
    assert len(report.errors) == 1 and report.deactivated == []
    assert any("没有停用任何人" in w for w in report.warning_texts())
    async with services.db.transaction() as s:
        assert (await s.exec(select(func.count()).select_from(Person).where(Person.active == False))).one() == 0  # noqa: E712


async def test_chat_answers_while_a_big_roster_imports(chat, services, tmp_path):
    """The import commits in chunks and lets queued messages go between them: chat is answered while the
    import is still running, every answer a real one."""
    def name(i: int) -> str:
        return "干部" + "".join("零一二三四五六七八九"[int(c)] for c in f"{i:05d}")

    lines = ["姓名,手机,单位,角色"] + [f"{name(i)},1{i + 5_000_000_000:010d},单位{i % 50},导师" for i in range(6000)]
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    task = asyncio.create_task(import_roster(services.db, path, now=services.clock.now()))
    while not task.done():  # wait until the first chunk is in
        async with services.db.transaction() as s:
            if (await s.exec(select(func.count()).select_from(Person))).one() > 6:
                break
        await asyncio.sleep(0.01)
    answered_during_import = 0
    for i in range(5):
        reply = await chat.say("u5", "统计")
        assert "本周" in reply and "出了点问题" not in reply
        reply = await chat.say("u1", f"记录 李娜 面谈 第{i}次谈心")
        assert "出了点问题" not in reply and "已记录" in reply, reply
        answered_during_import += not task.done()
    report = await task
    assert report.ok and report.created == 6000, report.lines()[:5]
    assert answered_during_import >= 1


def test_cli_full_sheet_and_do_as_follow_the_roster(tmp_path):
    """Through the operator's command line: the limits come from [imports], --full lists before it
    deactivates, and `bangdai do --as` loses staff commands with the role."""
    from conftest import PG_URL
    from test_cli import bangdai, free_port

    if PG_URL:
        pytest.skip("CLI processes use their own SQLite file; run once")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n[server]\nport = {free_port()}\n'
                   "[imports]\nmax_rows = 5\n", encoding="utf-8")
    roster = write(tmp_path, "r.csv", ROSTER_CSV)
    assert bangdai("db", "upgrade", "--config", str(cfg)).returncode == 0  # only serve and db upgrade create one
    over = bangdai("import", "roster", str(roster), "--config", str(cfg))
    assert over.returncode == 1 and "超过上限 5 行" in over.stdout
    cfg.write_text(cfg.read_text().replace("max_rows = 5", "max_rows = 100000"), encoding="utf-8")
    assert bangdai("import", "roster", str(roster), "--config", str(cfg)).returncode == 0

    demoted = write(tmp_path, "r2.csv", roster_without(role_of={"陈静": ""}, drop=("周敏",)))
    dry = bangdai("import", "roster", str(demoted), "--full", "--dry-run", "--config", str(cfg))
    assert "将停用 1 人（不在这份花名册中）：周敏（县人社局）" in dry.stdout and "前 5 行将这样写入" in dry.stdout
    assert "手机=138****1234" in dry.stdout and "13800001234" not in dry.stdout
    real = bangdai("import", "roster", str(demoted), "--full", "--config", str(cfg))
    assert real.returncode == 0 and "已停用 1 人" in real.stdout
    assert "仅限" in bangdai("do", "--as", "陈静", "统计", "--config", str(cfg)).stdout
    assert "花名册中没有“周敏”" in bangdai("do", "--as", "周敏", "本周", "--config", str(cfg)).stderr


async def test_a_liaison_import_audits_the_role_it_grants(services, tmp_path):
    from handlers.sheets.liaisons import import_liaisons

    path = write(tmp_path, "l.csv", "联系人,单位,类型\n周敏,华埠镇,乡镇\n")
    assert (await import_liaisons(services.db, path, now=services.clock.now())).ok
    [grant] = [a for a in await audit(services, "role.grant") if a.detail["name"] == "周敏"]
    assert grant.detail["role"] == "三联联系人"
