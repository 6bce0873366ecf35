"""钉钉预审 cases through the local channel: open from a pre-reviewable guide, checklist, text and files
(kept on disk by hash), 提交, the staff queue with the working-day limit, 通过/退回/转, 查询, privacy,
the overdue reminder and the retention purge (time-travel), 统计 and the export."""

import base64
import datetime as dt
import hashlib
import os

import pytest
from openpyxl import load_workbook

from bot.clock import TZ
from handlers.sheets.export import export_workbook
from handlers.sanling.guides import load_guides
from sanling_support import count, deliver, inboxes, rows, sanling  # noqa: F401
from scheduler.runner import run_job
from storage.files import FileStore
from storage.models import AuditLog, CaseStatus, ReviewCase, ReviewDecision, ReviewFile, ReviewItem

pytestmark = pytest.mark.usefixtures("sanling")

LI_NA = 3
PDF = b"%PDF-1.4 borrowing form " + bytes(range(256)) * 4
PHOTO = b"\xff\xd8\xff\xe0 photo of the agreement" + bytes(100)


@pytest.fixture(autouse=True)
def case_files(config, tmp_path):
    config.sanling.files_dir = str(tmp_path / "case_files")
    config.sanling.max_file_mb = 0.01  # 10 KB: the local channel's body limit keeps test files small anyway
    return FileStore(config.sanling.files_dir)


def attachment(data: bytes, name: str = "", kind: str = "file") -> dict:
    return {"name": name, "kind": kind, "data": base64.b64encode(data).decode()}


async def send_file(chat, user: str, data: bytes, name: str = "", kind: str = "file") -> str:
    return await chat.say(user, "", attachments=[attachment(data, name, kind)])


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


async def filled_case(chat, user: str = "u2") -> None:
    """A 借用顶岗 case with both checklist items covered (a file and a text), not yet submitted."""
    assert "已开始预审 **#1" in await chat.say(user, "预审 借用顶岗")
    await send_file(chat, user, PDF, "审批表.pdf")
    await chat.say(user, "预审 材料 2 招商专班重点项目需要，借用 6 个月")


# --- guides say which are pre-reviewable -------------------------------------------------------------

def test_shipped_guides_mark_the_pre_reviewable_procedures(config):
    guides = {g.title: g for g in load_guides(config.programme.guides_dir)}
    marked = {t for t, g in guides.items() if g.prereview}
    assert marked == {"中层干部调整预审", "公务员登记", "干部借用顶岗审批", "干部调任（最多跑一次）"}
    assert guides["干部借用顶岗审批"].review_days == 3
    assert guides["干部调任（最多跑一次）"].departments == ("县委编办", "县人社局")
    assert all(not g.departments for t, g in guides.items() if not t.startswith("干部调任"))


async def test_guide_page_tells_how_to_submit_and_the_hint_works(chat):
    page = await chat.say("u2", "流程 借用")
    assert "预审 借用" in page
    assert "已开始预审" in await chat.say("u2", "预审 借用")
    assert "预审" not in (await chat.say("u2", "流程 公务员转任")).split("**经办**")[1]


# --- the submitter's side ------------------------------------------------------------------------------

async def test_open_attach_and_submit_keeps_files_on_disk_by_hash(chat, services, bangdai, case_files):
    opened = await chat.say("u2", "预审 借用顶岗")
    assert "#1 干部借用顶岗审批" in opened and "《干部借用（顶岗）审批表》" in opened and "预审 提交" in opened
    assert await count(services, ReviewItem) == 2
    kept = await send_file(chat, "u2", PDF, "审批表.pdf")
    assert "已收到 1 个文件，归入第 1 项：审批表.pdf" in kept
    # Submitting with an item missing says which one and how to add it.
    missing = await chat.say("u2", "预审 提交")
    assert "还缺" in missing and "2. 借用事由说明" in missing and "预审 材料 2" in missing
    assert "第 2 项" in await chat.say("u2", "预审 材料 2")
    await send_file(chat, "u2", PHOTO, kind="picture")
    submitted = await chat.say("u2", "预审 提交")
    assert "已提交预审 **#1" in submitted and "3 个工作日内（11月24日前）" in submitted
    [case] = await rows(services, ReviewCase)
    assert case.status == CaseStatus.SUBMITTED and case.due_at == at(2026, 11, 24, 10)
    files = await rows(services, ReviewFile)
    assert [(f.item_number, f.name, f.kind, f.size) for f in files] == [
        (1, "审批表.pdf", "file", len(PDF)), (2, "图片2", "picture", len(PHOTO))]
    assert files[0].sha256 == hashlib.sha256(PDF).hexdigest()
    assert case_files.read(files[0].sha256) == PDF and case_files.read(files[1].sha256) == PHOTO
    # Staff are told privately with what to type; the submitter and others get nothing.
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    for staff in ("u5", "u7"):
        [note] = boxes[staff]
        assert "新的预审 #1 干部借用顶岗审批" in note and "李娜（华埠镇）" in note and "11月24日前" in note
        assert "预审 通过 #1" in note and "预审 退回 #1" in note
    assert all(not boxes[u] for u in ("u1", "u2", "u3", "u4", "u6"))


