"""The console's HTTP side: routes under ``/console/``, the session cookie, CSRF, rendering.

Pages only gather and show; every figure comes from the query function the chat command, job or
export uses (``handlers.*``, ``bot.console.mentoring_view``). Mailbox actions run the chat command
itself through the gateway, as the staff member, so the submitter is told exactly as from the chat and
the command's checks and audit entries apply; imports call the spreadsheet entry points, the workbook
is ``export_workbook``, retries are ``Outbox.retry`` — what ``bangdai outbox --retry`` calls.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import jinja2
from aiohttp import web

from sqlmodel import col, func, select

from handlers.changqing.signup import signup_counts
from handlers.changqing.records import month_achievements, month_label, month_ranking
from handlers.changqing.squads import squad_summaries, squad_view
from handlers.sheets.squads import import_squads
from handlers.sheets.export import export_workbook
from handlers.sheets.imports import import_pairs
from handlers.sheets.roster import import_roster
from handlers.sheets.liaisons import import_liaisons
from handlers.sanling.mailbox import (CATEGORIES, OVERDUE_WORKDAYS, STATUS_LABELS, local, open_queue,
                              staff_view)
from handlers.mentoring.queries import review_status, week_compliance
from handlers.mentoring.pairs import load_pairs
from handlers.sanling.visits import visit_figures
from storage.models import AREAS, REPORT_ITEMS, Inquiry, InquiryAnswer, OutboxStatus, Person

from ..audit import audit
from ..clock import period_name
from ..inbound import InboundMessage
from ..render import _cn_date, _percent, _weekday
from ..services import Services
from ..text import mask_phone
from . import auth, mentoring_view, programme_view

COOKIE = "bangdai_console"
PAGE_SIZE = 50
IMPORT_KINDS = {"roster": "花名册", "pairs": "结对表", "liaisons": "三联名单", "squads": "常青藤编组表"}
UPLOAD_SUFFIXES = (".xlsx", ".csv")
UPLOAD_MINUTES = 30
OUTBOX_LABELS = {"queued": "排队", "sending": "发送中", "sent": "已发送", "failed": "失败", "undeliverable": "无法送达"}
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_YEAR = re.compile(r"^\d{4}$")
_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


@dataclass
class StaffVisit:
    """One authenticated request: who, their cookie (for CSRF tokens), and the posted form."""

    sender: Any
    cookie: str
    form: Any = None

    @property
    def csrf(self) -> str:
        return auth.csrf_token(self.cookie)


@dataclass
class Upload:
    person_id: int
    kind: str
    path: Path
    at: dt.datetime


Page = Callable[["Console", web.Request, StaffVisit], Awaitable[web.StreamResponse]]


def staff_only(fn: Page) -> Callable[["Console", web.Request], Awaitable[web.StreamResponse]]:
    """A session of active staff, and on a POST the form's CSRF token, or the request goes no further."""

    @functools.wraps(fn)
    async def wrapper(self: "Console", request: web.Request) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE, "")
        async with self.services.db.transaction() as session:
            sender = await auth.current(session, cookie, self.services.clock.now(), self.services.config)
        if sender is None:
            return self.render("signed_out.html", status=401)
        form = None
        if request.method == "POST":
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                return self.render("data.html", StaffVisit(sender, cookie), status=413, kinds=IMPORT_KINDS,
                                   problem="too_big")
            if not auth.csrf_ok(cookie, form.get("csrf")):  # type: ignore[arg-type]
                return self.render("refused.html", status=403, reason="csrf")
        return await fn(self, request, StaffVisit(sender, cookie, form))

    return wrapper


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


