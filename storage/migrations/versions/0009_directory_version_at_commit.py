"""directory version: on PostgreSQL, bump the counter once per transaction, at commit

Revision ID: 0009_directory_commit
Revises: 0008_directory
Create Date: 2026-11-21 12:10:00

0008's statement triggers took the counter row's lock at the first write to a directory table and held
it to commit, so two transactions writing different people waited on each other and could deadlock
(found in review, reproduced with two connections). Deferred constraint triggers run at commit, after
every other lock is taken, and a transaction-local setting makes the bump happen once per transaction.
TRUNCATE (no constraint triggers for it) keeps a statement trigger. SQLite has one writer at a time and
keeps 0008's row triggers.
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0009_directory_commit'
down_revision: Union[str, Sequence[str], None] = '0008_directory'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("unit", "person", "personrole", "chatidentity", "pairing", "pairingmentor")
BUMP = ("INSERT INTO directoryversion (id, value) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET value = directoryversion.value + 1")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION bump_directory_version_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_setting('bangdai.directory_bumped', true) IS DISTINCT FROM txid_current()::text THEN "
        "PERFORM set_config('bangdai.directory_bumped', txid_current()::text, true); "
        f"{BUMP}; END IF; RETURN NULL; END $$")
    for table in TABLES:
        op.execute(f'DROP TRIGGER directory_version ON "{table}"')
        op.execute(f'CREATE CONSTRAINT TRIGGER directory_version AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                   "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_directory_version_once()")
        op.execute(f'CREATE TRIGGER directory_version_truncate AFTER TRUNCATE ON "{table}" '
                   "FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f'DROP TRIGGER directory_version_truncate ON "{table}"')
        op.execute(f'DROP TRIGGER directory_version ON "{table}"')
        op.execute(f'CREATE TRIGGER directory_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                   "FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()")
    op.execute("DROP FUNCTION bump_directory_version_once()")
