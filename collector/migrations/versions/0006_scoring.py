"""scoring: host activity by day, daily indicator values, frozen monthly snapshots

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 10:20:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('host_activity',
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('host_id', 'day')
    )
    with op.batch_alter_table('host_activity', schema=None) as batch_op:
        batch_op.create_index('ix_host_activity_day', ['day'], unique=False)

    op.create_table('score_values',
    sa.Column('id', BIGINT_PK, autoincrement=True, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('indicator', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('value_without_exceptions', sa.Float(), nullable=True),
    sa.Column('numerator', sa.Float(), nullable=False),
    sa.Column('denominator', sa.Float(), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('inputs_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('computed_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_id', 'day', 'indicator', name='uq_score_values_unit_day_indicator')
    )
    with op.batch_alter_table('score_values', schema=None) as batch_op:
        batch_op.create_index('ix_score_values_day', ['day'], unique=False)

    op.create_table('score_snapshots',
    sa.Column('id', BIGINT_PK, autoincrement=True, nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('indicator', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('value_without_exceptions', sa.Float(), nullable=True),
    sa.Column('numerator', sa.Float(), nullable=False),
    sa.Column('denominator', sa.Float(), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('inputs_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('frozen_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('period', 'unit_id', 'indicator', name='uq_score_snapshots_period_unit')
    )
    with op.batch_alter_table('score_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_score_snapshots_unit_id'), ['unit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('score_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_score_snapshots_unit_id'))
    op.drop_table('score_snapshots')
    with op.batch_alter_table('score_values', schema=None) as batch_op:
        batch_op.drop_index('ix_score_values_day')
    op.drop_table('score_values')
    with op.batch_alter_table('host_activity', schema=None) as batch_op:
        batch_op.drop_index('ix_host_activity_day')
    op.drop_table('host_activity')
