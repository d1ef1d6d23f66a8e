"""alert triage: workflow times, assignment, comments, suppressions (issue 7)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 13:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expired_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expired_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('last_hit_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_suppressions_rule_unit', 'alert_suppressions', ['rule_id', 'unit_id'], unique=False)
    op.create_table('alert_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.BigInteger(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_alert_comments_alert_id'), 'alert_comments', ['alert_id'], unique=False)
    # Plain ADD COLUMNs (no foreign key, all nullable): SQLite needs no rebuild of a big alerts table.
    for column in (
        sa.Column('acknowledged_at', collector.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('closed_at', collector.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('assignee', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('suppression_id', sa.Integer(), nullable=True),
    ):
        op.add_column('alerts', column)
    op.create_index(op.f('ix_alerts_assignee'), 'alerts', ['assignee'], unique=False)
    op.create_index('ix_alerts_status_id', 'alerts', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alerts_status_id', table_name='alerts')
    op.drop_index(op.f('ix_alerts_assignee'), table_name='alerts')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        for name in ('suppression_id', 'assignee', 'closed_by', 'closed_at', 'acknowledged_by', 'acknowledged_at'):
            batch_op.drop_column(name)
    op.drop_index(op.f('ix_alert_comments_alert_id'), table_name='alert_comments')
    op.drop_table('alert_comments')
    op.drop_index('ix_alert_suppressions_rule_unit', table_name='alert_suppressions')
    op.drop_table('alert_suppressions')
