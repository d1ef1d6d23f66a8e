"""events: partitioned by month of received_at on PostgreSQL (retention drops whole months)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-23 09:00:00.000000

PostgreSQL only; SQLite keeps its plain table (retention deletes there in batches).

The partition key is ``received_at``, the server's clock: an agent's ``ts`` can be hours or years off,
and a key it controls could route rows into a month already dropped or one far ahead.

A primary key of a partitioned table must contain the partition key, so it becomes
``(id, received_at)``. ``id`` stays unique because only the ``events_id_seq`` sequence assigns it
(every insert leaves ``id`` to the default), and the sequence is carried over, so ids continue
increasing across the swap — the detection cursor reads events in id order. No table has a FOREIGN
KEY to ``events`` (checked below; alerts keep their triggering event ids as a JSON list, and their
pages say when those events are no longer stored), so nothing has to reference the non-unique ``id``.

Existing rows are copied with one INSERT ... SELECT inside the migration's transaction (``events`` is
locked for its duration: migrations run at start-up, before the server takes traffic); the primary
key, the indexes and the foreign keys are built after the copy, which is faster than maintaining
them row by row. Downgrade copies the rows back into a plain table.
"""

from alembic import op
from sqlalchemy import text

from collector.events import partitions
from collector.types import utcnow

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

COLUMNS = "id, unit_id, host_id, type, ts, received_at, origin, data"
INDEXES = (("ix_events_unit_ts", "unit_id, ts"), ("ix_events_host_ts", "host_id, ts"),
           ("ix_events_type_ts", "type, ts"))


def _table_ddl(name: str, tail: str = "") -> str:
    # The columns of 0001's ``events``; ``id`` draws from the sequence the old table owned.
    return (f"CREATE TABLE {name} (id bigint NOT NULL DEFAULT nextval('events_id_seq'), "
            "unit_id integer NOT NULL, host_id integer NOT NULL, type varchar(64) NOT NULL, "
            "ts timestamptz NOT NULL, received_at timestamptz NOT NULL, origin varchar(16) NOT NULL, "
            f"data jsonb NOT NULL){tail}")


def _keys_and_indexes(conn, primary_key: str) -> None:
    conn.execute(text(f"ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY ({primary_key})"))
    conn.execute(text("ALTER TABLE events ADD CONSTRAINT events_unit_id_fkey FOREIGN KEY (unit_id) "
                      "REFERENCES units (id)"))
    conn.execute(text("ALTER TABLE events ADD CONSTRAINT events_host_id_fkey FOREIGN KEY (host_id) "
                      "REFERENCES hosts (id)"))
    for name, columns in INDEXES:
        conn.execute(text(f"CREATE INDEX {name} ON events ({columns})"))


def _set_aside(conn, new_name: str) -> None:
    """Rename ``events`` out of the way and free the names (indexes, sequence) the new table takes."""
    conn.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
    conn.execute(text(f"ALTER TABLE events RENAME TO {new_name}"))
    conn.execute(text(f"ALTER TABLE {new_name} RENAME CONSTRAINT events_pkey TO {new_name}_pkey"))
    for name, _columns in INDEXES:
        conn.execute(text(f"DROP INDEX {name}"))
    # Dropping the old table would drop a sequence it owns, and with it the ids' continuity.
    conn.execute(text("ALTER SEQUENCE events_id_seq OWNED BY NONE"))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    referencing = conn.execute(text("SELECT conrelid::regclass::text FROM pg_constraint "
                                    "WHERE confrelid = to_regclass('events') AND contype = 'f'")).scalars().all()
    if referencing:  # a later table pointing at events.id would lose its guarantee silently
        raise RuntimeError(f"tables with a foreign key to events: {', '.join(referencing)}")
    _set_aside(conn, "events_unpartitioned")
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {partitions.SCHEMA}"))
    conn.execute(text(_table_ddl("events", " PARTITION BY RANGE (received_at)")))
    conn.execute(text(f"CREATE TABLE {partitions.default_qualified()} PARTITION OF events DEFAULT"))
    # A partition for every month that has rows (not every month between the oldest and the newest:
    # one row stamped by a server clock once set to 1970 must not create 650 empty tables), plus the
    # months ahead; rows received beyond that horizon go to DEFAULT, as they would on insert.
    now = utcnow()
    this_month = partitions.month_of(now)
    horizon = partitions.add_months(this_month, partitions.MONTHS_AHEAD + 1)
    months = {partitions.month_of(m) for m in conn.execute(text(
        "SELECT DISTINCT date_trunc('month', received_at, 'UTC') FROM events_unpartitioned "
        "WHERE received_at < :horizon"), {"horizon": horizon}).scalars()}
    months |= {partitions.add_months(this_month, i) for i in range(partitions.MONTHS_AHEAD + 1)}
    for start in sorted(months):
        partitions.create(conn, start=start)
    conn.execute(text(f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_unpartitioned"))
    conn.execute(text("DROP TABLE events_unpartitioned"))
    _keys_and_indexes(conn, "id, received_at")
    conn.execute(text("ALTER SEQUENCE events_id_seq OWNED BY events.id"))
    conn.execute(text("ANALYZE events"))  # new tables have no planner statistics until autovacuum comes


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _set_aside(conn, "events_partitioned")
    conn.execute(text(_table_ddl("events")))
    conn.execute(text(f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_partitioned"))
    conn.execute(text("DROP TABLE events_partitioned"))  # and every partition with it
    conn.execute(text(f"DROP SCHEMA IF EXISTS {partitions.SCHEMA}"))
    _keys_and_indexes(conn, "id")
    conn.execute(text("ALTER SEQUENCE events_id_seq OWNED BY events.id"))
    conn.execute(text("ANALYZE events"))
