"""check results (with history) and risk exceptions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 05:47:53.846485
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import collector.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('check_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('check_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('critical', sa.Boolean(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('evidence', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('requirements', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('valid_from', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_to', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.create_index('ix_check_results_host_current', ['host_id', 'valid_to'], unique=False)
        batch_op.create_index('ix_check_results_unit_check', ['unit_id', 'check_id', 'valid_to'], unique=False)

    op.create_table('risk_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('justification', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('compensating_control', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('renewals', sa.Integer(), nullable=False),
    sa.Column('revoked_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('revoke_reason', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_exceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_exceptions_host_id'), ['host_id'], unique=False)
        batch_op.create_index('ix_risk_exceptions_target', ['target_kind', 'target'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_exceptions_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('risk_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_exceptions_unit_id'))
        batch_op.drop_index('ix_risk_exceptions_target')
        batch_op.drop_index(batch_op.f('ix_risk_exceptions_host_id'))

    op.drop_table('risk_exceptions')
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.drop_index('ix_check_results_unit_check')
        batch_op.drop_index('ix_check_results_host_current')

    op.drop_table('check_results')
