"""attestations (M1–M3 evidence and reviews) and their evidence files

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 10:10:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import collector.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attestations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('item', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('submitted_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rating', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('rating_value', sa.Float(), nullable=True),
    sa.Column('review_comment', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('reviewed_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('withdrawn_at', collector.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.create_index('ix_attestations_unit_period_item', ['unit_id', 'period', 'item'], unique=False)

    op.create_table('evidence_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attestation_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('stored_path', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('uploaded_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('uploaded_at', collector.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attestation_id'], ['attestations.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_files_attestation_id'), ['attestation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_files_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_files_unit_id'), ['unit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_files_unit_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_files_sha256'))
        batch_op.drop_index(batch_op.f('ix_evidence_files_attestation_id'))

    op.drop_table('evidence_files')
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_index('ix_attestations_unit_period_item')

    op.drop_table('attestations')
