"""The 调任联办单 (受理 once, copied at once to each listed department, 联审 parts, closed when all are in,
the applicant told once) and 一月一汇报 (汇报, 汇报 情况, 诉求, the monthly prompt and quarterly summary)."""

import datetime as dt
import shutil

import pytest

from bot.clock import TZ
from sanling_support import count, deliver, inboxes, rows, sanling  # noqa: F401
from scheduler.runner import run_job
from storage.models import AuditLog, CaseStatus, JointPart, MonthlyReport, OutboxMessage, ReviewCase

pytestmark = pytest.mark.usefixtures("sanling")

MATERIALS_05 = 6


@pytest.fixture(autouse=True)
def joint_config(config, tmp_path):
    config.sanling.files_dir = str(tmp_path / "case_files")
    # 县人社局's part goes to 周敏 (configured); 县委编办 has nobody, so staff record it.
    config.sanling.department_staff = {"县人社局": ["周敏"]}


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


async def submitted_transfer(chat, user="u2") -> None:
    opened = await chat.say(user, "预审 调任")
    assert "（联办单）" in opened
    for n in range(1, MATERIALS_05 + 1):
        await chat.say(user, f"预审 材料 {n} 已备齐，见纸质件")
    assert "已提交" in await chat.say(user, "预审 提交")


# --- 调任联办单 -------------------------------------------------------------------------------------------

async def test_accept_copies_to_every_department_at_once_and_closes_when_all_parts_are_in(chat, services, bangdai):
    await submitted_transfer(chat)
    await deliver(services, bangdai)
    new = (await inboxes(chat, ["u5"]))["u5"][-1]
    assert "（联办单）" in new and "预审 受理 #1" in new and "预审 通过 #1" not in new
    accepted = await chat.say("u5", "预审 受理 #1")
    assert "县人社局：已私信 1 人" in accepted and "县委编办：⚠️ 没有联系人" in accepted
    assert "联审 #1 县委编办 同意" in accepted
    [case] = await rows(services, ReviewCase)
    assert case.status == CaseStatus.JOINT
    parts = await rows(services, JointPart)
    assert [(p.department, p.reviewers) for p in parts] == [("县委编办", []), ("县人社局", [6])]
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    [copy] = boxes["u6"]
    assert "联办单抄告 #1" in copy and "（县人社局）" in copy and "联审 #1 县人社局 同意" in copy and "李娜（华埠镇）" in copy
    assert "已受理" in boxes["u2"][-1] and "县委编办、县人社局" in boxes["u2"][-1]
    # 周敏 may read the case she was copied (the copy tells her how); others still may not.
    shown = await chat.say("u6", "预审 查询 #1")
    assert "已备齐，见纸质件" in shown and "县人社局：待联审" in shown
    assert "没有找到预审 #1" in await chat.say("u4", "预审 查询 #1")
    assert "#1 干部调任" in await chat.say("u6", "联审")
    recorded = await chat.say("u6", "联审 #1 同意 编制已核准")
    assert "县人社局的意见：同意" in recorded and "还等：县委编办" in recorded
    assert "已经录过" in await chat.say("u6", "联审 #1 不同意 改主意")
    done = await chat.say("u5", "联审 #1 县委编办 同意 职数有空")
    assert "联办单已办结" in done
    [case] = await rows(services, ReviewCase)
    assert case.status == CaseStatus.CLOSED and case.decided_at is not None
    await deliver(services, bangdai)
    closed = [m for m in (await inboxes(chat, ["u2"]))["u2"] if "联审已完成" in m]
    assert len(closed) == 1 and "县人社局：同意（编制已核准）" in closed[0] and "县委编办：同意（职数有空）" in closed[0]
    assert "不能再录意见" in await chat.say("u5", "联审 #1 县委编办 同意")
    actions = [e.action for e in await rows(services, AuditLog, AuditLog.target == "case:1")]
    assert actions.count("case.joint_part") == 2 and "case.joint_close" in actions and "case.accepted" in actions


