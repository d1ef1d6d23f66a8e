"""score adjustments, appeals against snapshot values, published rankings

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 11:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('score_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('points', sa.Float(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('score_adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_score_adjustments_unit_id'), ['unit_id'], unique=False)

    op.create_table('score_appeals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('indicator', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('submitted_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('corrected_value', sa.Float(), nullable=True),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('decided_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('score_appeals', schema=None) as batch_op:
        batch_op.create_index('ix_score_appeals_period_unit', ['period', 'unit_id'], unique=False)

    op.create_table('published_rankings',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('published_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('published_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )


def downgrade() -> None:
    op.drop_table('published_rankings')
    with op.batch_alter_table('score_appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_score_appeals_period_unit')
    op.drop_table('score_appeals')
    with op.batch_alter_table('score_adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_score_adjustments_unit_id'))
    op.drop_table('score_adjustments')
