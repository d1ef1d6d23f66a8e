"""alert triage: workflow times, assignment, comments, suppressions (issue 7)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 13:30:00.000000
"""

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
