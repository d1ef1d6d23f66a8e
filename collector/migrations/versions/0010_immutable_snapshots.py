"""score snapshots: a trigger makes frozen rows immutable (no UPDATE, no DELETE)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 11:40:00.000000
"""

from alembic import op

from collector.scoring import immutable

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    immutable.install(op.get_bind())


def downgrade() -> None:
    immutable.remove(op.get_bind())
