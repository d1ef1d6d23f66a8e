"""accounts: per-user language, TOTP second factor, idle sessions, pending second-factor logins (issue 7)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 13:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing people have chosen no language yet and have no second factor (server default false).
    # add_column (no batch rebuild) so SQLite never copies the users table other tables reference.
    op.add_column('users', sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    op.add_column('users', sa.Column('totp_secret', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column('users', sa.Column('totp_enabled', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.add_column('console_sessions', sa.Column('last_seen_at', collector.types.UTCDateTime(timezone=True),
                                                nullable=True))
    op.create_table('pending_logins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('next_path', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
    sa.Column('source_ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_pending_logins_user_id', 'pending_logins', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pending_logins_user_id', table_name='pending_logins')
    op.drop_table('pending_logins')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enabled')
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('language')
