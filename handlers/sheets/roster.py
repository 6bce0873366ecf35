"""The roster import: the roster is the source of truth for who is in the programme and in which roles.

For every person it lists, the 角色 column states their roles: roles not written there are taken away
(a 组工干部 removed from the sheet loses staff commands at their next message), except 导师/徒弟/三联联系人
that an active pairing or 三联 link still rests on — those stay, and the report says so. Without a 角色
column nobody's roles change. ``full=True`` also deactivates everyone active who is not in the file
(listed first by a dry run); a deactivated person can bind to nothing and is refused everything but 帮助.
Every role change and every (de)activation is in the audit log.

Rows are checked and matched in memory against what a chunk of them needs from the database (a few
queries per :data:`CHUNK_ROWS` rows), then written with Core executemany statements, one short
transaction per chunk: a 50,000-row roster is a few hundred statements, not a few hundred thousand, and
chat waits for at most one chunk (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.text import Reasoned, mask_phone
from storage.db import Database
from storage.models import AuditLog, ChatIdentity, LiaisonLink, Pairing, PairingMentor, Person, PersonRole, Role, Unit

from handlers.sheets.imports import (
    CHUNK_ROWS, IDENTITY_FIELDS, PREVIEW_ROWS, ROSTER_COLUMNS, ImportReport, RowError, cell_text, chunk_transaction,
    import_audit, parse_roles, read,
)
from handlers.sheets.reader import Sheet, SheetError, SheetLimits

_PERSON = Person.__table__  # type: ignore[attr-defined]
_ROLE = PersonRole.__table__  # type: ignore[attr-defined]
_IDENTITY = ChatIdentity.__table__  # type: ignore[attr-defined]
_UNIT = Unit.__table__  # type: ignore[attr-defined]
_AUDIT = AuditLog.__table__  # type: ignore[attr-defined]
# Roles another record rests on: dropping them from the roster while the record is active would leave a
# pair without its mentor's commands. They go with 清退, the end of the pairing or of the 三联 link.
# Roles a person keeps though the file leaves them out, and what holds them (templates/imports/notes/roles_kept).
BACKED = {Role.MENTOR.value: "pairs", Role.MENTEE.value: "pairs", Role.LIAISON.value: "links"}
MAX_NAMES = 20  # people named in one note of the report; the rest are counted


@dataclass
class _Row:
    line: int
    name: str
    phone: str | None
    unit: str
    title: str
    roles: set[str] | None  # None: the file has no 角色 column
    birth_year: int | None
    ids: dict[str, str]  # channel -> platform user id
    values: dict[str, Any]


@dataclass
class _Planned:
    """One row's effect: the person (existing id or new), their new values, role and identity changes."""

    row: _Row
    person_id: int | None
    values: dict[str, Any]
    outcome: str
    grant: set[str] = field(default_factory=set)
    revoke: set[str] = field(default_factory=set)
    new_ids: list[tuple[str, str]] = field(default_factory=list)  # (channel, platform id)
    moved_ids: list[tuple[int, str]] = field(default_factory=list)  # (identity id, new platform id)
    reactivated: bool = False


async def _run(session: AsyncSession, statement: Any, params: Any = None) -> Any:
    """Core statements on the session's connection (in its transaction), many rows at once."""
    connection = await session.connection()
    return await (connection.execute(statement) if params is None else connection.execute(statement, params))


def _row(line: int, values: dict[str, Any], now: dt.datetime, has_roles: bool) -> _Row:
    name = cell_text(values.get("name"))
    if not name:
        raise RowError("imports/rows/name_empty", field="name")
    if len(name) > 50 or any(ch.isdigit() for ch in name):
        raise RowError("imports/rows/name_odd", field="name", name=name)
    birth_year = values.get("birth_year")
    if birth_year is not None and not 1920 <= birth_year <= now.year:
        raise RowError("imports/rows/birth_year", field="birth_year", year=birth_year)
    unit = cell_text(values.get("unit"))
    if len(unit) > 100:
        raise RowError("imports/rows/unit_too_long", field="unit")
    title = cell_text(values.get("title"))
    if len(title) > 100:
        raise RowError("imports/rows/title_too_long", field="title")
    ids = {}
    for field_name, channel in IDENTITY_FIELDS.items():
        if platform_id := cell_text(values.get(field_name)):
            if len(platform_id) > 128:
                raise RowError("imports/rows/account_too_long", field=field_name, header=ROSTER_COLUMNS[field_name][0])
            ids[channel] = platform_id
    roles = parse_roles(values.get("roles")) if has_roles else None
    return _Row(line, name, values.get("phone"), unit, title, roles, birth_year, ids, values)


