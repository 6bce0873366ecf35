"""recent sends: per-recipient send limits shared by every serve process

Revision ID: 0016_scale_out
Revises: 0012_bangdai_record
Create Date: 2026-11-29 21:25:00

WeCom drops a member's 31st message in a minute without an error. Each serve process counted its own
sends in memory, so two processes could send 50 a minute to one member; the count now lives here.
A new table only: no directory table is touched, so no version trigger is dropped on SQLite.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0016_scale_out'
down_revision: Union[str, Sequence[str], None] = '0012_bangdai_record'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('recentsend',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recentsend_target', 'recentsend', ['scope', 'target', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recentsend_target', table_name='recentsend')
    op.drop_table('recentsend')
