"""directory version: one counter bumped by triggers on every change to the directory tables

Revision ID: 0008_directory
Revises: 0007_merge
Create Date: 2026-11-21 12:10:00

The per-process memo of senders and pairs (storage/directory.py) is valid while this counter is
unchanged. Triggers, not application code, bump it, so every writer counts: another process, the CLI,
imports, hand-written SQL.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008_directory'
down_revision: Union[str, Sequence[str], None] = '0007_merge'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The same list as storage.directory.DIRECTORY_TABLES, frozen here as this revision saw it.
TABLES = ("unit", "person", "personrole", "chatidentity", "pairing", "pairingmentor")
BUMP = ("INSERT INTO directoryversion (id, value) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET value = directoryversion.value + 1")


def upgrade() -> None:
    op.create_table('directoryversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO directoryversion (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN {BUMP}; RETURN NULL; END $$")
        for table in TABLES:
            op.execute(f'CREATE TRIGGER directory_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                       f"FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()")
    else:  # SQLite: row triggers only
        for table in TABLES:
            for op_name in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f'CREATE TRIGGER directory_version_{table}_{op_name.lower()} AFTER {op_name} ON "{table}" '
                           f"BEGIN {BUMP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'DROP TRIGGER directory_version ON "{table}"')
        op.execute("DROP FUNCTION bump_directory_version()")
    else:
        for table in TABLES:
            for op_name in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER directory_version_{table}_{op_name}")
    op.drop_table('directoryversion')
