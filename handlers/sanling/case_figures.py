"""预审 cases and 一月一汇报 in 统计 and in the export workbook (listed by ``handlers.stats.sections`` and
``handlers.sheets.export.other_sheets``)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.render import Renderer
from storage.models import MonthlyReport, Person, ReviewCase, Unit

from bot.calendar import WorkCalendar
from handlers.sanling.case_ops import STATUS_LABELS, case_figures, is_overdue, local, people_labels


async def case_stats(session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                     calendar: WorkCalendar) -> str:
    now = clock.now()
    today = now.date()
    year = await case_figures(session, dt.date(today.year, 1, 1), today, now, calendar)
    if not year:
        return ""
    return renderer.text("sanling/stats_cases", year=year, today=today)


async def case_sheets(session: AsyncSession, clock: Clock, calendar: WorkCalendar) -> list[tuple[str, list[str], list[list]]]:
    """预审 cases (the submitter is named: staff export, like the 台账) and the per-procedure figures."""
    now = clock.now()
    cases = list((await session.exec(select(ReviewCase).order_by(ReviewCase.id))).all())
    labels = await people_labels(session, {c.submitter_id for c in cases})
    rows = [
        [c.id, c.title, "联办单" if c.joint else "预审", labels.get(c.submitter_id, ""), STATUS_LABELS.get(c.status, c.status),
         local(c.first_submitted_at).date() if c.first_submitted_at else "", local(c.due_at).date() if c.due_at else "",
         "是" if is_overdue(c, now) else "", local(c.decided_at).date() if c.decided_at else "", c.returns,
         c.return_reason, c.transferred_to]
        for c in cases
    ]
    header = ["编号", "流程", "类型", "申请人", "状态", "首次提交", "时限", "超期", "办结日期", "退回次数", "最近退回原因", "转办部门"]
    today = now.date()
    figures = await case_figures(session, dt.date(today.year, 1, 1), today, now, calendar)
    fig_rows = [[f.title, f.received, f.waiting, f.approved, f.transferred, f.closed, f.returns, f.overdue,
                 f.average_days if f.average_days is not None else ""] for f in figures]
    fig_header = ["流程", "提交", "办理中", "通过", "转办", "联办办结", "退回次数", "超期", "平均办结（工作日）"]
    reports = list((await session.exec(
        select(MonthlyReport, Person.name, Unit.name).join(Person, Person.id == MonthlyReport.liaison_id)
        .join(Unit, Unit.id == MonthlyReport.unit_id, isouter=True).order_by(MonthlyReport.month, MonthlyReport.id))).all())
    report_rows = [[r.id, f"{r.month:%Y-%m}", name, unit or "", r.text, r.thoughts, r.requests,
                    "已办结" if r.requests_closed_at else ("待办" if r.requests else ""), r.requests_answer]
                   for r, name, unit in reports]
    report_header = ["编号", "月份", "联系人", "单位", "汇报", "思想动态", "诉求", "诉求状态", "答复"]
    return [("预审", header, rows), (f"预审统计{today.year}", fig_header, fig_rows), ("一月一汇报", report_header, report_rows)]
