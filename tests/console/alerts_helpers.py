"""Builders for alert triage tests: alerts as the detection pipeline records them, and actors per role."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from collector.access import Actor
from collector.alerts import service as alerts
from collector.db import Database
from collector.events import service as events
from collector.events.models import Event
from collector.hosts.models import Host
from collector.types import utcnow
from collector.users import service as users
from tests.console import helpers as h

HOSTILE_GROUP = '<img src=x onerror=alert(3)>"\''
RAW_LINE = "sshd[1]: Failed password for <script>alert(4)</script> from 10.0.0.9"


def add_people(db: Database) -> None:
    """An analyst (every unit) and an auditor, next to the seeded admin and unit officers."""
    h.add_user(db, "analyst1", "analyst")
    h.add_user(db, "auditor1", "auditor")


def actor(db: Database, username: str) -> Actor:
    with db.session() as s:
        user = users.get_by_username(s, username=username)
        return Actor(username=user.username, role=user.role, scope=users.scope_for(s, user=user), user_id=user.id)


def add_alert(db: Database, *, host_id: int, rule_id: str = "ssh_lnx_brute_force", severity: str = "high",
              group: dict[str, Any] | None = None, key: str | None = None, at: datetime | None = None,
              raw: str | None = None, suppress_s: int = 0, now: datetime | None = None) -> int:
    """One detection recorded the pipeline's way (with a stored triggering event); returns the alert id."""
    at = at or utcnow() - timedelta(minutes=5)
    with db.transaction() as s:
        host = s.get(Host, host_id)
        event_ids = []
        if raw is not None:
            events.add_many(s, rows=[{"unit_id": host.unit_id, "host_id": host.id, "type": "auth.failure", "ts": at,
                                      "received_at": at, "origin": "agent", "data": {"raw": raw, "user": "root"}}])
            event_ids = [s.exec(select(Event.id).order_by(Event.id.desc()).limit(1)).one()]
        alert, _new = alerts.record(s, now=now, detection=alerts.NewDetection(
            unit_id=host.unit_id, host_id=host.id, rule_id=rule_id, severity=severity,
            key=key or f"{rule_id}|{host_id}|{group}", group=group or {}, first_ts=at, last_ts=at, event_count=1,
            event_ids=tuple(event_ids), suppress_s=suppress_s))
        s.flush()
        return alert.id


def many_alerts(db: Database, *, host_id: int, n: int) -> list[int]:
    """``n`` open alerts on one host in one transaction (for paging)."""
    now = utcnow()
    with db.transaction() as s:
        host = s.get(Host, host_id)
        made = []
        for i in range(n):
            made.append(alerts.record(s, now=now, detection=alerts.NewDetection(
                unit_id=host.unit_id, host_id=host.id, rule_id="ssh_lnx_brute_force", severity="medium",
                key=f"bulk-{i}", group={"n": i}, first_ts=now, last_ts=now, event_count=1, event_ids=(),
                suppress_s=0))[0])
        s.flush()
        return [a.id for a in made]
