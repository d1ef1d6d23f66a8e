"""Automatic audit of people's changes: every ORM insert, update and delete of an audited table, made in
a session that carries an ``Actor`` (``attach``), is written to ``audit_log`` in the same transaction.

Hooking the session instead of each service means a new service cannot forget to audit, and the log
is committed exactly when (and only if) the change is. Sessions without an actor — agents' ingest,
the detection pipeline, the feed matcher — are machine work and are not in this log. Bulk
``UPDATE``/``DELETE`` statements bypass the ORM; services that change people-facing rows load them.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from collector.access import Actor
from collector.audit.models import AuditEntry
from collector.types import utcnow

ACTOR_KEY = "khien.actor"

# The tables people change through the console, the API or `khien` commands.
AUDITED_TABLES = frozenset({
    "alerts", "alert_comments", "alert_suppressions", "findings", "remediation_comments", "remediation_evidence",
    "risk_exceptions",
    "attestations", "evidence_files", "incidents", "score_adjustments", "score_appeals", "published_rankings",
    "users", "api_tokens", "units", "unit_ranges", "scan_policies", "enrollment_tokens", "agents",
})
# Never copied into the log, even hashed: the log is readable by auditors.
REDACTED = frozenset({"password_hash", "token_hash", "totp_secret", "csrf_token", "secret_hash"})
MAX_VALUE_CHARS = 2000


def attach(session: Session, actor: Actor) -> None:
    """From now on, this session's changes are audited as ``actor``'s."""
    session.info[ACTOR_KEY] = actor


def actor_of(session: Session) -> Actor | None:
    return session.info.get(ACTOR_KEY)


def entry(actor: Actor, *, action: str, target_type: str, target_id: Any = None, unit_id: int | None = None,
          before: dict | None = None, after: dict | None = None) -> dict[str, Any]:
    return {"at": utcnow(), "actor": actor.username[:128], "role": actor.role, "via": actor.via,
            "source_ip": actor.source_ip, "action": action, "target_type": target_type,
            "target_id": None if target_id is None else str(target_id)[:64], "unit_id": unit_id,
            "before": before, "after": after}


@event.listens_for(Session, "after_flush")
def _audit_flush(session: Session, _context) -> None:
    actor = actor_of(session)
    if actor is None:
        return
    rows = []
    for obj, action in ([(o, "create") for o in session.new] + [(o, "update") for o in session.dirty]
                        + [(o, "delete") for o in session.deleted]):
        table = getattr(obj, "__tablename__", None)
        if table not in AUDITED_TABLES:
            continue
        before, after = _diff(obj, action)
        if action == "update" and not after and not before:
            continue  # touched but nothing changed
        rows.append(entry(actor, action=action, target_type=table, target_id=_identity(obj),
                          unit_id=_unit_of(obj, table), before=before, after=after))
    if rows:
        session.connection().execute(insert(AuditEntry.__table__), rows)


def _diff(obj: Any, action: str) -> tuple[dict | None, dict | None]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        name = attr.key
        history = state.attrs[name].history
        if action == "create":
            after[name] = _value(name, state.dict.get(name))
        elif action == "delete":
            before[name] = _value(name, state.dict.get(name))
        elif history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old != new:
                before[name], after[name] = _value(name, old), _value(name, new)
    if action == "create":
        return None, after
    if action == "delete":
        return before, None
    return before, after


def _value(name: str, value: Any) -> Any:
    if name in REDACTED and value is not None:
        return "[redacted]"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()  # one zone in the whole log
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict | list):
        text = repr(value)
        return value if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def _identity(obj: Any) -> str | None:
    state = inspect(obj)
    key = [state.dict.get(state.mapper.get_property_by_column(c).key) for c in state.mapper.primary_key]
    return None if any(k is None for k in key) else "/".join(str(k) for k in key)


def _unit_of(obj: Any, table: str) -> int | None:
    if table == "units":
        return getattr(obj, "id", None)
    unit_id = getattr(obj, "unit_id", None)
    return unit_id if isinstance(unit_id, int) else None
