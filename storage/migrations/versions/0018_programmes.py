"""the programmes in full: mentors' 季评 reports, the five 帮带 areas on contacts and plan items, the mentor pool, open classes, the 常青藤 archive

Revision ID: 0018_programmes
Revises: 0014_console
Create Date: 2026-11-29 21:50:00

Only new tables and new nullable-free columns with a default: no table is rebuilt, so the directory
version triggers (storage/directory.py) are untouched.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0018_programmes'
down_revision: Union[str, Sequence[str], None] = '0014_console'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'reviewreport',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pairing_id', sa.Integer(), nullable=False),
        sa.Column('quarter', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('mentor_id', sa.Integer(), nullable=False),
        sa.Column('done', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('problems', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('fixes', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('next_focus', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['pairing_id'], ['pairing.id'], ),
        sa.ForeignKeyConstraint(['mentor_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('pairing_id', 'quarter', 'mentor_id'),
    )
    op.create_index('ix_reviewreport_pairing_id', 'reviewreport', ['pairing_id'], unique=False)
    op.create_index('ix_reviewreport_quarter', 'reviewreport', ['quarter'], unique=False)
    op.create_index('ix_reviewreport_mentor_id', 'reviewreport', ['mentor_id'], unique=False)
    op.create_table(
        'mentornomination',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('nominated_by', sa.Integer(), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('decision_note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.ForeignKeyConstraint(['nominated_by'], ['person.id'], ),
        sa.ForeignKeyConstraint(['decided_by'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id'),
    )
    op.create_index('ix_mentornomination_status', 'mentornomination', ['status'], unique=False)
    op.create_table(
        'mentorincentive',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=True),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.ForeignKeyConstraint(['recorded_by'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_mentorincentive_person_id', 'mentorincentive', ['person_id'], unique=False)
    op.create_table(
        'mentorcertificate',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id', 'year'),
    )
    op.create_index('ix_mentorcertificate_person_id', 'mentorcertificate', ['person_id'], unique=False)
    op.create_table(
        'openclass',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('host_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['host_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_openclass_host_id', 'openclass', ['host_id'], unique=False)
    op.create_index('ix_openclass_starts_at', 'openclass', ['starts_at'], unique=False)
    op.create_table(
        'classsignup',
        sa.Column('class_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('signed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('attended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['class_id'], ['openclass.id'], ),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('class_id', 'person_id'),
    )
    op.create_index('ix_classsignup_person_id', 'classsignup', ['person_id'], unique=False)
    op.create_table(
        'achievementmember',
        sa.Column('achievement_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['achievement_id'], ['achievement.id'], ),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('achievement_id', 'person_id'),
    )
    op.create_index('ix_achievementmember_person_id', 'achievementmember', ['person_id'], unique=False)
    op.create_table(
        'squadproject',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('squad_id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['squad_id'], ['squad.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_index('ix_squadproject_squad_id', 'squadproject', ['squad_id'], unique=False)
    op.create_table(
        'projectfollowup',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['squadproject.id'], ),
        sa.ForeignKeyConstraint(['author_id'], ['person.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_projectfollowup_project_id', 'projectfollowup', ['project_id'], unique=False)
    op.create_index('ix_projectfollowup_created_at', 'projectfollowup', ['created_at'], unique=False)
    # Every 实绩 so far: its author took part.
    op.execute("INSERT INTO achievementmember (achievement_id, person_id) SELECT id, author_id FROM achievement")
    # ADD COLUMN on both databases, no batch rebuild.
    op.add_column('contactlog', sa.Column('area', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                          server_default=''))
    op.add_column('planitem', sa.Column('area', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                        server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('planitem') as batch_op:
        batch_op.drop_column('area')
    with op.batch_alter_table('contactlog') as batch_op:
        batch_op.drop_column('area')
    for table in ('projectfollowup', 'squadproject', 'achievementmember', 'classsignup', 'openclass', 'mentorcertificate', 'mentorincentive', 'mentornomination'):
        op.drop_table(table)
    op.drop_index('ix_reviewreport_mentor_id', table_name='reviewreport')
    op.drop_index('ix_reviewreport_quarter', table_name='reviewreport')
    op.drop_index('ix_reviewreport_pairing_id', table_name='reviewreport')
    op.drop_table('reviewreport')