class Console:
    """The console of one running service (``Bangdai``): its services, gateway and scheduler."""

    def __init__(self, services: Services, gateway: Any, scheduler: Any) -> None:
        self.services, self.gateway, self.scheduler = services, gateway, scheduler
        self.base = auth.console_base(services.config) or ""
        self.secure = self.base.startswith("https://")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(Path(services.config.programme.templates_dir) / "console")),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self.env.filters.update(mask_phone=mask_phone, cn_date=_cn_date, weekday=_weekday,
                                local=lambda t: t.astimezone(services.clock.tz) if t else t, plain=_plain,
                                num=_number)
        self.env.globals.update(percent=_percent, PAGE_SIZE=PAGE_SIZE)
        self.uploads: dict[str, Upload] = {}
        self._folder: Path | None = None

    @property
    def _upload_dir(self) -> Path:
        """Where uploads wait for their confirmation and exports are written: made on first use,
        removed when the server stops."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="bangdai-console-"))
        return self._folder

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/console/login", self.login_page)
        r.add_post("/console/login", self.login)
        r.add_post("/console/logout", self.logout)
        r.add_get("/console", self.to_index)
        r.add_get("/console/", self.overview)
        r.add_get("/console/pairs", self.pairs)
        r.add_get("/console/pairs/{mentee_id:\\d+}", self.pair)
        r.add_get("/console/mailbox", self.mailbox)
        r.add_get("/console/mailbox/{number:\\d+}", self.inquiry)
        r.add_post("/console/mailbox/{number:\\d+}/{action:answer|category|close}", self.inquiry_action)
        r.add_get("/console/mentors", self.mentors)
        r.add_get("/console/changqing", self.changqing)
        r.add_get("/console/changqing/people/{person_id:\\d{1,9}}", self.changqing_person)
        r.add_get("/console/data", self.data)
        r.add_post("/console/data/check", self.data_check)
        r.add_post("/console/data/confirm", self.data_confirm)
        r.add_get("/console/data/export.xlsx", self.export)
        r.add_get("/console/outbox", self.outbox)
        r.add_post("/console/outbox/retry", self.outbox_retry)
        app.on_cleanup.append(lambda _app: self.close())

    async def to_index(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    async def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    # --- rendering --------------------------------------------------------------------------------

    def render(self, template: str, visit: StaffVisit | None = None, status: int = 200, **values: Any) -> web.Response:
        body = self.env.get_template(template).render(
            me=visit.sender if visit else None, csrf=visit.csrf if visit else "", today=self.services.clock.today(),
            now=self.services.clock.now(), **values)
        return web.Response(text=body, status=status, content_type="text/html", headers=self._headers())

    @staticmethod
    def _headers() -> dict[str, str]:
        # No referrer: the login link's secret is in its URL. No framing, no caching of staff data.
        return {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff"}

    # --- login and logout ----------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.Response:
        """The link lands here and only shows a button: link previews and scanners that fetch the URL
        must not spend it. The POST of the button does."""
        secret = request.query.get("t", "")
        async with self.services.db.transaction() as session:
            state = await auth.check_link(session, secret, self.services.clock.now())
        if state.state != "ok":
            return self.render("refused.html", status=403, reason=state.state)
        return self.render("login.html", token=secret, minutes=self.services.config.console.link_minutes)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        async with self.services.db.transaction() as session:
            state, cookie = await auth.use_link(session, str(form.get("t", "")), self.services.clock.now(),
                                                self.services.config)
        if cookie is None:
            return self.render("refused.html", status=403, reason=state.state)
        response = web.Response(status=302, headers={**self._headers(), "Location": "/console/"})
        response.set_cookie(COOKIE, cookie, path="/console", httponly=True, samesite="Strict", secure=self.secure,
                            max_age=int(self.services.config.console.session_hours * 3600))
        return response

    @staff_only
    async def logout(self, request: web.Request, visit: StaffVisit) -> web.Response:
        now = self.services.clock.now()
        async with self.services.db.transaction() as session:
            await auth.end_session(session, visit.cookie, now)
            audit(session, now, visit.sender, "console.logout", via="page")
        response = self.render("signed_out.html", bye=True)
        response.del_cookie(COOKIE, path="/console")
        return response

    # --- 概览 ------------------------------------------------------------------------------------

    @staff_only
    async def overview(self, request: web.Request, visit: StaffVisit) -> web.Response:
        now = self.services.clock.now()
        today = now.date()
        async with self.services.db.transaction() as session:
            views = await load_pairs(session, active_only=False)  # one read for both figures
            week = await week_compliance(session, today, views=views)
            reviews = await review_status(session, period_name("quarter", today), views)
            queue = await open_queue(session, now, self.services.calendar)
            signed, retired = await signup_counts(session)
            visits = await visit_figures(session, today)
            rematch = await programme_view.rematch_rows(session, today, views)
        runs = self.scheduler.upcoming()
        counts = await self.services.outbox.counts()
        problems = await self.services.outbox.problems(limit=5)
        return self.render("overview.html", visit, week=week, reviews=reviews, queue=queue,
                           overdue=sum(v["overdue"] for v in queue), signed=signed, retired=retired, visits=visits,
                           runs=[(at.astimezone(self.services.clock.tz), name, what) for at, name, what in runs[:6]],
                           scheduling=self.services.config.schedule.enabled,
                           counts=counts, problems=problems, labels=OUTBOX_LABELS, rematch=rematch,
                           items=REPORT_ITEMS)

    # --- 帮带 ------------------------------------------------------------------------------------

    @staff_only
    async def pairs(self, request: web.Request, visit: StaffVisit) -> web.Response:
        today = self.services.clock.today()
        unit_id = _int(request.query.get("unit"))
        state = request.query.get("state") if request.query.get("state") in mentoring_view.STATES else None
        page = _page(request, "page")
        async with self.services.db.transaction() as session:
            records, total, units = await mentoring_view.mentee_records(
                session, today, unit_id=unit_id, state=state, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
            areas = await programme_view.areas_of(session, [r.view for r in records], today)
        return self.render("pairs.html", visit, records=records, total=total, units=units, unit_id=unit_id,
                           state=state, states=mentoring_view.STATES, page=page, areas=areas, area_names=AREAS,
                           query={"unit": unit_id or "", "state": state or ""})

    @staff_only
    async def pair(self, request: web.Request, visit: StaffVisit) -> web.Response:
        today = self.services.clock.today()
        async with self.services.db.transaction() as session:
            history = await mentoring_view.mentee_history(session, int(request.match_info["mentee_id"]), today,
                                                          self.services.config.programme.bundle_min_months)
            areas = await programme_view.areas_of(session, [history.record.view], today) if history else None
        if history is None:
            return self.render("not_found.html", visit=visit, status=404, what="帮带")
        return self.render("pair.html", visit, h=history, areas=areas, area_names=AREAS)

    # --- 导师库 / 课堂 -------------------------------------------------------------------------------

    @staff_only
    async def mentors(self, request: web.Request, visit: StaffVisit) -> web.Response:
        """导师库 (``导师 库``) and the open classes (``课堂 #编号``), each paged on its own."""
        today = self.services.clock.today()
        page, cpage = _page(request, "page"), _page(request, "cpage")
        async with self.services.db.transaction() as session:
            entries, total = await programme_view.pool_page(session, today, (page - 1) * PAGE_SIZE, PAGE_SIZE)
            classes, classes_total = await programme_view.class_page(session, (cpage - 1) * PAGE_SIZE, PAGE_SIZE)
        return self.render("mentors.html", visit, entries=entries, total=total, page=page, classes=classes,
                           classes_total=classes_total, cpage=cpage, query={"cpage": cpage}, cquery={"page": page})

    # --- 信箱 ------------------------------------------------------------------------------------

    @staff_only
    async def mailbox(self, request: web.Request, visit: StaffVisit) -> web.Response:
        now = self.services.clock.now()
        show = request.query.get("show", "open")
        page = _page(request, "page")
        async with self.services.db.transaction() as session:
            queue = await open_queue(session, now, self.services.calendar)
            if show == "all":
                total = (await session.exec(select(func.count()).select_from(Inquiry))).one()
                rows = list((await session.exec(select(Inquiry).order_by(col(Inquiry.id).desc())
                                                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))).all())
                views = await staff_view(session, rows, now, self.services.calendar)
            else:
                show, total = "open", len(queue)
                views = queue[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        return self.render("mailbox.html", visit, views=views, total=total, open=len(queue),
                           overdue=sum(v["overdue"] for v in queue), days=OVERDUE_WORKDAYS, labels=STATUS_LABELS,
                           show=show, page=page, query={"show": show})

    async def _inquiry_page(self, visit: StaffVisit, number: int, result: list[str] | None = None,
                            status: int = 200) -> web.Response:

        async with self.services.db.transaction() as session:
            inquiry = await session.get(Inquiry, number)
            if inquiry is None:
                return self.render("not_found.html", visit=visit, status=404, what=f"来信 #{number}")
            view = (await staff_view(session, [inquiry], self.services.clock.now(), self.services.calendar))[0]
            answers = (await session.exec(select(InquiryAnswer, Person.name).join(Person, Person.id == InquiryAnswer.author_id)
                                          .where(InquiryAnswer.inquiry_id == number).order_by(InquiryAnswer.id))).all()
        return self.render("inquiry.html", visit, status=status, v=view, labels=STATUS_LABELS, categories=CATEGORIES,
                           answers=[(a, name, local(a.created_at)) for a, name in answers], result=result,
                           nonce=secrets.token_urlsafe(12))

    @staff_only
    async def inquiry(self, request: web.Request, visit: StaffVisit) -> web.Response:
        return await self._inquiry_page(visit, int(request.match_info["number"]))

    @staff_only
    async def inquiry_action(self, request: web.Request, visit: StaffVisit) -> web.Response:
        """Answer, re-categorise or close: the chat command, run through the gateway as this staff
        member. The form's nonce is the message id, so a form sent twice acts once."""
        number, action = int(request.match_info["number"]), request.match_info["action"]
        form = visit.form
        field = {"answer": "text", "category": "category", "close": "reason"}[action]
        words = str(form.get(field, "")).replace("\r\n", "\n").strip()
        if action != "answer":
            words = " ".join(words.split())
        command = {"answer": "答复 #{n} {w}", "category": "信箱 分类 #{n} {w}", "close": "信箱 关闭 #{n} {w}"}[action]
        nonce = str(form.get("nonce", ""))[:40] or secrets.token_urlsafe(12)
        message = InboundMessage(channel=auth.CHANNEL, sender_id=f"person:{visit.sender.id}",
                                 conversation_id=f"console:{visit.sender.id}",
                                 text=command.format(n=number, w=words), msg_id=f"{visit.sender.id}:{nonce}",
                                 received_at=self.services.clock.now())
        replies = await self.gateway.handle(message, as_person=visit.sender.id)
        return await self._inquiry_page(visit, number, result=[r.text for r in replies])

    # --- 常青藤 ----------------------------------------------------------------------------------

    @staff_only
    async def changqing(self, request: web.Request, visit: StaffVisit) -> web.Response:
        today = self.services.clock.today()
        day = today.replace(day=1)
        if m := _MONTH.match(request.query.get("month", "")):
            year, month = int(m.group(1)), int(m.group(2))
            if 1 <= month <= 12 and dt.date(year, month, 1) <= today and year >= 2000:
                day = dt.date(year, month, 1)
        page = _page(request, "page")
        year, bad_year = self._year(request)
        spage, ppage = _page(request, "spage"), _page(request, "ppage")
        async with self.services.db.transaction() as session:
            scores, scores_total = await programme_view.score_page(session, year, (spage - 1) * PAGE_SIZE, PAGE_SIZE)
            projects, projects_total = await programme_view.project_page(session, (ppage - 1) * PAGE_SIZE, PAGE_SIZE)
            ranking = await month_ranking(session, day)
            by_tf = await squad_summaries(session)
            squads = {s["name"]: await squad_view(session, s["squad"], today.year) for rows in by_tf.values() for s in rows}
            achievements = await month_achievements(session, day, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
            signed, retired = await signup_counts(session)
        months = []
        cursor = today.replace(day=1)
        for _ in range(12):
            months.append(cursor)
            cursor = (cursor - dt.timedelta(days=1)).replace(day=1)
        return self.render("changqing.html", visit, ranking=ranking, month=day, month_label=month_label(day),
                           months=months, by_tf=by_tf, squads=squads, achievements=achievements[:PAGE_SIZE],
                           more=len(achievements) > PAGE_SIZE, page=page, signed=signed, retired=retired,
                           query={"month": f"{day.year}-{day.month:02d}"}, year=year, bad_year=bad_year,
                           years=range(today.year, today.year - 5, -1), scores=scores, scores_total=scores_total,
                           spage=spage, projects=projects, projects_total=projects_total, ppage=ppage)

    def _year(self, request: web.Request) -> tuple[int, str]:
        """The ``year`` asked for (2000 up to this year, as ``实绩 考核 年份`` takes it), or this year and
        the word that was not a year."""
        today = self.services.clock.today()
        word = request.query.get("year", "")
        if _YEAR.match(word) and 2000 <= int(word) <= today.year:
            return int(word), ""
        return today.year, word[:20]

    @staff_only
    async def changqing_person(self, request: web.Request, visit: StaffVisit) -> web.Response:
        """个人实绩档案 (``实绩 档案 姓名 年份``)."""
        year, bad_year = self._year(request)
        page = _page(request, "page")
        async with self.services.db.transaction() as session:
            archive = await programme_view.archive_of(session, int(request.match_info["person_id"]), year,
                                                      (page - 1) * PAGE_SIZE, PAGE_SIZE)
        if archive is None:
            return self.render("not_found.html", visit=visit, status=404, what="这个人")
        return self.render("changqing_person.html", visit, a=archive, bad_year=bad_year, page=page,
                           years=range(self.services.clock.today().year, self.services.clock.today().year - 5, -1))

    # --- 导入/导出 -------------------------------------------------------------------------------

    @staff_only
    async def data(self, request: web.Request, visit: StaffVisit) -> web.Response:
        return self.render("data.html", visit, kinds=IMPORT_KINDS)

    def _import_fn(self, kind: str):

        return {"roster": import_roster, "pairs": import_pairs, "liaisons": import_liaisons, "squads": import_squads}[kind]

    def _forget_old_uploads(self, now: dt.datetime) -> None:
        for key, upload in list(self.uploads.items()):
            if now - upload.at > dt.timedelta(minutes=UPLOAD_MINUTES):
                shutil.rmtree(upload.path.parent, ignore_errors=True)
                del self.uploads[key]

    @staff_only
    async def data_check(self, request: web.Request, visit: StaffVisit) -> web.Response:
        """Keep the upload, run the import as a dry run (nothing written) and show it row by row."""
        form, now = visit.form, self.services.clock.now()
        kind = str(form.get("kind", ""))
        upload = form.get("file")
        if kind not in IMPORT_KINDS:
            return self.render("data.html", visit, status=400, kinds=IMPORT_KINDS, problem="kind")
        if not isinstance(upload, web.FileField) or not upload.filename:
            return self.render("data.html", visit, status=400, kinds=IMPORT_KINDS, problem="file")
        name = _SAFE_NAME.sub("_", Path(upload.filename).name)[-80:]
        if not name.lower().endswith(UPLOAD_SUFFIXES):
            return self.render("data.html", visit, status=400, kinds=IMPORT_KINDS, problem="suffix", name=name)
        self._forget_old_uploads(now)
        key = secrets.token_urlsafe(16)
        folder = self._upload_dir / key
        folder.mkdir()
        path = folder / name
        path.write_bytes(upload.file.read())
        self.uploads[key] = Upload(visit.sender.id, kind, path, now)
        report = await self._import_fn(kind)(self.services.db, path, now=now, dry_run=True,
                                             actor=visit.sender.name)
        async with self.services.db.transaction() as session:  # the dry run's own audit entry rolled back
            audit(session, now, visit.sender, "console.import_check", target=name, kind=kind,
                       errors=len(report.errors), fatal=bool(report.fatal))
        return self.render("import_report.html", visit, report=report, kind=kind, kinds=IMPORT_KINDS, key=key,
                           name=name, rows=_report_rows(report), dry_run=True,
                           fatal=report.fatal_text(), warnings=report.warning_texts())

    @staff_only
    async def data_confirm(self, request: web.Request, visit: StaffVisit) -> web.Response:
        now = self.services.clock.now()
        key = str(visit.form.get("key", ""))
        upload = self.uploads.get(key)
        if upload is None or upload.person_id != visit.sender.id or now - upload.at > dt.timedelta(minutes=UPLOAD_MINUTES):
            return self.render("data.html", visit, status=400, kinds=IMPORT_KINDS, problem="expired")
        del self.uploads[key]
        try:
            report = await self._import_fn(upload.kind)(self.services.db, upload.path, now=now,
                                                        actor=visit.sender.name)
        finally:
            shutil.rmtree(upload.path.parent, ignore_errors=True)
        async with self.services.db.transaction() as session:
            audit(session, now, visit.sender, "console.import", target=upload.path.name, kind=upload.kind,
                       created=report.created, updated=report.updated, errors=len(report.errors))
        return self.render("import_report.html", visit, report=report, kind=upload.kind, kinds=IMPORT_KINDS,
                           key="", name=upload.path.name, rows=_report_rows(report), dry_run=False,
                           fatal=report.fatal_text(), warnings=report.warning_texts())

    @staff_only
    async def export(self, request: web.Request, visit: StaffVisit) -> web.StreamResponse:
        now = self.services.clock.now()
        folder = Path(tempfile.mkdtemp(prefix="export-", dir=self._upload_dir))
        try:
            path = folder / "帮带台账.xlsx"
            counts = await export_workbook(self.services.db, path, self.services.clock, self.services.config)
            async with self.services.db.transaction() as session:
                audit(session, now, visit.sender, "console.export", target=path.name, rows=sum(counts.values()))
            body = path.read_bytes()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        name = f"帮带台账-{now:%Y%m%d}.xlsx"
        return web.Response(body=body, headers={
            **self._headers(),
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f"attachment; filename=\"bangdai-{now:%Y%m%d}.xlsx\"; filename*=UTF-8''{quote(name)}"})

    # --- 发送 ------------------------------------------------------------------------------------

    @staff_only
    async def outbox(self, request: web.Request, visit: StaffVisit, retried: int | None = None) -> web.Response:
        page = _page(request, "page")
        counts = await self.services.outbox.counts()
        problems = await self.services.outbox.problems(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        total = counts.get(OutboxStatus.FAILED, 0) + counts.get(OutboxStatus.UNDELIVERABLE, 0)
        return self.render("outbox.html", visit, counts=counts, labels=OUTBOX_LABELS, problems=problems, total=total,
                           page=page, retried=retried, query={})

    @staff_only
    async def outbox_retry(self, request: web.Request, visit: StaffVisit) -> web.Response:
        ids = [i for i in (_int(v) for v in visit.form.getall("id", [])) if i is not None]
        retried = await self.services.outbox.retry(ids) if ids else 0
        async with self.services.db.transaction() as session:
            audit(session, self.services.clock.now(), visit.sender, "console.outbox_retry",
                       ids=ids, retried=retried)
        return await Console.outbox.__wrapped__(self, request, visit, retried=retried)  # type: ignore[attr-defined]


def _page(request: web.Request, key: str) -> int:
    """A page number from the query: anything but a whole number from 1 up is the first page."""
    return min(max(_int(request.query.get(key), 1) or 1, 1), 100_000)


def _report_rows(report: Any) -> list[tuple[int, str, str]]:
    """(line, outcome, reason) for every row the import looked at, in file order."""
    words = {"created": "新增", "updated": "更新", "unchanged": "未变"}
    rows = [(line, words.get(outcome, outcome), "") for line, outcome in report.outcomes]
    rows += [(line, "出错", reason) for line, reason in report.errors]
    return sorted(rows)


def _number(value: float) -> str:
    """1.5, 4.25, 2 — scores and coefficients as the chat writes them."""
    return ("%.2f" % value).rstrip("0").rstrip(".")


def _plain(text: str) -> str:
    """A chat reply shown on a page: the markdown emphasis marks dropped (the page escapes the rest)."""
    return text.replace("**", "")
