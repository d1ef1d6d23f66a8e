"""events.tx (the inserting transaction) and pipeline_cursors.position_tx: detection reads events in
commit-safe order instead of serialising every event insert behind one advisory lock

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-22 19:00:00.000000

Until now every event-inserting transaction on PostgreSQL took one transaction-scoped advisory lock
and held it through its commit, so that ids became visible in id order for the detection cursor.
That made the commits of all ingest, across all server processes, take turns: the ceiling of ingest.

Now each row records the id of the transaction that inserted it (``pg_current_xact_id()``, a 64-bit
xid that never wraps) and detection reads in ``(tx, id)`` order, only below the oldest transaction
still running (``pg_snapshot_xmin``): every row below that horizon is final, committed or rolled back,
so the cursor never passes a row that becomes visible later. Inserts no longer wait for each other.

Existing rows get ``tx = 0`` (a constant default: no table rewrite), so they sort before every new
row, in id order as before; the detection cursor ``(0, position)`` continues exactly where it was.
SQLite has one writer at a time: ``tx`` stays 0 there and the order is the id order, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# A 64-bit transaction id as a plain bigint (xid8 has no cast to bigint; its text form is its value).
PG_TX_DEFAULT = "(pg_current_xact_id()::text::bigint)"


def upgrade() -> None:
    op.add_column('events', sa.Column('tx', sa.BigInteger(), nullable=False, server_default='0'))
    if op.get_bind().dialect.name == "postgresql":
        # Set after the column exists: the rows already there keep 0, new rows get their transaction.
        op.execute(f"ALTER TABLE events ALTER COLUMN tx SET DEFAULT {PG_TX_DEFAULT}")
    op.create_index('ix_events_tx_id', 'events', ['tx', 'id'], unique=False)
    op.add_column('pipeline_cursors', sa.Column('position_tx', sa.BigInteger(), nullable=False,
                                                server_default='0'))


def downgrade() -> None:
    op.drop_column('pipeline_cursors', 'position_tx')
    op.drop_index('ix_events_tx_id', table_name='events')
    op.drop_column('events', 'tx')