async def test_file_bigger_than_the_limit_is_refused_and_nothing_kept(chat, services, case_files):
    await chat.say("u2", "预审 借用顶岗")
    big = bytes(11 * 1024)
    reply = await send_file(chat, "u2", big, "扫描件.pdf")
    assert "太大（11 KB），每个文件最多 10 KB，没有保存" in reply
    assert await count(services, ReviewFile) == 0 and case_files.names() == set()


async def test_a_file_with_no_open_case_says_how_to_start_one(chat, services, case_files):
    reply = await send_file(chat, "u2", PDF, "a.pdf")
    assert "没有正在填写的预审" in reply and "预审 借用顶岗" in reply
    assert case_files.names() == set()


async def test_one_open_case_at_a_time_and_withdraw(chat, services):
    await chat.say("u2", "预审 借用顶岗")
    busy = await chat.say("u2", "预审 公务员登记")
    assert "#1 干部借用顶岗审批" in busy and "预审 提交" in busy and "预审 撤回" in busy
    assert "已撤回预审 #1" in await chat.say("u2", "预审 撤回")
    assert "已开始预审 **#2 公务员登记" in await chat.say("u2", "预审 公务员登记")
    [entry] = await rows(services, AuditLog, AuditLog.action == "case.withdraw")
    assert entry.target == "case:1"


async def test_note_and_item_text(chat, services):
    await chat.say("u2", "预审 借用顶岗")
    assert "已记下 #1 的整体说明" in await chat.say("u2", "预审 说明 派出单位已同意")
    assert "已记下第 2 项的文字" in await chat.say("u2", "预审 材料 2 借用事由：招商专班")
    [case] = await rows(services, ReviewCase)
    [item] = await rows(services, ReviewItem, ReviewItem.number == 2)
    assert case.note == "派出单位已同意" and item.text == "借用事由：招商专班" and case.current_item == 2


@pytest.mark.parametrize("text,expect", [
    ("预审 出国", "没有找到可以预审的流程"),
    ("预审 公务员转任", "没有找到可以预审的流程"),
    ("预审 材料", "请写上材料序号"),
    ("预审 材料 二", "请写上材料序号"),
    ("预审 材料 9", "清单里没有第 9 项"),
    ("预审 说明", "请写上要说明的内容"),
    ("预审 提交 现在", "后面不用写内容"),
    ("预审 撤回 #1", "后面不用写内容"),
    ("预审 查询 7", "没有找到预审 #7"),
    ("预审 查询 看看", "请写上案件编号"),
])
async def test_wrong_forms_of_the_submitter_commands(chat, services, text, expect):
    await chat.say("u2", "预审 借用顶岗")
    reply = await chat.say("u2", text)
    assert expect in reply, reply
    if "格式" in reply:  # a usage answer repeats an example that works when sent back
        assert "例如：**预审" in reply


async def test_commands_needing_an_open_case_say_how_to_start(chat):
    for text in ("预审 提交", "预审 材料 1", "预审 说明 内容", "预审 撤回"):
        assert "没有正在填写的预审" in await chat.say("u2", text), text


async def test_in_a_group_it_is_refused(chat):
    assert "私聊" in await chat.say("u2", "预审 借用顶岗", group=True, conversation="g1")


async def test_long_text_is_refused(chat, config):
    config.programme.max_text_chars = 5000  # the gateway's own limit would refuse it first otherwise
    await chat.say("u2", "预审 借用顶岗")
    assert "内容太长了（2001 字）" in await chat.say("u2", "预审 说明 " + "字" * 2001)
    assert "内容太长了（2001 字）" in await chat.say("u2", "预审 材料 1 " + "字" * 2001)


async def test_overview_lists_procedures_and_own_cases(chat):
    overview = await chat.say("u2", "预审")
    assert "预审 借用" in overview and "预审 调任" in overview and "（联办单）" in overview
    assert "预审 待办" not in overview
    assert "预审 待办" in await chat.say("u5", "预审")


