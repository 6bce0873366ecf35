"""零重复: one data pool, exported to Excel instead of re-filling forms. Phones are masked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Awaitable, Callable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar, calendar_for
from bot.clock import Clock, period_bounds, period_name
from bot.text import mask_phone
from storage.db import Database
from bot.config import Config
from bot.dates import beijing, beijing_day
from storage.models import (AREAS, REPORT_ITEMS, ContactLog, OpenClass, ContactMentor, PairReview, Person, PersonRole, PlanItem,
                            ReviewReport, Unit)

from handlers.mentoring.queries import bundled_assessment, last_face_before, lapsed_weeks
from handlers.mentoring.areas import area_coverage
from handlers.mentoring.class_queries import signups_of
from handlers.mentoring.pool_queries import incentive_rows, mentor_pool, pool_rows
from handlers.mentoring.pairs import load_pairs
from handlers.mentoring.reviews import rematch_candidates

# The other programmes' sheets (title, header, rows), after 帮带's own.
SheetRows = list[tuple[str, list[str], list[list]]]
SheetFn = Callable[[AsyncSession, Clock, WorkCalendar], Awaitable[SheetRows]]


def other_sheets() -> list[SheetFn]:
    """信箱, 预审, 三联 and 常青藤, in workbook order (listed here: nothing registers itself on import)."""
    from handlers.sanling.case_figures import case_sheets
    from handlers.sanling.liaisons import liaison_sheets
    from handlers.sanling.mailbox import mailbox_sheet

    from .changqing import changqing_sheets

    return [mailbox_sheet, case_sheets, liaison_sheets, changqing_sheets]


async def export_workbook(db: Database, path: Path, clock: Clock, config: Config | None = None) -> dict[str, int]:
    """Write the roster, pairs (with 周联 status), contacts and plans to ``path``; rows per sheet. Working
    days (超期) follow the config's ``[calendar]``, as in chat and the jobs."""
    calendar = calendar_for(config or Config())
    from openpyxl import Workbook  # only the export needs it: every serve and CLI start would pay for it

    wb = Workbook()
    counts: dict[str, int] = {}
    async with db.transaction() as session:
        units = {u.id: u.name for u in (await session.exec(select(Unit))).all()}
        roles: dict[int, list[str]] = {}
        for r in (await session.exec(select(PersonRole))).all():
            roles.setdefault(r.person_id, []).append(r.role)
        people = (await session.exec(select(Person).order_by(Person.id))).all()
        names = {p.id: p.name for p in people}
        rows = [[p.name, mask_phone(p.phone), units.get(p.unit_id, ""), p.title, "、".join(sorted(roles.get(p.id, []))),
                 p.birth_year or "", "在册" if p.active else "停用"] for p in people]
        counts["人员"] = _sheet(wb.active, "人员", ["姓名", "手机", "单位", "职务", "角色", "出生年份", "状态"], rows)

        for title, header, rows in await mentoring_sheets(session, clock, names, config):
            counts[title] = _sheet(wb.create_sheet(), title, header, rows)
        for fn in other_sheets():
            for title, header, rows in await fn(session, clock, calendar):
                counts[title] = _sheet(wb.create_sheet(), title, header, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return counts


# What makes Excel, LibreOffice or WPS read a cell as a formula, per OWASP's CSV-injection guidance.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: object) -> object:
    """A cell value that can only ever be data. Text starting like a formula gets a leading ``'``
    (OWASP: it stays inert even if the sheet is saved as CSV or the cell is edited); other values
    pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _sheet(ws, title: str, header: list[str], rows: list[list]) -> int:
    """Every sheet is written here, so every cell people typed (a letter, a note, a name) is text:
    openpyxl makes a formula of any string starting with ``=``, which runs when staff open the
    workbook (issue 11) — so strings are neutralised and typed as strings (``data_type = "s"``)."""
    from openpyxl.utils import get_column_letter

    ws.title = title
    ws.append(header)
    for row in rows:
        ws.append([as_text(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    for i, name in enumerate(header, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, len(name) * 2 + 4)
    ws.freeze_panes = "A2"
    return len(rows)


VERDICTS = {"preferred": "优先确定为优秀（优秀导师）", "eligible": "具备评优评先资格", "pending": "待定（徒弟考核未录齐）",
            "ineligible": "不具备评优评先资格", "none": "帮带时间不足，不参与", "dismissed": "已清退"}


async def mentoring_sheets(session: AsyncSession, clock: Clock, names: dict[int, str],
                           config: Config | None = None) -> SheetRows:
    """结对 (every 帮带, its mentors now and its history), 联系记录 (with the mentors who took part),
    培养计划, 季评 and 捆绑考核 — from the same record and query functions as the chat figures.
    Dates are Beijing days."""
    programme = (config or Config()).programme
    today = clock.today()
    views = [v.as_of(None) for v in await load_pairs(session, active_only=False)]
    latest = await last_face_before(session, [v.id for v in views], today + dt.timedelta(days=1))
    sheets: SheetRows = []
    rows = []
    for v in views:
        p = v.pairing
        history = "；".join(
            f"{e['day']:%Y-%m-%d} {e['name']}{'起任导师' if e['kind'] == 'start' else '被清退' if e['kind'] == 'dismissed' else '卸任'}"
            + (f"（{e['reason']}）" if e["reason"] else "") for e in v.history())
        rows.append([v.mentee.name, "、".join(m.name for m in v.mentors), next((m.name for m in v.mentors if m.id == v.lead_id), ""),
                     p.start_date, p.agreement_date or "", "在册" if p.active else f"暂无导师（{p.end_reason}）",
                     latest.get(v.id, ""), lapsed_weeks(v, today, latest.get(v.id)) if p.active else "", history])
    sheets.append(("结对", ["徒弟", "导师", "牵头导师", "开始日期", "协议签订日期", "状态", "最近面谈", "连续未面谈周数", "导师变更"], rows))
    label = {v.id: v.mentee.name for v in views}
    took_part: dict[int, list[str]] = {}
    for cid, pid in (await session.exec(select(ContactMentor.contact_id, ContactMentor.person_id))).all():
        took_part.setdefault(cid, []).append(names.get(pid, ""))
    logs = (await session.exec(select(ContactLog).order_by(ContactLog.day, ContactLog.id))).all()
    rows = [[c.day, label.get(c.pairing_id, ""), names.get(c.author_id, ""), "、".join(took_part.get(c.id, [])), c.mode, c.note,
             AREAS.get(c.area, "")] for c in logs]
    sheets.append(("联系记录", ["日期", "徒弟", "记录人", "参与导师", "方式", "内容", "领域"], rows))
    items = (await session.exec(select(PlanItem).order_by(PlanItem.pairing_id, PlanItem.seq))).all()
    rows = [[label.get(i.pairing_id, ""), i.seq, i.text, "已完成" if i.done_at else "未完成",
             beijing_day(i.done_at) if i.done_at else "", AREAS.get(i.area, "")] for i in items]
    sheets.append(("培养计划", ["徒弟", "序号", "内容", "状态", "完成日期", "领域"], rows))
    reviews = (await session.exec(select(PairReview).order_by(PairReview.quarter, PairReview.pairing_id))).all()
    rematch = {r.review.id for r in await rematch_candidates(session, today)}
    rows = [[r.quarter, label.get(r.pairing_id, ""), r.rating, r.comment, "是" if r.id in rematch else ""]
            for r in reviews]
    sheets.append(("季评", ["季度", "徒弟", "评价", "评语", "待调整结对"], rows))
    rows = []
    for v in await bundled_assessment(session, today.year, programme.bundle_min_months):
        grades = "；".join(f"{p.name} {g.grade if g else '未录入'}{'（表彰）' if g and g.commended else ''}"
                          for p, g in v.mentees)
        rows.append([today.year, v.mentor.name, grades, v.contacts, f"{v.plan_done}/{v.plan_total}", VERDICTS[v.status]])
    sheets.append(("捆绑考核", ["年度", "导师", "徒弟考核", "辅导次数", "计划完成", "导师评优资格"], rows))
    rows = []
    quarter_day = dt.date(today.year, 1, 1)
    while quarter_day <= today:  # 五带覆盖 of each quarter of this year so far
        first, last = period_bounds("quarter", quarter_day)
        coverage = await area_coverage(session, views, first, last)
        for v in coverage.views:
            counts = coverage.of(v.id)
            rows.append([period_name("quarter", first), v.mentee.name, v.last_mentors_in(first, last).mentor_names,
                         *counts.values(), "、".join(coverage.missing(v.id))])
        quarter_day = last + dt.timedelta(days=1)
    sheets.append(("五带覆盖", ["季度", "徒弟", "导师", *AREAS.values(), "未涉及"], rows))
    reports = (await session.exec(select(ReviewReport).order_by(ReviewReport.quarter, ReviewReport.pairing_id,
                                                                ReviewReport.id))).all()
    rows = [[r.quarter, label.get(r.pairing_id, ""), names.get(r.mentor_id, ""), r.done, r.problems, r.fixes,
             r.next_focus, beijing_day(r.updated_at)] for r in reports]
    sheets.append(("季评汇报", ["季度", "徒弟", "导师", *REPORT_ITEMS.values(), "汇报日期"], rows))
    classes = (await session.exec(select(OpenClass).order_by(OpenClass.starts_at))).all()
    signups = await signups_of(session, [c.id for c in classes])  # type: ignore[misc]
    rows = []
    for c in classes:
        came = [s for s in signups.get(c.id, []) if s.attended_at is not None]  # type: ignore[arg-type]
        rows.append([c.id, beijing(c.starts_at).strftime("%Y-%m-%d %H:%M"), c.place, c.topic, names.get(c.host_id, ""),
                     len(signups.get(c.id, [])), len(came), "、".join(names.get(s.person_id, "") for s in came)])  # type: ignore[arg-type]
    sheets.append(("开放课堂", ["编号", "时间", "地点", "主题", "授课人", "报名人数", "签到人数", "签到名单"], rows))
    pool = await mentor_pool(session, today, views=views)
    sheets.append(("导师库", ["姓名", "状态", "来源", "理由", "在带徒弟", "曾带徒弟", f"{today.year}年辅导次数", "累计辅导次数",
                             "补助合计（元）", "优秀导师年度"], pool_rows(pool)))
    sheets.append(("导师激励", ["导师", "类型", "月份", "金额（元）", "说明"], incentive_rows(pool)))
    return sheets
