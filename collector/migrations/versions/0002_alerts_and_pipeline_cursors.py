"""alerts (detection results, deduplicated), pipeline cursors, when an agent was last reported stale,
and each unit's allowed listening ports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:27:04.108286
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import collector.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_cursors',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('group', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('event_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('first_seen', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_dedupe_key', ['dedupe_key', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule_id'), ['rule_id'], unique=False)
        batch_op.create_index('ix_alerts_unit_status_last', ['unit_id', 'status', 'last_seen'], unique=False)

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stale_reported_at', collector.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allowed_ports', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('allowed_ports')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('stale_reported_at')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_unit_status_last')
        batch_op.drop_index(batch_op.f('ix_alerts_rule_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_host_id'))
        batch_op.drop_index('ix_alerts_dedupe_key')

    op.drop_table('alerts')
    op.drop_table('pipeline_cursors')
