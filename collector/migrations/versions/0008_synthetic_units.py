"""units.synthetic: a unit (and everything under it) is generated demo data, not a real agency

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: on SQLite batch mode copies and drops ``units``, which
    # every other table references — with foreign keys on, that fails on any database with data.
    op.add_column('units', sa.Column('synthetic', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('synthetic')
