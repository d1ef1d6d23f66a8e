"""remediation items: owner, assignee, status, comments, evidence; exception requests (issue 7)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 13:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('remediation_status', sqlmodel.sql.sqltypes.AutoString(length=32),
                                      server_default='open', nullable=False))
        batch_op.add_column(sa.Column('assignee', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index('ix_findings_status_first_seen', ['status', 'first_seen'], unique=False)

    op.create_table('remediation_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', BIGINT, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('created_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_remediation_comments_finding', 'remediation_comments', ['finding_id', 'id'], unique=False)

    op.create_table('remediation_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', BIGINT, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('stored_path', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('uploaded_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('uploaded_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_remediation_evidence_finding', 'remediation_evidence', ['finding_id', 'id'], unique=False)

    # Exceptions already recorded were approved when created: the server default says so.
    with op.batch_alter_table('risk_exceptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      server_default='approved', nullable=False))
        batch_op.add_column(sa.Column('finding_id', BIGINT, nullable=True))
        batch_op.add_column(sa.Column('requested_at', collector.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('requested_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column('decided_at', collector.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decision_comment', sqlmodel.sql.sqltypes.AutoString(length=4000),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_risk_exceptions_finding_id'), ['finding_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_exceptions_finding_id'))
        for column in ('decision_comment', 'decided_at', 'decided_by', 'requested_days', 'requested_at',
                       'finding_id', 'status'):
            batch_op.drop_column(column)
    op.drop_index('ix_remediation_evidence_finding', table_name='remediation_evidence')
    op.drop_table('remediation_evidence')
    op.drop_index('ix_remediation_comments_finding', table_name='remediation_comments')
    op.drop_table('remediation_comments')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index('ix_findings_status_first_seen')
        batch_op.drop_column('assignee')
        batch_op.drop_column('remediation_status')
