"""join the programme branches

Revision ID: 0007_merge
Revises: 0003_dingtalk, 0004_sanling, 0005_changqing, 0006_reviews
Create Date: 2026-11-21 09:08:14.366141
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0007_merge'
down_revision: Union[str, Sequence[str], None] = ('0003_dingtalk', '0004_sanling', '0005_changqing', '0006_reviews')
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
