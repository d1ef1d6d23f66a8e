"""Bulk INSERT that converts each distinct value once.

SQLAlchemy runs every column's bind processor on every row (JSON encoding, datetime conversion);
inserting the 820,000 findings of a first full match that was over half the time of the insert
(measured: bench/match.py --profile). Rows of one bulk write share most of their values — the run's
timestamp, a handful of deadlines, the evidence document of every host with the same build — so
``insert_many`` converts each distinct value once, with the column type's own processor (what is
stored is exactly what a normal insert stores), and hands plain tuples to the driver's executemany —
on PostgreSQL to COPY, which streams the rows instead of sending one statement each (measured:
~40 s of the first full match's 103 s at 10,000 hosts went to psycopg's per-row executemany).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

CHUNK = 2000


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, chunk: int = CHUNK) -> int:
    """Insert ``rows`` (dicts with the same keys, column names of ``table``); returns how many."""
    if not rows:
        return 0
    keys = list(rows[0])
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return _copy(conn, table, keys, rows)
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    if not compiled.positional:
        raise NotImplementedError(f"insert_many: {dialect.name} binds by name")  # SQLite binds by position
    names = list(compiled.positiontup)
    build = _row_builder(names, [_processor(table, name, dialect) for name in names])
    sql = str(compiled)
    for start in range(0, len(rows), chunk):
        conn.exec_driver_sql(sql, [tuple(build(row)) for row in rows[start:start + chunk]])
    return len(rows)


def _copy(conn: Connection, table: Table, keys: list[str], rows: Sequence[dict[str, Any]]) -> int:
    """COPY FROM STDIN in the connection's transaction; JSON documents are encoded once each, as text
    (COPY's text format hands them to jsonb's own parser, as an INSERT would)."""
    dialect = conn.dialect
    build = _row_builder(keys, [_json_as_text(_processor(table, k, dialect)) for k in keys])
    prep = dialect.identifier_preparer
    columns = ", ".join(prep.quote(k) for k in keys)
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {prep.format_table(table)} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(build(row))
    return len(rows)


def _processor(table: Table, name: str, dialect: Any) -> Callable[[Any], Any] | None:
    return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)


def _row_builder(names: list[str], processors: list[Callable[[Any], Any] | None]) -> Callable[[dict], list]:
    """A function from a row dict to its driver values; only columns with a processor are converted."""
    pick = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    converted = [(i, _memoised(p)) for i, p in enumerate(processors) if p is not None]

    def build(row: dict) -> list:
        values = list(pick(row))
        for i, convert in converted:
            values[i] = convert(values[i])
        return values

    return build


def _json_as_text(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """psycopg's bind processors wrap documents (Jsonb) to be encoded per row: encode once instead."""
    if process is None:
        return None
    from psycopg.types.json import Json, Jsonb

    def convert(value: Any) -> Any:
        out = process(value)
        return json.dumps(out.obj) if isinstance(out, Json | Jsonb) else out

    return convert


def _memoised(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The processor, remembering its result per value (per object for dicts and lists)."""
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        # Unhashable documents are shared objects in a bulk write: key them by identity (the rows keep
        # them alive, so an id is not reused meanwhile). The type is in the key so 1, 1.0 and True
        # stay apart.
        key = (id(value), 0) if isinstance(value, (dict, list)) else (value, type(value))
        try:
            return seen[key]
        except KeyError:
            out = seen[key] = process(value)
            return out

    return convert
