"""security: handled messages keyed by sender; failed binds counted per roster person

Revision ID: 0010_security
Revises: 0016_scale_out
Create Date: 2026-11-29 21:10:00

``processedmessage`` gains ``sender_id`` in its primary key (issue 11: the same msg_id from another
sender must neither get the stored replies nor be dropped). The table only remembers messages so a
platform's redelivery, minutes later, answers the same; it is recreated empty rather than rewritten
(old rows have no sender and could never match again). ``bindattempt`` gains ``person_name`` so the
绑定 lock counts guesses per roster person across accounts and channels, and an index on ``at`` for
the daily purge. Neither table carries the directory-version triggers.
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0010_security'
down_revision: Union[str, Sequence[str], None] = '0013_sanling_cases'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _processed_message(primary_key: tuple[str, ...]) -> None:
    columns = [sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False)]
    if 'sender_id' in primary_key:
        columns.append(sa.Column('sender_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False))
    columns += [
        sa.Column('msg_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('replies', sa.JSON(), nullable=False),
    ]
    op.create_table('processedmessage', *columns, sa.PrimaryKeyConstraint(*primary_key))
    op.create_index(op.f('ix_processedmessage_received_at'), 'processedmessage', ['received_at'], unique=False)


def upgrade() -> None:
    op.drop_index(op.f('ix_processedmessage_received_at'), table_name='processedmessage')
    op.drop_table('processedmessage')
    _processed_message(('channel', 'sender_id', 'msg_id'))

    op.add_column('bindattempt', sa.Column('person_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))
    op.create_index(op.f('ix_bindattempt_person_name'), 'bindattempt', ['person_name'], unique=False)
    op.create_index(op.f('ix_bindattempt_at'), 'bindattempt', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_bindattempt_at'), table_name='bindattempt')
    op.drop_index(op.f('ix_bindattempt_person_name'), table_name='bindattempt')
    with op.batch_alter_table('bindattempt', schema=None) as batch_op:
        batch_op.drop_column('person_name')

    op.drop_index(op.f('ix_processedmessage_received_at'), table_name='processedmessage')
    op.drop_table('processedmessage')
    _processed_message(('channel', 'msg_id'))
