"""alerts: (severity, status, id) index for the queue's bounded counts per severity

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22 14:45:00.000000
"""

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_alerts_severity_status_id', 'alerts', ['severity', 'status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alerts_severity_status_id', table_name='alerts')
