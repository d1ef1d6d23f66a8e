"""alerts: (unit_id, severity, status) index, so a unit's queue counts read the index only

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22 14:50:00.000000
"""

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_alerts_unit_severity_status', 'alerts', ['unit_id', 'severity', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alerts_unit_severity_status', table_name='alerts')
