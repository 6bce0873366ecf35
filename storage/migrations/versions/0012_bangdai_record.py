"""a 帮带 is the mentee's (and the database remembers when it was created): one record per mentee, mentors with dated terms, contacts name their mentors

Revision ID: 0012_bangdai_record
Revises: 0009_directory_commit
Create Date: 2026-11-29 21:00:00

Before this revision every re-pairing started a new ``pairing`` row and the contacts, plan items and
季评 of the old one dropped out of every view. Here the pairings of one mentee become one 帮带 (the
oldest row is kept), everything that hung on the others moves onto it (plan items renumbered after the
kept ones, the later 季评 of a quarter winning), and each old pairing's mentors become dated terms
(``pairingmentor`` gains an id, dates and reasons; back-to-back terms of one mentor join up). Which
mentors took part in each old contact is worked out from who wrote it. Nothing is deleted but the
emptied duplicate ``pairing`` rows.

``pairingmentor`` is rebuilt (new primary key): it is a directory table, and dropping it drops its
version triggers (storage/directory.py), so they are created again here on both databases.
"""
from collections import defaultdict
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0012_bangdai_record'
down_revision: Union[str, Sequence[str], None] = '0009_directory_commit'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BUMP = ("INSERT INTO directoryversion (id, value) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET value = directoryversion.value + 1")


