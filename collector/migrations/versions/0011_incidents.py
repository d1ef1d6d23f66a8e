"""incidents: detection and reporting times (A8's reporting half, the annual report's incidents)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 11:45:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('detected_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('initial_report_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('full_report_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('caused_by_overdue', sa.Boolean(), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_unit_detected', ['unit_id', 'detected_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_unit_detected')
    op.drop_table('incidents')