async def test_三联_contacts_get_the_copy_when_no_staff_are_configured(chat, services, bangdai, config, tmp_path):
    guides = tmp_path / "guides"
    shutil.copytree(config.programme.guides_dir, guides)
    path = guides / "05_干部调任.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('["县委编办", "县人社局"]', '["县发改局"]'), encoding="utf-8")
    config.programme.guides_dir = str(guides)
    await submitted_transfer(chat)
    assert "县发改局：已私信 1 人" in await chat.say("u5", "预审 受理 #1")
    await deliver(services, bangdai)
    assert any("联办单抄告 #1" in m for m in (await inboxes(chat, ["u1"]))["u1"])  # 张伟 links 县发改局
    assert "只有一个部门" not in await chat.say("u1", "联审 #1 同意")
    [case] = await rows(services, ReviewCase)
    assert case.status == CaseStatus.CLOSED


async def test_approve_on_a_joint_case_is_the_acceptance(chat, services):
    await submitted_transfer(chat)
    assert "已受理" in await chat.say("u5", "预审 通过 #1")
    assert "不在待预审状态" in await chat.say("u5", "预审 受理 #1")
    assert await count(services, JointPart) == 2


@pytest.mark.parametrize("text,expect", [
    ("联审 同意", "请写上联办单编号和意见"),
    ("联审 #1", "请写“同意”或“不同意”"),
    ("联审 #1 好的", "请写“同意”或“不同意”"),
    ("联审 #9 同意", "没有找到需要您联审的联办单 #9"),
    ("联审 #1 同意 " + "好" * 501, "意见最多 500 字"),
])
async def test_wrong_forms_of_联审(chat, services, text, expect):
    await submitted_transfer(chat)
    await chat.say("u5", "预审 受理 #1")
    assert expect in await chat.say("u6", text)
    assert all(not p.result for p in await rows(services, JointPart))


async def test_联审_needs_the_department_when_one_records_several_and_others_are_refused(chat, services):
    await submitted_transfer(chat)
    await chat.say("u5", "预审 受理 #1")
    which = await chat.say("u5", "联审 #1 同意")
    assert "请写明部门" in which and "联审 #1 县委编办 同意 意见" in which
    assert "没有找到需要您联审的联办单 #1" in await chat.say("u4", "联审 #1 同意")
    assert "没有待您联审的联办单" in await chat.say("u4", "联审")


# --- 一月一汇报 -------------------------------------------------------------------------------------------

async def test_report_with_unit_and_parts_replaced_when_sent_again(chat, services):
    saved = await chat.say("u5", "汇报 10月 华埠镇 走访 3 次 思想动态：年轻干部干事热情高 诉求：希望多组织业务培训")
    assert "已收到您 2026年10月的汇报（华埠镇）" in saved and "思想动态：年轻干部干事热情高" in saved
    [r] = await rows(services, MonthlyReport)
    assert (r.month, r.unit_id is not None, r.text, r.thoughts, r.requests) == (
        dt.date(2026, 10, 1), True, "走访 3 次", "年轻干部干事热情高", "希望多组织业务培训")
    assert "已更新" in await chat.say("u5", "汇报 十月 华埠镇 诉求：希望解决食堂问题")
    [r] = await rows(services, MonthlyReport)
    assert (r.text, r.thoughts, r.requests) == ("", "", "希望解决食堂问题")
    assert "已收到" in await chat.say("u5", "汇报 10月 总体平稳")  # no unit: a report of its own
    assert await count(services, MonthlyReport) == 2
    mine = await chat.say("u5", "汇报")
    assert "2026年10月（华埠镇）" in mine and "诉求待办" in mine and "汇报 10月" in mine


async def test_report_status_for_staff_and_closing_a_诉求(chat, services):
    await chat.say("u5", "汇报 10月 思想动态：稳定 诉求：希望多组织业务培训")
    status = await chat.say("u7", "汇报 情况")
    assert "2026年10月一月一汇报**：已报 1 人，未报 1 人" in status and "已报：陈静" in status and "未报：张伟" in status
    assert "待办诉求 1 件" in status and "汇报 诉求" in status
    assert "未报 2 人" in await chat.say("u7", "汇报 情况 11月")
    listed = await chat.say("u7", "汇报 诉求")
    assert "#1 10月｜陈静：希望多组织业务培训" in listed and "汇报 办结 #1 答复内容" in listed
    assert "已办结：已安排 12 月培训" in await chat.say("u7", "汇报 办结 #1 已安排 12 月培训")
    assert "已在 11月19日 办结" in await chat.say("u7", "汇报 办结 #1 再来")
    assert "没有待办的诉求" in await chat.say("u7", "汇报 诉求")
    [entry] = await rows(services, AuditLog, AuditLog.action == "report.request_close")
    assert entry.actor_id == 7