# --- staff decisions -----------------------------------------------------------------------------------

async def test_queue_in_order_of_arrival_with_the_limit(chat, services, clock):
    await filled_case(chat, "u2")
    await chat.say("u2", "预审 提交")
    clock.advance(hours=1)
    await chat.say("u4", "预审 中层干部调整")
    for n in (1, 2, 3):
        await chat.say("u4", f"预审 材料 {n} 已附")
    await chat.say("u4", "预审 提交")
    todo = await chat.say("u5", "预审 待办")
    assert "待预审**：2 件" in todo
    assert todo.index("#1 干部借用顶岗审批") < todo.index("#2 中层干部调整预审")
    assert "11月24日前答复" in todo and "李娜（华埠镇）" in todo and "文件 1 个" in todo


async def test_approve_tells_the_submitter_and_is_audited(chat, services, bangdai):
    await filled_case(chat)
    await chat.say("u2", "预审 提交")
    assert "已通过" in await chat.say("u5", "预审 通过 #1 同意借用")
    [case] = await rows(services, ReviewCase)
    assert case.status == CaseStatus.APPROVED and case.decided_at is not None
    await deliver(services, bangdai)
    [notice] = (await inboxes(chat, ["u2"]))["u2"]
    assert "#1 干部借用顶岗审批** 已通过" in notice and "同意借用" in notice
    [entry] = await rows(services, AuditLog, AuditLog.action == "case.approved")
    assert entry.actor_id == 5 and entry.detail["step"] == "通过"
    assert "不在待预审状态" in await chat.say("u5", "预审 通过 #1")


async def test_return_reopens_and_tells_exactly_what_to_add(chat, services, bangdai, clock):
    await filled_case(chat)
    await chat.say("u2", "预审 提交")
    reply = await chat.say("u5", "预审 退回 #1 缺少借用协议原件")
    assert "已退回" in reply and "缺少借用协议原件" in reply
    await deliver(services, bangdai)
    notice = (await inboxes(chat, ["u2"]))["u2"][-1]
    assert "被退回" in notice and "**缺少借用协议原件**" in notice and "预审 提交" in notice and "预审 材料" in notice
    mine = await chat.say("u2", "预审 查询")
    assert "已退回待补充" in mine and "缺少借用协议原件" in mine
    # The case is open again: a file goes to it, and a new submission gets a new limit.
    clock.advance(days=1)
    await chat.say("u2", "预审 材料 1")
    assert "已收到 1 个文件" in await send_file(chat, "u2", PHOTO, "协议原件.jpg", "picture")
    again = await chat.say("u2", "预审 提交")
    assert "已重新提交" in again and "11月25日前" in again
    [case] = await rows(services, ReviewCase)
    assert (case.status, case.returns, case.due_at) == (CaseStatus.SUBMITTED, 1, at(2026, 11, 25, 10))
    actions = [d.action for d in await rows(services, ReviewDecision)]
    assert actions == ["提交", "退回", "提交"]


async def test_sub_commands_may_run_into_the_number(chat, services):
    await filled_case(chat)
    await chat.say("u2", "预审：提交")
    assert "已转人社局" in await chat.say("u5", "预审 转#1 人社局")
    assert "已转办" in await chat.say("u2", "预审 查询#1")


async def test_transfer(chat, services, bangdai):
    await filled_case(chat)
    await chat.say("u2", "预审 提交")
    assert "已转人社局" in await chat.say("u5", "预审 转 #1 人社局")
    await deliver(services, bangdai)
    assert "已转 **人社局** 办理" in (await inboxes(chat, ["u2"]))["u2"][-1]
    [case] = await rows(services, ReviewCase)
    assert (case.status, case.transferred_to) == (CaseStatus.TRANSFERRED, "人社局")


@pytest.mark.parametrize("text,expect", [
    ("预审 通过", "请写上案件编号"),
    ("预审 通过 一", "请写上案件编号"),
    ("预审 退回 #1", "请写上退回原因"),
    ("预审 退回", "请写上案件编号"),
    ("预审 转 #1", "请写上转去的部门"),
    ("预审 转", "请写上案件编号"),
    ("预审 通过 #99", "没有找到预审 #99"),
    ("预审 受理 #1", "这不是联办单"),
    ("预审 受理", "请写上案件编号"),
    ("预审 转 #1 " + "部" * 101, "部门名称最多 100 字"),
    ("预审 待办 全部", "后面不用写内容"),
    ("预审 退回 #1 " + "缺" * 501, "最多 500 字"),
])
async def test_wrong_forms_of_the_staff_commands(chat, services, text, expect):
    await filled_case(chat)
    await chat.say("u2", "预审 提交")
    reply = await chat.say("u5", text)
    assert expect in reply, reply
    [case] = await rows(services, ReviewCase)
    assert case.status == CaseStatus.SUBMITTED  # nothing half-done


