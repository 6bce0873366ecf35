"""console: one-time login links and browser sessions of the staff console

Revision ID: 0014_console
Revises: 0010_security
Create Date: 2026-11-29 21:00:00

New tables only; none of the directory tables (and so none of their triggers) is touched.
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0014_console'
down_revision: Union[str, Sequence[str], None] = '0010_security'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "consolelink",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_consolelink_person_id", "consolelink", ["person_id"])
    op.create_table(
        "consolesession",
        sa.Column("id_hash", sqlmodel.sql.sqltypes.AutoString(length=64), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_consolesession_person_id", "consolesession", ["person_id"])
    op.create_index("ix_consolesession_ended_at", "consolesession", ["ended_at"])


def downgrade() -> None:
    op.drop_table("consolesession")
    op.drop_table("consolelink")