def _version_triggers(table: str) -> None:
    """The triggers of migrations 0008/0009 for one directory table, as they stand after 0009."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'CREATE CONSTRAINT TRIGGER directory_version AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                   "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_directory_version_once()")
        op.execute(f'CREATE TRIGGER directory_version_truncate AFTER TRUNCATE ON "{table}" '
                   "FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()")
    else:
        for op_name in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f'CREATE TRIGGER directory_version_{table}_{op_name.lower()} AFTER {op_name} ON "{table}" '
                       f"BEGIN {BUMP}; END")


def upgrade() -> None:
    bind = op.get_bind()
    # When the database was made: now for a new one, its first roster row for an older one.
    op.create_table('installation',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    import datetime as dt

    first = bind.execute(sa.text("SELECT MIN(created_at) FROM person")).scalar()
    if isinstance(first, str):
        first = dt.datetime.fromisoformat(first)
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=dt.timezone.utc)
    installation = sa.table('installation', sa.column('id', sa.Integer()),
                            sa.column('created_at', sqlmodel.sql.sqltypes.UTCDateTime()))
    op.bulk_insert(installation, [{"id": 1, "created_at": first or dt.datetime.now(dt.timezone.utc)}])
    op.create_table(
        'pairingmentor_new',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pairing_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('is_lead', sa.Boolean(), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=True),
        sa.Column('start_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('dismissed', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['pairing_id'], ['pairing.id'], ),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'contactmentor',
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contactlog.id'], ),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('contact_id', 'person_id'),
    )

    pairings = bind.execute(sa.text(
        "SELECT id, mentee_id, start_date, agreement_date, active, ended_on, end_reason FROM pairing ORDER BY id"
    )).mappings().all()
    links = bind.execute(sa.text("SELECT pairing_id, person_id, is_lead FROM pairingmentor")).mappings().all()
    names = dict(bind.execute(sa.text("SELECT id, name FROM person")).all())
    mentors_of: dict[int, list] = defaultdict(list)
    for link in links:
        mentors_of[link["pairing_id"]].append(link)
    by_mentee: dict[int, list] = defaultdict(list)
    for p in pairings:
        by_mentee[p["mentee_id"]].append(p)

    terms = []
    home: dict[int, int] = {}  # old pairing id -> the 帮带 it joins
    for mentee, rows in by_mentee.items():
        rows = sorted(rows, key=lambda p: (_date(p["start_date"]), p["id"]))
        keep = min(p["id"] for p in rows)
        for p in rows:
            home[p["id"]] = keep
        # One mentor's terms, in order; a term that ends the day the next begins is the same term.
        per_mentor: dict[int, list[dict]] = defaultdict(list)
        for p in rows:
            start = _date(p["start_date"])
            end = None if p["active"] else max(_date(p["ended_on"] or p["start_date"]), start)
            reason = p["end_reason"] or ""
            for link in mentors_of[p["id"]]:
                who = names.get(link["person_id"], "")
                dismissed = (not p["active"]) and (reason.startswith("导师清退") or f"导师 {who} 清退" in reason)
                mine = per_mentor[link["person_id"]]
                if mine and mine[-1]["end_date"] == start and not mine[-1]["dismissed"]:
                    mine[-1].update(end_date=end, end_reason="" if end is None else reason, dismissed=dismissed,
                                    is_lead=link["is_lead"])
                    continue
                mine.append({"pairing_id": keep, "person_id": link["person_id"], "is_lead": bool(link["is_lead"]),
                             "start_date": start, "end_date": end, "start_reason": "",
                             "end_reason": "" if end is None else reason, "dismissed": dismissed})
        for mine in per_mentor.values():
            terms.extend(mine)
        active = any(p["active"] for p in rows)
        ended = [p for p in rows if not p["active"]]
        last_end = max((_date(p["ended_on"] or p["start_date"]) for p in ended), default=None)
        agreement = next((p["agreement_date"] for p in reversed(rows) if p["agreement_date"]), None)
        bind.execute(sa.text(
            "UPDATE pairing SET start_date = :start, agreement_date = :agreement, active = :active, "
            "ended_on = :ended, end_reason = :reason WHERE id = :id"
        ), {"start": min(_date(p["start_date"]) for p in rows), "agreement": agreement, "active": active,
            "ended": None if active else last_end,
            "reason": "" if active else next((p["end_reason"] for p in reversed(rows) if not p["active"]), ""),
            "id": keep})
    if terms:
        bind.execute(sa.text(
            "INSERT INTO pairingmentor_new (pairing_id, person_id, is_lead, start_date, end_date, start_reason, "
            "end_reason, dismissed) VALUES (:pairing_id, :person_id, :is_lead, :start_date, :end_date, "
            ":start_reason, :end_reason, :dismissed)"), terms)

    # Contacts: who took part. A mentor who wrote it took part; a mentee's note names its counterpart
    # when they chose one, otherwise every mentor of that pairing did.
    contacts = bind.execute(sa.text("SELECT id, pairing_id, author_id, counterpart_id FROM contactlog")).mappings().all()
    took_part = []
    for c in contacts:
        mentors = [link["person_id"] for link in mentors_of[c["pairing_id"]]]
        if c["author_id"] in mentors:
            who = [c["author_id"]]
        elif c["counterpart_id"] in mentors:
            who = [c["counterpart_id"]]
        else:
            who = mentors
        took_part.extend({"contact_id": c["id"], "person_id": m} for m in who)
    if took_part:
        bind.execute(sa.text("INSERT INTO contactmentor (contact_id, person_id) VALUES (:contact_id, :person_id)"),
                     took_part)

    moved = [(old, new) for old, new in home.items() if old != new]
    for old, new in moved:
        bind.execute(sa.text("UPDATE contactlog SET pairing_id = :new WHERE pairing_id = :old"), {"new": new, "old": old})
    # Plan items: the moved ones are numbered after what the 帮带 already has, in the order they came.
    items = bind.execute(sa.text("SELECT id, pairing_id, seq FROM planitem ORDER BY pairing_id, seq")).mappings().all()
    top: dict[int, int] = defaultdict(int)
    for item in items:
        if home.get(item["pairing_id"], item["pairing_id"]) == item["pairing_id"]:
            top[item["pairing_id"]] = max(top[item["pairing_id"]], item["seq"])
    old_order = {p["id"]: (_date(p["start_date"]), p["id"]) for p in pairings}
    for item in sorted((i for i in items if home.get(i["pairing_id"], i["pairing_id"]) != i["pairing_id"]),
                       key=lambda i: (old_order[i["pairing_id"]], i["seq"])):
        new = home[item["pairing_id"]]
        top[new] += 1
        bind.execute(sa.text("UPDATE planitem SET pairing_id = :new, seq = :seq WHERE id = :id"),
                     {"new": new, "seq": top[new], "id": item["id"]})
    # 季评: one per 帮带 per quarter, the latest wins.
    reviews = bind.execute(sa.text("SELECT id, pairing_id, quarter, created_at FROM pairreview ORDER BY created_at, id")).mappings().all()
    winner: dict[tuple[int, str], int] = {}
    for r in reviews:
        winner[(home.get(r["pairing_id"], r["pairing_id"]), r["quarter"])] = r["id"]
    for r in reviews:
        new = home.get(r["pairing_id"], r["pairing_id"])
        if winner[(new, r["quarter"])] != r["id"]:
            bind.execute(sa.text("DELETE FROM pairreview WHERE id = :id"), {"id": r["id"]})
    for (new, _quarter), rid in winner.items():
        bind.execute(sa.text("UPDATE pairreview SET pairing_id = :new WHERE id = :id"), {"new": new, "id": rid})
    # The audit log names pairings as ``pairing:<id>``; point the merged ones at their 帮带.
    for old, new in moved:
        bind.execute(sa.text("UPDATE auditlog SET target = :new WHERE target = :old"),
                     {"new": f"pairing:{new}", "old": f"pairing:{old}"})
    op.drop_table('pairingmentor')  # takes its version triggers with it
    for old, _new in moved:
        bind.execute(sa.text("DELETE FROM pairing WHERE id = :id"), {"id": old})
    if bind.dialect.name == "postgresql":
        # The rows changed above queued 0009's deferred version triggers, and PostgreSQL refuses DDL on
        # a table with pending trigger events: fire them now.
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.rename_table('pairingmentor_new', 'pairingmentor')
    op.create_index('ix_pairingmentor_pairing_id', 'pairingmentor', ['pairing_id'], unique=False)
    op.create_index('ix_pairingmentor_person_id', 'pairingmentor', ['person_id'], unique=False)
    op.create_index('ix_contactmentor_person_id', 'contactmentor', ['person_id'], unique=False)
    op.drop_index('ix_pairing_mentee_id', table_name='pairing')
    op.create_index('ix_pairing_mentee_id', 'pairing', ['mentee_id'], unique=True)
    _version_triggers('pairingmentor')


def _date(value):
    """SQLite hands dates back as text through a plain connection."""
    import datetime as dt

    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def downgrade() -> None:
    raise NotImplementedError("0012 merges each mentee's pairings into one 帮带; restore a backup to go back")