@pytest.mark.parametrize("user,text,expect", [
    ("u5", "汇报 走访了华埠镇", "请先写汇报的月份"),
    ("u5", "汇报 13月 内容", "没有 13 月"),
    ("u5", "汇报 11月", "请写上汇报内容"),
    ("u5", "汇报 11月 思想动态：", "请写上汇报内容"),
    ("u5", "汇报 2025-09 内容", "只能补报一年内的月份"),
    ("u5", "汇报 2027年1月 内容", "还没到这个月份"),
    ("u7", "汇报 情况 前几天", "不是月份"),
    ("u7", "汇报 诉求 全部", "后面不用写内容"),
    ("u7", "汇报 办结", "请写上诉求编号"),
    ("u7", "汇报 办结 #1", "请写上诉求编号"),
    ("u7", "汇报 办结 #5 好", "没有找到诉求 #5"),
    ("u7", "汇报 办结 #5 " + "好" * 501, "答复最多 500 字"),
    ("u7", "汇报 11月 内容", "您不是三联联系人"),
    ("u1", "汇报 情况", "“汇报 情况”仅限管理员、组工干部"),
    ("u2", "汇报 11月 内容", "仅限"),
])
async def test_wrong_forms_of_汇报(chat, services, user, text, expect):
    reply = await chat.say(user, text)
    assert expect in reply, reply
    assert await count(services, MonthlyReport) == 0


async def test_monthly_prompt_links_to_汇报_and_the_hint_works(chat, services, clock, bangdai):
    clock.set(at(2026, 12, 1, 9))
    await run_job(services, "monthly_visit_prompt", clock.now())
    await deliver(services, bangdai)
    [prompt] = (await inboxes(chat, ["u5"]))["u5"]
    assert "**汇报 11月 内容**" in prompt and "汇报 11月 华埠镇 思想动态：… 诉求：…" in prompt
    assert "已收到您 2026年11月的汇报（华埠镇）" in await chat.say("u5", "汇报 11月 华埠镇 思想动态：稳定 诉求：无")


async def test_quarterly_summary_includes_reports_and_open_诉求(chat, services, clock, bangdai):
    clock.set(at(2026, 11, 19, 10))
    await chat.say("u5", "汇报 10月 华埠镇 思想动态：年轻干部干事热情高 诉求：希望多组织业务培训")
    await chat.say("u1", "汇报 11月 县发改局 项目推进顺利")
    await chat.say("u1", "汇报 9月 诉求：老问题")  # an earlier quarter's 诉求 still open is listed too
    clock.set(at(2027, 1, 4, 9))
    await run_job(services, "quarterly_summary", clock.now())
    await deliver(services, bangdai)
    [summary] = [m for m in (await inboxes(chat, ["u7"]))["u7"] if "一季一汇总" in m]
    assert "**一月一汇报**：10月已报 1 人、未报 1 人；11月已报 1 人、未报 1 人；12月已报 0 人、未报 2 人" in summary
    assert "10月｜陈静（华埠镇）：年轻干部干事热情高" in summary and "11月｜张伟（县发改局）：项目推进顺利" in summary
    assert "待办诉求 2 件" in summary and "希望多组织业务培训" in summary and "老问题" in summary
    assert await count(services, OutboxMessage) >= 2


async def test_a_joint_case_past_its_limit_reminds_staff_and_the_departments_still_missing(chat, services, clock, bangdai):
    await submitted_transfer(chat)  # Thu 19 Nov 10:00; 10 working days: due Thu 3 Dec 10:00
    await chat.say("u5", "预审 受理 #1")
    clock.set(at(2026, 12, 3, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 0
    clock.set(at(2026, 12, 4, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 3  # 陈静, 孙丽 and 周敏
    await deliver(services, bangdai)
    [reminder] = [m for m in (await inboxes(chat, ["u6"]))["u6"] if "超期" in m]
    assert "联办单超期提醒** #1" in reminder and "还等这些部门的联审意见：县委编办、县人社局" in reminder
    assert "联审 #1 县委编办 同意 意见" in reminder
    await chat.say("u6", "联审 #1 同意")
    clock.set(at(2026, 12, 7, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 2  # 周敏's part is in
    await chat.say("u5", "联审 #1 县委编办 同意")
    clock.set(at(2026, 12, 8, 9, 5))
    assert (await run_job(services, "case_overdue", clock.now())).queued == 0
