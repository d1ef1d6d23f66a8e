"""finding sightings: when a producer last reported a subject's complete findings of one kind

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 10:40:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('finding_sightings',
    sa.Column('identity', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('producer', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('seen_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('identity', 'kind', 'producer')
    )


def downgrade() -> None:
    op.drop_table('finding_sightings')