class _RosterImport:
    def __init__(self, report: ImportReport, sheet: Sheet, now: dt.datetime, actor: str, source: str) -> None:
        self.report, self.sheet, self.now, self.actor, self.source = report, sheet, now, actor, source
        self.has_roles = "roles" in sheet.columns
        self.seen: dict[tuple, int] = {}  # phone / (name, unit) -> line
        self.claimed: dict[int, int] = {}  # existing person id -> line that matched it
        self.units: dict[str, int] = {}  # unit name -> id, committed ones only
        self.kept: dict[str, list[str]] = defaultdict(list)  # role -> people who keep it though unlisted

    # -- one chunk: check, match, write --------------------------------------------------------------

    async def chunk(self, session: AsyncSession, items: list[tuple[int, dict]]) -> dict[str, int]:
        rows = self._check(items)
        unit_ids = await self._unit_ids(session, {r.unit for r in rows if r.unit})
        people = await self._people(session, rows)
        planned = []
        identities = await self._identities(session, rows, people)
        roles, backed = await self._roles(session, people)
        owners: dict[tuple[str, str], tuple[int, str]] = {}  # planned in this chunk: (channel, id) -> (line, name)
        for r in rows:
            try:
                planned.append(self._plan(r, people, unit_ids, identities, roles, backed, owners))
            except RowError as exc:
                self.report.row_error(self.sheet, r.line, exc, r.values)
        await self._write(session, planned)
        return unit_ids

    def _check(self, items: list[tuple[int, dict]]) -> list[_Row]:
        """Each row on its own, and against the rows before it in the file."""
        out = []
        for line, values in items:
            try:
                r = _row(line, values, self.now, self.has_roles)
                keys: list[tuple] = [("phone", r.phone)] if r.phone else []
                keys.append(("name", r.name, r.unit))
                for key in keys:
                    if key in self.seen:
                        raise RowError("imports/rows/person_twice", field="phone" if key[0] == "phone" else "name",
                                       line=self.seen[key], by_phone=key[0] == "phone")
                for key in keys:
                    self.seen[key] = line
            except RowError as exc:
                self.report.row_error(self.sheet, line, exc, values)
                continue
            out.append(r)
        return out

    async def _unit_ids(self, session: AsyncSession, names: set[str]) -> dict[str, int]:
        """Ids of the chunk's units, creating the missing ones (the chunk's transaction keeps or drops them)."""
        out = {n: self.units[n] for n in names if n in self.units}
        missing = sorted(names - out.keys())
        if missing:
            found = (await _run(session, select(_UNIT.c.name, _UNIT.c.id).where(_UNIT.c.name.in_(missing)))).all()
            out.update(dict(found))
            new = [n for n in missing if n not in out]
            if new:  # no RETURNING: with it SQLAlchemy inserts one row per statement to keep the order
                await _run(session, insert(_UNIT), [{"name": n, "kind": ""} for n in new])
                out.update(dict((await _run(session, select(_UNIT.c.name, _UNIT.c.id).where(_UNIT.c.name.in_(new)))).all()))
        return out

    async def _people(self, session: AsyncSession, rows: list[_Row]) -> dict[str, Any]:
        phones = sorted({r.phone for r in rows if r.phone})
        names = sorted({r.name for r in rows})
        cols = (_PERSON.c.id, _PERSON.c.name, _PERSON.c.phone, _PERSON.c.unit_id, _PERSON.c.title,
                _PERSON.c.birth_year, _PERSON.c.active)
        by_phone = {p.phone: p for p in (await _run(session, select(*cols).where(_PERSON.c.phone.in_(phones)))).all()}
        by_name: dict[str, list] = defaultdict(list)
        for p in (await _run(session, select(*cols).where(_PERSON.c.name.in_(names)).order_by(_PERSON.c.id))).all():
            by_name[p.name].append(p)
        return {"phone": by_phone, "name": by_name}

    def _match(self, r: _Row, people: dict[str, Any], unit_id: int | None) -> Any:
        if r.phone and r.phone in people["phone"]:
            return people["phone"][r.phone]
        matches = [p for p in people["name"].get(r.name, []) if p.unit_id == unit_id]
        if r.phone:
            matches = [p for p in matches if p.phone in (None, r.phone)]
        if len(matches) > 1:
            raise RowError("imports/rows/name_ambiguous", field="phone", name=r.name, unit=r.unit)
        return matches[0] if matches else None

    async def _identities(self, session: AsyncSession, rows: list[_Row], people: dict[str, Any]) -> dict[str, Any]:
        ids = {p.id for p in people["phone"].values()} | {p.id for ps in people["name"].values() for p in ps}
        cols = (_IDENTITY.c.id, _IDENTITY.c.channel, _IDENTITY.c.platform_user_id, _IDENTITY.c.person_id)
        owner = {}
        for channel in IDENTITY_FIELDS.values():  # by channel and id: the unique index, not a scan
            wanted = sorted({r.ids[channel] for r in rows if channel in r.ids})
            if wanted:
                for i in (await _run(session, select(*cols).where(_IDENTITY.c.channel == channel,
                                                                   _IDENTITY.c.platform_user_id.in_(wanted)))).all():
                    owner[(i.channel, i.platform_user_id)] = i
        current = {}
        if ids:
            for i in (await _run(session, select(*cols).where(_IDENTITY.c.person_id.in_(sorted(ids))))).all():
                current[(i.person_id, i.channel)] = i
        others = sorted({i.person_id for i in owner.values()} - ids)
        names = dict((await _run(session, select(_PERSON.c.id, _PERSON.c.name).where(_PERSON.c.id.in_(others)))).all()) if others else {}
        for ps in people["name"].values():
            names.update({p.id: p.name for p in ps})
        names.update({p.id: p.name for p in people["phone"].values()})
        return {"owner": owner, "current": current, "names": names}

    async def _roles(self, session: AsyncSession, people: dict[str, Any]) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
        ids = sorted({p.id for p in people["phone"].values()} | {p.id for ps in people["name"].values() for p in ps})
        roles: dict[int, set[str]] = defaultdict(set)
        backed: dict[int, set[str]] = defaultdict(set)
        if not ids:
            return roles, backed
        for pid, role in (await _run(session, select(_ROLE.c.person_id, _ROLE.c.role).where(_ROLE.c.person_id.in_(ids)))).all():
            roles[pid].add(role)
        if not self.has_roles:
            return roles, backed
        mentors = select(PairingMentor.person_id).join(Pairing, Pairing.id == PairingMentor.pairing_id).where(
            Pairing.active == True, PairingMentor.end_date.is_(None),  # type: ignore[union-attr]  # noqa: E712
            PairingMentor.person_id.in_(ids))  # type: ignore[attr-defined]
        mentees = select(Pairing.mentee_id).where(Pairing.active == True, Pairing.mentee_id.in_(ids))  # type: ignore[attr-defined]  # noqa: E712
        liaisons = select(LiaisonLink.person_id).where(LiaisonLink.active == True, LiaisonLink.person_id.in_(ids))  # type: ignore[attr-defined]  # noqa: E712
        for query, role in ((mentors, Role.MENTOR.value), (mentees, Role.MENTEE.value), (liaisons, Role.LIAISON.value)):
            for pid in (await _run(session, query)).scalars().all():
                backed[pid].add(role)
        return roles, backed

    def _plan(self, r: _Row, people: dict[str, Any], unit_ids: dict[str, int], identities: dict[str, Any],
              roles: dict[int, set[str]], backed: dict[int, set[str]], owners: dict[tuple[str, str], tuple[int, str]]) -> _Planned:
        unit_id = unit_ids.get(r.unit) if r.unit else None
        person = self._match(r, people, unit_id)
        if person is not None and person.id in self.claimed:
            raise RowError("imports/rows/same_person", field="name", line=self.claimed[person.id], name=person.name)
        pid = person.id if person is not None else None
        plan = _Planned(r, pid, {}, "unchanged")
        # chat accounts the row names
        for channel, platform_id in r.ids.items():
            field_name = next(f for f, c in IDENTITY_FIELDS.items() if c == channel)
            header = ROSTER_COLUMNS[field_name][0]
            if (channel, platform_id) in owners:
                line, name = owners[(channel, platform_id)]
                raise RowError("imports/rows/account_taken_in_file", field=field_name, header=header, account=platform_id,
                               name=name, line=line)
            owner = identities["owner"].get((channel, platform_id))
            if owner is not None:
                if owner.person_id != pid:
                    raise RowError("imports/rows/account_taken", field=field_name, header=header, account=platform_id,
                                   name=identities["names"].get(owner.person_id))
                continue
            current = identities["current"].get((pid, channel)) if pid is not None else None
            if current is not None:
                plan.moved_ids.append((current.id, platform_id))
            else:
                plan.new_ids.append((channel, platform_id))
        for channel, platform_id in r.ids.items():
            owners[(channel, platform_id)] = (r.line, r.name)
        # the person
        if person is None:
            plan.values = {"name": r.name, "phone": r.phone, "unit_id": unit_id, "title": r.title,
                           "birth_year": r.birth_year, "active": True, "created_at": self.now}
            plan.outcome = "created"
            plan.grant = set(r.roles or ())
        else:
            self.claimed[person.id] = r.line
            wanted = {"name": r.name, "phone": r.phone or person.phone,
                      "unit_id": unit_id if r.unit else person.unit_id, "title": r.title or person.title,
                      "birth_year": r.birth_year or person.birth_year, "active": True}
            if any(getattr(person, k) != v for k, v in wanted.items()):
                plan.values, plan.outcome = wanted, "updated"
            plan.reactivated = not person.active
            if r.roles is not None:
                have = roles.get(person.id, set())
                plan.grant = r.roles - have
                plan.revoke = have - r.roles
                for role in sorted(plan.revoke & backed.get(person.id, set())):
                    plan.revoke.discard(role)
                    self.kept[role].append(r.name)
            if plan.grant or plan.revoke or plan.new_ids or plan.moved_ids:
                plan.outcome = "updated"
        return plan

    async def _write(self, session: AsyncSession, planned: list[_Planned]) -> None:
        new = [p for p in planned if p.person_id is None]
        if new:
            # One executemany without RETURNING (with it SQLAlchemy sends one row per statement to keep
            # the order), then the new ids by what identifies a person in this chunk: phone, name, unit.
            before = (await _run(session, select(func.coalesce(func.max(_PERSON.c.id), 0)))).scalar()
            await _run(session, insert(_PERSON), [p.values for p in new])
            made = {(r.name, r.phone, r.unit_id): r.id for r in (await _run(session, select(
                _PERSON.c.id, _PERSON.c.name, _PERSON.c.phone, _PERSON.c.unit_id).where(_PERSON.c.id > before))).all()}
            for p in new:
                p.person_id = made[(p.values["name"], p.values["phone"], p.values["unit_id"])]
        changed = [p for p in planned if p.person_id is not None and p.values and p.outcome == "updated" and "created_at" not in p.values]
        if changed:
            await _run(session, 
                update(_PERSON).where(_PERSON.c.id == bindparam("_id")).values(
                    {k: bindparam(f"_{k}") for k in ("name", "phone", "unit_id", "title", "birth_year", "active")}),
                [{"_id": p.person_id, **{f"_{k}": v for k, v in p.values.items()}} for p in changed])
        grants = [{"person_id": p.person_id, "role": role} for p in planned for role in sorted(p.grant)]
        revokes = [{"_pid": p.person_id, "_role": role} for p in planned for role in sorted(p.revoke)]
        if grants:
            await _run(session, insert(_ROLE), grants)
        if revokes:
            await _run(session, delete(_ROLE).where(and_(_ROLE.c.person_id == bindparam("_pid"),
                                                           _ROLE.c.role == bindparam("_role"))), revokes)
        new_ids = [{"channel": c, "platform_user_id": u, "person_id": p.person_id, "linked_by": "roster",
                    "created_at": self.now} for p in planned for c, u in p.new_ids]
        if new_ids:
            await _run(session, insert(_IDENTITY), new_ids)
        moved = [{"_id": i, "_uid": u} for p in planned for i, u in p.moved_ids]
        if moved:
            await _run(session, update(_IDENTITY).where(_IDENTITY.c.id == bindparam("_id")).values(
                platform_user_id=bindparam("_uid"), linked_by="roster"), moved)
        audit = [self._audit(f"role.{verb}", p, role=role)
                 for p in planned for verb, roles in (("grant", p.grant), ("revoke", p.revoke)) for role in sorted(roles)]
        audit += [self._audit("person.reactivate", p) for p in planned if p.reactivated]
        if audit:
            await _run(session, insert(_AUDIT), audit)
        for p in planned:
            setattr(self.report, p.outcome, getattr(self.report, p.outcome) + 1)
            self.report.outcomes.append((p.row.line, p.outcome))  # the console's dry run shows every row
            if len(self.report.preview) < PREVIEW_ROWS:
                self.report.preview.append(self._preview(p))

    def _audit(self, action: str, p: _Planned, **detail: Any) -> dict[str, Any]:
        return {"at": self.now, "actor_id": None, "actor_label": self.actor, "action": action,
                "target": f"person:{p.person_id}", "detail": {"name": p.row.name, "source": self.source, **detail}}

    def _preview(self, p: _Planned) -> list[tuple[str, str]]:
        r, h = p.row, self.sheet.headers
        out = [(h["name"], r.name)]
        values = p.values or {}
        shown = {"phone": mask_phone(values.get("phone", r.phone)), "unit": r.unit, "title": values.get("title", r.title),
                 "birth_year": str(values.get("birth_year", r.birth_year) or "")}
        out += [(h[f], v or "") for f, v in shown.items() if f in h]
        if r.roles is not None:
            out.append((h["roles"], "、".join(sorted(r.roles | (p.grant or set()))) or "（无）"))
        out += [(h[f], r.ids.get(c, "")) for f, c in IDENTITY_FIELDS.items() if f in h]
        out.append(("结果", {"created": "新增", "updated": "更新", "unchanged": "未变"}[p.outcome]))
        return out

    # -- after the rows -------------------------------------------------------------------------------

    def notes(self) -> None:
        for role, names in self.kept.items():
            self.report.warnings.append(Reasoned("imports/notes/roles_kept", role=role, backed=BACKED[role],
                                                 names=list(names), shown=MAX_NAMES))

    async def absent(self, session: AsyncSession) -> list[tuple[int, str, set[str]]]:
        """Active people the file does not list: (id, "name（unit）", roles)."""
        listed = set(self.claimed)
        rows = (await _run(session, 
            select(_PERSON.c.id, _PERSON.c.name, _UNIT.c.name).join(_UNIT, _UNIT.c.id == _PERSON.c.unit_id, isouter=True)
            .where(_PERSON.c.active == True).order_by(_PERSON.c.id))).all()  # noqa: E712
        out = [(pid, f"{name}（{unit}）" if unit else name) for pid, name, unit in rows if pid not in listed]
        if not out:
            return []
        roles: dict[int, set[str]] = defaultdict(set)
        ids = [pid for pid, _ in out]
        for i in range(0, len(ids), 5000):
            for pid, role in (await _run(session, 
                    select(_ROLE.c.person_id, _ROLE.c.role).where(_ROLE.c.person_id.in_(ids[i:i + 5000])))).all():
                roles[pid].add(role)
        return [(pid, label, roles[pid]) for pid, label in out]

    async def deactivate(self, session: AsyncSession, absent: list[tuple[int, str, set[str]]]) -> None:
        if not absent:
            return
        await _run(session, update(_PERSON).where(_PERSON.c.id == bindparam("_id")).values(active=False),
                              [{"_id": pid} for pid, _, _ in absent])
        await _run(session, insert(_AUDIT), [
            {"at": self.now, "actor_id": None, "actor_label": self.actor, "action": "person.deactivate",
             "target": f"person:{pid}", "detail": {"name": label, "roles": sorted(roles), "source": self.source}}
            for pid, label, roles in absent])


