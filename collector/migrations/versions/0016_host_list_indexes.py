"""hosts: keyset indexes for the console's host list (by name, by last contact)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22 14:00:00.000000
"""

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_hosts_hostname', 'hosts', ['hostname', 'id'], unique=False)
    op.create_index('ix_hosts_last_seen', 'hosts', ['last_seen', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_hosts_last_seen', table_name='hosts')
    op.drop_index('ix_hosts_hostname', table_name='hosts')
