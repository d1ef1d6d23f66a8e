"""Reading and exporting the audit log, and the named events the ORM hook cannot see (logins)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlmodel import Session

from collector.access import Action, Actor
from collector.audit import tracking
from collector.audit.models import AuditEntry
from collector.errors import InvalidInput

MAX_PAGE = 500
EXPORT_LIMIT = 100_000


def log(session: Session, *, actor: Actor, action: str, target_type: str, target_id: object = None,
        unit_id: int | None = None, before: dict | None = None, after: dict | None = None) -> None:
    """Record a named event (a login, a failed login, a logout, an export) in the current transaction."""
    session.execute(insert(AuditEntry.__table__), [tracking.entry(
        actor, action=action, target_type=target_type, target_id=target_id, unit_id=unit_id,
        before=before, after=after)])


def list_(session: Session, *, actor: Actor, who: str | None = None, action: str | None = None,
          target_type: str | None = None, target_id: str | None = None, unit_id: int | None = None,
          since: datetime | None = None, until: datetime | None = None, before_id: int | None = None,
          limit: int = 100) -> Sequence[AuditEntry]:
    """Newest first, keyset-paged by id; admins and auditors only."""
    actor.require(Action.view_audit)
    if not 1 <= limit <= EXPORT_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {EXPORT_LIMIT}")
    if since and until and until < since:
        raise InvalidInput("until is before since")
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    for column, value in ((AuditEntry.actor, who), (AuditEntry.action, action),
                          (AuditEntry.target_type, target_type), (AuditEntry.target_id, target_id),
                          (AuditEntry.unit_id, unit_id)):
        if value is not None:
            q = q.where(column == value)
    if since:
        q = q.where(AuditEntry.at >= since)
    if until:
        q = q.where(AuditEntry.at < until)
    if before_id:
        q = q.where(AuditEntry.id < before_id)
    return list(session.scalars(q))


CSV_HEADERS = ("id", "at", "actor", "role", "via", "source_ip", "action", "target_type", "target_id", "unit_id",
               "before", "after")


def to_csv(rows: Sequence[AuditEntry]) -> str:
    """UTF-8 with a BOM (Excel), one change per line; before/after as JSON; formula-looking cells neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADERS)
    for r in rows:
        writer.writerow([_cell(v) for v in (
            r.id, r.at.isoformat(), r.actor, r.role, r.via, r.source_ip or "", r.action, r.target_type,
            r.target_id or "", "" if r.unit_id is None else r.unit_id,
            "" if r.before is None else json.dumps(r.before, ensure_ascii=False, sort_keys=True),
            "" if r.after is None else json.dumps(r.after, ensure_ascii=False, sort_keys=True))])
    return "\ufeff" + buf.getvalue()


def _cell(value: object) -> object:
    """A spreadsheet runs a cell starting with = + - @ as a formula: values from agents could be hostile."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