async def import_roster(
    db: Database, path: str | Path, *, now: dt.datetime, dry_run: bool = False, actor: str = "cli",
    full: bool = False, sheet_name: str | None = None, limits: SheetLimits | None = None,
) -> ImportReport:
    """姓名 (required), 手机, 单位, 职务, 角色, 钉钉ID, 企业微信ID, 本地ID, 出生年份. People are matched by
    phone, else by name and unit. ``full``: the file is the whole roster; the active people it does not
    list are deactivated — unless some row had an error (then nobody is, and the report says why)."""
    report = ImportReport("roster", dry_run)
    try:  # in a thread: reading a big file must not stop the event loop (chat, other channels)
        sheet = await asyncio.to_thread(read, path, "roster", ROSTER_COLUMNS, {"name"}, sheet_name=sheet_name,
                                        limits=limits)
    except SheetError as exc:
        report.fatal = exc
        return report
    report.take_sheet(sheet)
    if "roles" not in sheet.columns:
        report.warnings.append(Reasoned("imports/notes/no_roles_column"))
    job = _RosterImport(report, sheet, now, actor, Path(path).name)
    for i in range(0, max(len(sheet.rows), 1), CHUNK_ROWS):
        async with chunk_transaction(db, dry_run) as session:
            unit_ids = await job.chunk(session, sheet.rows[i:i + CHUNK_ROWS])
        if not dry_run:  # committed: later chunks may use these units
            job.units.update(unit_ids)
    job.notes()
    async with chunk_transaction(db, dry_run) as session:
        if full:
            absent = await job.absent(session)
            report.deactivated = [label for _, label, _ in absent]
            if report.errors and absent:
                report.warnings.append(Reasoned("imports/notes/nothing_deactivated", errors=len(report.errors)))
                report.deactivated = []
                absent = []
            await job.deactivate(session, absent)
        import_audit(session, report, now, actor, path)
    report.errors.sort(key=lambda e: e[0])
    return report
