"""What a backup knows about a database's contents: its tables, their row counts, its schema revision.

Shared by both backends so a backup's manifest and a restore's verification count the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from collector.db import MIGRATIONS_DIR

VERSION_TABLE = "alembic_version"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent view of a database as it went into a backup."""

    revision: str
    tables: dict[str, int]  # table -> rows

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def known_revisions() -> set[str]:
    """Every migration this code carries (same naming convention as ``collector.db.head_revision``)."""
    return {p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py")}


def table_names(conn: Connection) -> list[str]:
    """The application's tables: SQLite's user tables, or PostgreSQL's in the current schema.

    A partition is counted inside its parent (once), not as a table of its own.
    """
    if conn.dialect.name == "postgresql":
        query = ("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                 "ORDER BY 1")
    else:
        query = (r"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' "
                 "ORDER BY 1")
    return list(conn.execute(text(query)).scalars())


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def row_counts(conn: Connection, names: list[str] | None = None) -> dict[str, int]:
    """Exact row count of every table (or of ``names``, which must exist)."""
    return {name: conn.execute(text(f"SELECT count(*) FROM {_quote(conn, name)}")).scalar_one()
            for name in (table_names(conn) if names is None else names)}


def populated_tables(conn: Connection) -> list[str]:
    """Tables holding at least one row, besides the schema version (a freshly migrated database is empty)."""
    return [name for name in table_names(conn) if name != VERSION_TABLE
            and conn.execute(text(f"SELECT 1 FROM {_quote(conn, name)} LIMIT 1")).first() is not None]


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision the database is at; None when it has no Khiên schema."""
    if VERSION_TABLE not in table_names(conn):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def count_difference(*, expected: dict[str, int], actual: dict[str, int]) -> str | None:
    """The first way two table -> rows maps differ, for an error message; None when they agree."""
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            return f"table {name} is missing"
        if name not in expected:
            return f"table {name} is not in the backup"
        if expected[name] != actual[name]:
            return f"table {name} has {actual[name]:,} rows, the backup {expected[name]:,}"
    return None
