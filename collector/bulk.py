"""Bulk INSERT that converts each distinct value once.

SQLAlchemy runs every column's bind processor on every row (JSON encoding, datetime conversion);
inserting the 820,000 findings of a first full match that was over half the time of the insert
(measured: bench/match.py --profile). Rows of one bulk write share most of their values — the run's
timestamp, a handful of deadlines, the evidence document of every host with the same build — so
``insert_many`` converts each distinct value once, with the column type's own processor (what is
stored is exactly what a normal insert stores), and hands plain tuples to the driver's executemany.
"""

from __future__ import annotations

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
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    names = list(compiled.positiontup) if compiled.positional else keys
    converters = [_memoised(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    sql = str(compiled)
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        if compiled.positional:
            params: list[Any] = [tuple(conv(row[name]) for name, conv in zip(names, converters, strict=True))
                                 for row in part]
        else:
            params = [{name: conv(row[name]) for name, conv in zip(names, converters, strict=True)} for row in part]
        conn.exec_driver_sql(sql, params)
    return len(rows)


def _memoised(process: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """The processor, remembering its result per value (per object for dicts and lists)."""
    if process is None:
        return _identity
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


def _identity(value: Any) -> Any:
    return value