@pytest.mark.parametrize("text", ["预审 待办", "预审 通过 #1", "预审 退回 #1 原因", "预审 转 #1 人社局", "预审 受理 #1"])
async def test_staff_commands_are_refused_to_others(chat, services, text):
    await filled_case(chat)
    await chat.say("u2", "预审 提交")
    assert "仅限管理员、组工干部" in await chat.say("u4", text)
    assert "仅限管理员、组工干部" in await chat.say("u2", text)


async def test_applicants_see_only_their_own_cases(chat, services):
    await filled_case(chat)
    await chat.say("u2", "预审 说明 家庭原因需要照顾")
    own = await chat.say("u2", "预审 查询 #1")
    assert "家庭原因需要照顾" in own and "审批表.pdf" in own
    other = await chat.say("u4", "预审 查询 #1")
    assert other == (await chat.say("u4", "预审 查询 #2")).replace("#2", "#1") and "没有找到预审 #1" in other
    assert "您还没有预审" in await chat.say("u4", "预审 查询")
    staff = await chat.say("u5", "预审 查询 #1")
    assert "申请人：李娜（华埠镇）" in staff and "bangdai cases files 1" in staff


# --- time: overdue reminders and retention ------------------------------------------------------------

async def test_overdue_reminder_after_the_limit_in_working_days_once_a_day(chat, services, clock, bangdai):
    await filled_case(chat)
    await chat.say("u2", "预审 提交")  # Thu 19 Nov 10:00, 3 working days: due Tue 24 Nov 10:00
    clock.set(at(2026, 11, 24, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 0
    clock.set(at(2026, 11, 25, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 2
    assert (await run_job(services, "case_overdue", clock.now())).queued == 0  # once a day
    clock.set(at(2026, 11, 28, 9, 5))  # Saturday: waits for Monday
    assert (await run_job(services, "case_overdue", clock.now())).queued == 0
    await deliver(services, bangdai)
    [reminder] = [m for m in (await inboxes(chat, ["u5"]))["u5"] if "超期" in m]
    assert "#1 干部借用顶岗审批" in reminder and "已等 4 个工作日" in reminder and "预审 通过 #1" in reminder
    assert "超期 1" in await chat.say("u5", "预审 待办") or "其中超期 1 件" in await chat.say("u5", "预审 待办")
    await chat.say("u5", "预审 通过 #1")
    clock.set(at(2026, 11, 30, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 0


async def test_decided_cases_and_their_files_go_after_the_retention(chat, services, clock, config, case_files):
    config.sanling.retention_days = 30
    await filled_case(chat)
    await chat.say("u2", "预审 提交")
    await chat.say("u5", "预审 通过 #1")
    [f] = await rows(services, ReviewFile)
    assert case_files.exists(f.sha256)
    clock.set(at(2026, 12, 18, 3, 45))  # 29 days later: kept
    await run_job(services, "purge_case_files", clock.now())
    assert await count(services, ReviewCase) == 1 and case_files.exists(f.sha256)
    clock.set(at(2026, 12, 20, 3, 45))
    await run_job(services, "purge_case_files", clock.now())
    assert await count(services, ReviewCase) == 0 and await count(services, ReviewFile) == 0
    assert await count(services, ReviewItem) == 0 and not case_files.exists(f.sha256)
    [entry] = await rows(services, AuditLog, AuditLog.action == "case.purge")
    assert entry.detail == {"cases": [1], "files": 1}


async def test_an_abandoned_draft_goes_after_the_retention_too(chat, services, clock, config, case_files):
    config.sanling.retention_days = 30
    await chat.say("u2", "预审 借用顶岗")
    await send_file(chat, "u2", PDF, "审批表.pdf")
    await chat.say("u4", "预审 借用顶岗")
    await chat.say("u4", "预审 材料 1 附后")
    await chat.say("u4", "预审 材料 2 附后")
    await chat.say("u4", "预审 提交")  # waiting for staff: kept however long it waits
    clock.set(at(2026, 12, 20, 3, 45))
    await run_job(services, "purge_case_files", clock.now())
    [kept] = await rows(services, ReviewCase)
    assert kept.submitter_id == 4 and case_files.names() == set()


async def test_a_file_shared_with_a_kept_case_stays_on_disk(chat, services, clock, config, case_files):
    config.sanling.retention_days = 30
    await filled_case(chat, "u2")
    await chat.say("u2", "预审 提交")
    await chat.say("u5", "预审 通过 #1")
    clock.set(at(2026, 12, 10, 10))
    await chat.say("u4", "预审 借用顶岗")
    await send_file(chat, "u4", PDF, "同一份.pdf")  # the same bytes: one file on disk
    assert len(case_files.names()) == 1
    clock.set(at(2026, 12, 20, 3, 45))
    await run_job(services, "purge_case_files", clock.now())
    assert await count(services, ReviewCase) == 1 and case_files.exists(hashlib.sha256(PDF).hexdigest())


async def test_files_no_case_points_at_go_after_a_day(services, clock, case_files):
    old, fresh = case_files.put(b"rolled back long ago"), case_files.put(b"being handled right now")
    clock.set(at(2026, 11, 21, 3, 45))
    os.utime(case_files.path(old), (clock.now().timestamp() - 2 * 86400,) * 2)
    os.utime(case_files.path(fresh), (clock.now().timestamp() - 3600,) * 2)
    await run_job(services, "purge_case_files", clock.now())
    assert case_files.names() == {fresh}


# --- figures -------------------------------------------------------------------------------------------

async def test_stats_and_export_count_cases_days_and_returns(chat, services, clock, tmp_path):
    await filled_case(chat, "u2")
    await chat.say("u2", "预审 提交")  # Thu 19 Nov
    await chat.say("u5", "预审 退回 #1 缺少协议")
    await chat.say("u2", "预审 提交")
    clock.set(at(2026, 11, 23, 15))  # Mon: 2 working days after Thu
    await chat.say("u5", "预审 通过 #1")
    await chat.say("u4", "预审 借用顶岗")
    await chat.say("u4", "预审 材料 1 附后")
    await chat.say("u4", "预审 材料 2 附后")
    await chat.say("u4", "预审 提交")
    stats = await chat.say("u5", "统计")
    assert "干部借用顶岗审批：提交 2 件，通过 1，转办 0，办理中 1；退回 1 次；平均 2.0 个工作日办结" in stats
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, clock)
    book = load_workbook(path)
    sheet = [list(r) for r in book["预审"].iter_rows(values_only=True)]
    assert sheet[0][:5] == ["编号", "流程", "类型", "申请人", "状态"]
    assert sheet[1][3] == "李娜（华埠镇）" and sheet[1][4] == "已通过" and sheet[1][9] == 1
    figures = [list(r) for r in book["预审统计2026"].iter_rows(values_only=True)]
    assert figures[1] == ["干部借用顶岗审批", 2, 1, 1, 0, 0, 1, 0, 2]


async def test_files_can_be_copied_out_for_staff(chat, services, clock, tmp_path, case_files):
    from handlers.sanling.case_ops import copy_case_files
    await filled_case(chat)
    async with services.db.transaction() as session:
        copied = await copy_case_files(session, case_files, 1, tmp_path / "out", clock.now())
        assert await copy_case_files(session, case_files, 9, tmp_path / "none", clock.now()) is None
    assert [p.name for p in copied] == ["1-1-1-审批表.pdf"] and copied[0].read_bytes() == PDF
    [entry] = await rows(services, AuditLog, AuditLog.action == "case.files_copied")
    assert entry.detail == {"files": 1}


async def test_every_hint_in_the_overview_and_replies_works_when_sent_back(chat, services):
    import re
    overview = await chat.say("u2", "预审")
    hints = re.findall(r"\*\*(预审 [^*]+)\*\*", overview)
    assert len(hints) == 4
    for hint in hints:
        assert "已开始预审" in await chat.say("u2", hint), hint
        assert "已撤回" in await chat.say("u2", "预审 撤回")
    await chat.say("u2", "预审 借用顶岗")
    kept = await send_file(chat, "u2", PDF, "a.pdf")
    [next_step] = re.findall(r"\*\*(预审 材料 \d)\*\*", kept)
    assert next_step == "预审 材料 2" and "第 2 项" in await chat.say("u2", next_step)
    await chat.say("u2", "预审 材料 2 事由")
    await chat.say("u2", "预审 提交")
    for hint in re.findall(r"\*\*(预审 [^*]+)\*\*", await chat.say("u2", "预审 查询")):
        assert "干部借用顶岗审批" in await chat.say("u2", hint), hint
    todo = await chat.say("u5", "预审 待办")
    assert "看材料：预审 查询 #5" in todo and "通过：预审 通过 #5" in todo
