"""A programme year lived through the real gateway, checked every week against a small reference model.

The model below is written from SPEC §3a, not from the product's queries: plain lists of mentor
intervals, contacts, plan items, 季评 and grades, and the rules as the SPEC states them. Each seed draws
a year of re-pairings, team changes, 清退, ends, contacts on random days and hours (00:30 and 23:30
Beijing time included), plan items, 季评 and grades; they are sent as chat messages through
``Gateway.handle`` with the frozen clock moving forward, and after every simulated week every figure
the product reports (本周 per 帮带, staff compliance and lapsed, the reminder's recipients, 季评 of the
quarter, 捆绑考核) is compared with the model's. A disagreement names the seed, the day and the figure.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.clock import TZ
from bot.gateway import Gateway
from bot.inbound import InboundMessage
from conftest import DEFAULT_NOW, PG_URL, write
from handlers.mentoring import queries as Q
from handlers.sheets.roster import import_roster
from handlers.mentoring.pairs import load_pairs

MENTORS = ["张伟", "王芳", "刘洋", "陈杰", "杨帆", "赵磊", "黄勇"]
MENTEES = ["李娜", "孙磊", "周敏", "吴静", "郑浩", "冯雪"]
STAFF = "陈静"
NEVER_PAIRED = "冯雪"  # never gets a 帮带: her grade must be refused
MODES = ["面谈", "电话", "视频", "线上"]
RATINGS = ["好", "较好", "一般", "差"]
GRADES = ["优秀", "称职", "基本称职", "不称职"]
YEAR = 2026
SEEDS = int(os.environ.get("BANGDAI_MODEL_SEEDS", "50"))
if PG_URL:
    SEEDS = min(SEEDS, 2)  # it does not depend on the database kind: the SQLite pass runs the 50


# --- the reference model (SPEC §3a) --------------------------------------------------------------

@dataclass
class Interval:
    mentor: str
    start: dt.date
    end: dt.date | None = None  # exclusive
    dismissed: bool = False

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    def days(self, first: dt.date, last: dt.date) -> int:
        """Days of ``first``..``last`` inside the interval."""
        lo = max(first, self.start)
        hi = last if self.end is None else min(last, self.end - dt.timedelta(days=1))
        return max(0, (hi - lo).days + 1)


def _days(first: dt.date, last: dt.date):
    d = first
    while d <= last:
        yield d
        d += dt.timedelta(days=1)


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def quarter_of(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_days(label: str) -> tuple[dt.date, dt.date]:
    year, q = int(label[:4]), int(label[-1])
    first = dt.date(year, 3 * q - 2, 1)
    nxt = dt.date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return first, nxt - dt.timedelta(days=1)


@dataclass
class Model:
    intervals: dict[str, list[Interval]] = field(default_factory=lambda: defaultdict(list))
    contacts: list[tuple[str, dt.date, str, frozenset]] = field(default_factory=list)  # mentee, day, mode, mentors
    plans: dict[str, list[list]] = field(default_factory=lambda: defaultdict(list))  # mentee -> [created, done]
    reviews: dict[tuple[str, str], str] = field(default_factory=dict)
    grades: dict[tuple[str, int], tuple[str, bool]] = field(default_factory=dict)
    dismissed: set[str] = field(default_factory=set)

    # who mentors whom
    def current(self, mentee: str, day: dt.date) -> list[str]:
        return [i.mentor for i in self.intervals[mentee] if i.end is None and i.start <= day]

    def mentees_of(self, mentor: str) -> list[str]:
        return [t for t, ivs in self.intervals.items() if any(i.mentor == mentor and i.end is None for i in ivs)]

    def mentored(self, mentee: str, first: dt.date, last: dt.date) -> bool:
        return any(i.days(first, last) for i in self.intervals[mentee])

    def set_mentors(self, mentee: str, mentors: list[str], day: dt.date) -> None:
        now = self.current(mentee, day)
        for i in self.intervals[mentee]:
            if i.end is None and i.mentor not in mentors:
                i.end = day
        for m in mentors:
            if m not in now:
                self.intervals[mentee].append(Interval(m, day))

    def end(self, mentee: str, day: dt.date) -> None:
        for i in self.intervals[mentee]:
            if i.end is None:
                i.end = day

    def dismiss(self, mentor: str, day: dt.date) -> None:
        self.dismissed.add(mentor)
        for ivs in self.intervals.values():
            for i in ivs:
                if i.mentor == mentor and i.end is None:
                    i.end, i.dismissed = day, True

    # figures
    def faces(self, mentee: str, first: dt.date, last: dt.date) -> bool:
        days = self.face_days[mentee]
        return any(d in days for d in _days(first, last))

    @property
    def face_days(self) -> dict[str, set[dt.date]]:
        out: dict[str, set[dt.date]] = defaultdict(set)
        for c in self.contacts:
            if c[2] == "面谈":
                out[c[0]].add(c[1])
        return out

    def compliance(self, day: dt.date) -> dict:
        first, last = monday(day), monday(day) + dt.timedelta(days=6)
        counted = {t for t in self.intervals if self.mentored(t, first, last)}
        done = {t for t in counted if self.faces(t, first, last)}
        lapsed = {}
        for t in self.intervals:
            if not any(i.covers(day) for i in self.intervals[t]) or self.faces(t, first, day):
                continue
            n, w = 0, first - dt.timedelta(days=7)
            while self.mentored(t, w, w + dt.timedelta(days=6)) and not self.faces(t, w, w + dt.timedelta(days=6)):
                n, w = n + 1, w - dt.timedelta(days=7)
            if n >= 2:
                lapsed[t] = n
        return {"total": len(counted), "done": done, "missing": counted - done, "lapsed": lapsed}

    def reminder(self, day: dt.date) -> dict:
        out = {}
        for t, ivs in self.intervals.items():
            now = sorted(i.mentor for i in ivs if i.covers(day))
            if now and not self.faces(t, monday(day), day):
                out[t] = {t, *now}
        return out

    def week(self, mentee: str, day: dt.date) -> dict:
        first, last = monday(day), monday(day) + dt.timedelta(days=6)
        qf, ql = quarter_days(quarter_of(day))
        mine = [c for c in self.contacts if c[0] == mentee]
        return {"face": any(c[2] == "面谈" and first <= c[1] <= last for c in mine),
                "week": sum(1 for c in mine if first <= c[1] <= last),
                "quarter": sum(1 for c in mine if qf <= c[1] <= ql),
                "plan": (sum(1 for p in self.plans[mentee] if p[1] is not None), len(self.plans[mentee]))}

    def review_list(self, quarter: str) -> dict:
        first, last = quarter_days(quarter)
        counted = {t for t in self.intervals if self.mentored(t, first, last)}
        reviewed = {t: self.reviews[(t, quarter)] for t in counted if (t, quarter) in self.reviews}
        counts = {r: sum(1 for v in reviewed.values() if v == r) for r in RATINGS}
        return {"total": len(counted), "pending": counted - set(reviewed), "counts": {k: v for k, v in counts.items() if v}}

    def assessment(self, year: int, min_months: int = 3) -> dict:
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
        days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        dismissed = set()
        for t, ivs in self.intervals.items():
            for i in ivs:
                n = i.days(first, last)
                if n:
                    days[i.mentor][t] += n
                if i.dismissed and i.end is not None and first <= i.end <= last:
                    dismissed.add(i.mentor)
        out = {}
        for mentor in set(days) | dismissed:
            counted = sorted(t for t, n in days[mentor].items() if n >= 30 * min_months)
            grades = [self.grades.get((t, year)) for t in counted]
            if mentor in dismissed:
                status = "dismissed"
            elif not counted:
                status = "none"
            elif any(g and g[0] in ("基本称职", "不称职") for g in grades):
                status = "ineligible"
            elif any(g is None for g in grades):
                status = "pending"
            elif all(g[0] == "优秀" or g[1] for g in grades):  # type: ignore[index]
                status = "preferred"
            else:
                status = "eligible"
            plans = [p for t in counted for p in self.plans[t] if p[0] <= last]
            out[mentor] = {"status": status, "mentees": counted,
                           "contacts": sum(1 for c in self.contacts if mentor in c[3] and first <= c[1] <= last),
                           "plan": (sum(1 for p in plans if p[1] is not None and p[1] <= last), len(plans))}
        return out


# --- driving the product -------------------------------------------------------------------------

ROSTER = "姓名,手机,单位,角色,本地ID\n" + "".join(
    f"{name},1380000{i:04d},县委组织部,{role},{uid}\n"
    for i, (name, role, uid) in enumerate(
        [(m, "导师", f"m{i}") for i, m in enumerate(MENTORS)] + [(t, "徒弟", f"t{i}") for i, t in enumerate(MENTEES)]
        + [(STAFF, "组工干部", "s")]))
UID = {m: f"m{i}" for i, m in enumerate(MENTORS)} | {t: f"t{i}" for i, t in enumerate(MENTEES)} | {STAFF: "s"}


class Sim:
    def __init__(self, seed: int, services, gateway: Gateway) -> None:
        self.seed, self.services, self.gateway = seed, services, gateway
        self.rng = random.Random(seed)
        self.model = Model()
        self.n = 0
        self.log: list[str] = []

    async def say(self, who: str, text: str) -> str:
        self.n += 1
        self.log.append(f"{self.services.clock.now():%m-%d %H:%M} {who}: {text}")
        replies = await self.gateway.handle(InboundMessage("local", UID[who], UID[who], text, msg_id=None))
        return "\n".join(r.text for r in replies)

    def fail(self, day: dt.date, figure: str, product, model) -> None:
        tail = "\n".join(self.log[-8:])
        if os.environ.get("BANGDAI_MODEL_DEBUG"):
            tail += "\n" + "\n".join(f"{t}: {ivs}" for t, ivs in self.model.intervals.items())
            tail += "\n" + "\n".join(f"{c}" for c in self.model.contacts if c[2] == "面谈")
        pytest.fail(f"seed {self.seed}, {day}: {figure} differs\n product: {product}\n model:   {model}\n"
                    f"last messages:\n{tail}", pytrace=False)

    async def act(self, day: dt.date) -> None:
        m, rng = self.model, self.rng
        free = [t for t in MENTEES if t != NEVER_PAIRED]
        roll = rng.random()
        if roll < 0.25:  # 结对 / re-pairing / a team change
            mentee = rng.choice(free)
            pool = [x for x in MENTORS if x not in m.dismissed]
            team = rng.sample(pool, rng.choice([1, 1, 1, 2, 2, 3]))
            reason = rng.choice(["工作调整", "性格不匹配", "增加导师", "纠正误操作"])
            reply = await self.say(STAFF, f"结对 确认 {mentee} {'、'.join(team)} {reason}")
            assert "结对" in reply or "导师" in reply, reply
            m.set_mentors(mentee, team, day)
        elif roll < 0.29:
            mentee = rng.choice(free)
            if m.current(mentee, day):
                await self.say(STAFF, f"结对 结束 {mentee} 调离本县")
                m.end(mentee, day)
        elif roll < 0.31:
            busy = [x for x in MENTORS if m.mentees_of(x)]
            if busy:
                mentor = rng.choice(busy)
                reply = await self.say(STAFF, f"清退 {mentor} 帮带不到位")
                assert "已清退导师" in reply, reply
                m.dismiss(mentor, day)

    async def contact(self, day: dt.date) -> None:
        m, rng = self.model, self.rng
        active = [t for t in MENTEES if m.current(t, day)]
        if not active:
            return
        mentee = rng.choice(active)
        mentors = m.current(mentee, day)
        on = day - dt.timedelta(days=rng.randint(0, day.weekday()))  # a day of this week, up to today
        mode = rng.choice(MODES)
        note = f"第{self.n}次联系"
        if rng.random() < 0.5:
            author = rng.choice(mentors)
            name = f"{mentee} " if len(m.mentees_of(author)) > 1 else ""
            took_part = frozenset([author])
        else:
            author = mentee
            named = rng.choice(mentors) if len(mentors) > 1 and rng.random() < 0.5 else None
            name = f"{named} " if named else ""
            took_part = frozenset([named] if named else mentors)
        text = f"记录 {name}{on.isoformat()} {mode} {note}"
        reply = await self.say(author, text)
        assert "已记录" in reply, reply
        m.contacts.append((mentee, on, mode, took_part))
        if rng.random() < 0.05:  # sent again by mistake: recorded once
            assert "只记一次" in await self.say(author, text)

    async def plan(self, day: dt.date) -> None:
        m, rng = self.model, self.rng
        active = [t for t in MENTEES if m.current(t, day)]
        if not active:
            return
        mentee = rng.choice(active)
        items = m.plans[mentee]
        open_items = [i for i, p in enumerate(items) if p[1] is None]
        if open_items and rng.random() < 0.5:
            k = rng.choice(open_items)
            name = f"{mentee} " if len(m.mentees_of(m.current(mentee, day)[0])) > 1 else ""
            reply = await self.say(m.current(mentee, day)[0], f"计划 {name}完成 {k + 1}")
            assert "已完成第" in reply, reply
            items[k][1] = day
        else:
            mentor = m.current(mentee, day)[0]
            name = f"{mentee} " if len(m.mentees_of(mentor)) > 1 else ""
            reply = await self.say(mentor, f"计划 {name}添加 培养内容{self.n}")
            assert "已添加" in reply or f"第 {len(items) + 1} 项" in reply or "添加" in reply, reply
            items.append([day, None])

    async def review(self, day: dt.date) -> None:
        m, rng = self.model, self.rng
        quarter = quarter_of(day)
        past = quarter_of(quarter_days(quarter)[0] - dt.timedelta(days=1))
        if (day - quarter_days(quarter)[0]).days < 10 and rng.random() < 0.5:
            quarter, word = past, past.replace("-", "") + " "
        else:
            word = ""
        mentee = rng.choice(MENTEES)
        rating = rng.choice(RATINGS)
        reply = await self.say(STAFF, f"季评 {word}{mentee} {rating} 评语")
        if m.mentored(mentee, *quarter_days(quarter)):
            assert f"{quarter} 季评" in reply, reply
            m.reviews[(mentee, quarter)] = rating
        else:
            assert "没有帮带结对" in reply, reply

    async def grade(self, day: dt.date) -> None:
        m, rng = self.model, self.rng
        mentee = rng.choice(MENTEES)
        grade, commended = rng.choice(GRADES), rng.random() < 0.2
        reply = await self.say(STAFF, f"考核 {mentee} {grade}{' 表彰' if commended else ''}")
        if m.mentored(mentee, dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)):
            assert "已录入" in reply, reply
            m.grades[(mentee, YEAR)] = (grade, commended)
        else:
            assert "没有帮带结对" in reply, reply

    async def check(self, day: dt.date, assessment: bool) -> None:
        m = self.model
        async with self.services.db.transaction() as session:
            every = await load_pairs(session, active_only=False)
            c = await Q.week_compliance(session, day, views=every)
            got = {"total": c.total, "done": {v.mentee.name for v in c.done}, "missing": {v.mentee.name for v in c.missing},
                   "lapsed": {v.mentee.name: n for v, n in c.lapsed}}
            want = m.compliance(day)
            for key in got:
                if got[key] != want[key] and os.environ.get("BANGDAI_MODEL_DEBUG"):
                    for v in await load_pairs(session, active_only=False):
                        print(v.mentee.name, [(t.mentor.name, t.start, t.end, t.row.dismissed) for t in v.terms])
                if got[key] != want[key]:
                    self.fail(day, f"staff 本周 {key}", got[key], want[key])
            targets = await Q.reminder_targets(session, day, views=[v for v in every if v.pairing.active])
            got_r = {v.mentee.name: {p.name for p in people} for v, people in targets}
            if got_r != m.reminder(day):
                self.fail(day, "weekly reminder recipients", got_r, m.reminder(day))
            views = [v for v in every if v.pairing.active]
            for s in await Q.week_status(session, views, day):
                t = s["view"].mentee.name
                got_w = {"face": s["face_done"], "week": len(s["contacts"]), "quarter": s["quarter_count"],
                         "plan": (s["plan_done"], s["plan_total"])}
                if got_w != m.week(t, day):
                    self.fail(day, f"本周 of {t}", got_w, m.week(t, day))
            r = await Q.review_status(session, quarter_of(day), views=every)
            got_q = {"total": r.total, "pending": {v.mentee.name for v in r.pending}, "counts": dict(r.counts)}
            if got_q != m.review_list(quarter_of(day)):
                self.fail(day, f"季评 {quarter_of(day)}", got_q, m.review_list(quarter_of(day)))
            if assessment:
                got_a = {v.mentor.name: {"status": v.status, "mentees": sorted(p.name for p, _ in v.mentees),
                                         "contacts": v.contacts, "plan": (v.plan_done, v.plan_total)}
                         for v in await Q.bundled_assessment(session, YEAR, views=every)}
                want_a = m.assessment(YEAR)
                for name in sorted(set(got_a) | set(want_a)):
                    if got_a.get(name) != want_a.get(name):
                        self.fail(day, f"考核 of {name}", got_a.get(name), want_a.get(name))

    async def year(self) -> None:
        clock = self.services.clock
        rng = self.rng
        hours = [(0, 30), (9, 0), (15, 0), (23, 30)]
        for week in range(52):
            first = dt.date(YEAR, 1, 5) + dt.timedelta(days=7 * week)
            for offset in range(7):
                day = first + dt.timedelta(days=offset)
                if day.year != YEAR:
                    break
                busy = 2 if week == 0 else 1 if rng.random() < 0.17 else 0  # about one message a week
                for hour, minute in sorted(rng.sample(hours, busy)):
                    clock.set(dt.datetime.combine(day, dt.time(hour, minute), TZ))
                    what = rng.random()
                    if week == 0 or what < 0.2:
                        await self.act(day)
                    elif what < 0.7:
                        await self.contact(day)
                    elif what < 0.85:
                        await self.plan(day)
                    elif what < 0.95 or day.month < 12:
                        await self.review(day)
                    else:
                        await self.grade(day)
            last = min(first + dt.timedelta(days=6), dt.date(YEAR, 12, 31))
            clock.set(dt.datetime.combine(last, dt.time(23, 59), TZ))
            await self.check(last, assessment=week % 4 == 3 or week == 51)
        # December: the grades, then the verdicts, and one rendered reply checked word for word
        clock.set(dt.datetime(YEAR, 12, 31, 10, 0, tzinfo=TZ))
        for mentee in MENTEES:
            if rng.random() < 0.8:
                grade, commended = rng.choice(GRADES), rng.random() < 0.2
                reply = await self.say(STAFF, f"考核 {mentee} {grade}{' 表彰' if commended else ''}")
                if self.model.mentored(mentee, dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)):
                    assert "已录入" in reply, reply
                    self.model.grades[(mentee, YEAR)] = (grade, commended)
                else:
                    assert "没有帮带结对" in reply, reply
        await self.check(dt.date(YEAR, 12, 31), assessment=True)
        staff = await self.say(STAFF, "本周")
        want = self.model.compliance(dt.date(YEAR, 12, 31))
        line = f"在册结对 {want['total']} 对，本周已面谈 {len(want['done'])} 对"
        if line not in staff:
            self.fail(dt.date(YEAR, 12, 31), "staff 本周 reply", staff, line)


@pytest.fixture(scope="module")
def roster_template(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """On SQLite, the roster is imported once into a copy of the migrated template; each seed starts
    from a copy of that (the import is the same every time and would cost a third of a seed)."""
    if PG_URL:
        return None
    import asyncio

    from storage.db import Database

    folder = tmp_path_factory.mktemp("model")
    path = folder / "roster.db"
    shutil.copy(template_db, path)

    async def fill() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            report = await import_roster(db, write(folder, "roster.csv", ROSTER), now=DEFAULT_NOW)
            assert report.ok, report.lines()
        finally:
            await db.close()

    asyncio.run(fill())
    return path


@pytest.fixture
async def db_url(roster_template: Path | None, tmp_path: Path) -> str:  # this module's: the roster is in
    if roster_template is None:
        from conftest import reset_postgres

        return await reset_postgres()
    path = tmp_path / "model.db"
    shutil.copy(roster_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def programme(services, roster_template: Path | None, tmp_path: Path):
    if roster_template is None:
        report = await import_roster(services.db, write(tmp_path, "roster.csv", ROSTER), now=services.clock.now())
        assert report.ok, report.lines()
    return services


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_a_programme_year_agrees_with_the_reference_model(programme, seed):
    sim = Sim(seed, programme, Gateway(programme))
    if os.environ.get("BANGDAI_MODEL_DEBUG"):
        from sqlalchemy import event

        counts = {"n": 0}
        event.listen(programme.db.engine.sync_engine, "before_cursor_execute", lambda *a: counts.__setitem__("n", counts["n"] + 1))
    await sim.year()
    if os.environ.get("BANGDAI_MODEL_DEBUG"):
        print("statements", counts["n"], "messages", sim.n)
