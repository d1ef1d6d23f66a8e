"""Builders for remediation and exception tests (service, API and console): findings with chosen dates,
and the ``Actor`` of a stored user."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from collector.access import Actor
from collector.db import Database
from collector.findings.models import Finding, FindingEvent
from collector.hosts import service as hosts
from collector.types import utcnow
from collector.units import service as units
from collector.users import service as users

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 64
_serial = itertools.count(1)


def actor(db: Database, username: str, *, via: str = "api") -> Actor:
    with db.session() as s:
        user = users.get_by_username(s, username=username)
        assert user is not None, username
        return Actor(username=user.username, role=user.role, scope=users.scope_for(s, user=user), user_id=user.id,
                     source_ip="127.0.0.1", via=via)


def add_host(db: Database, *, unit: str, hostname: str) -> int:
    with db.transaction() as s:
        host = hosts.find_or_create(s, unit_id=units.get_by_code(s, code=unit).id, now=utcnow(),
                                    identity={"hostname": hostname, "machine_id": f"{next(_serial):032x}",
                                              "product_uuid": None, "macs": []})
        s.add(host)
        s.flush()
        return host.id


def add_finding(db: Database, *, unit: str, host_id: int | None = None, rule: str | None = None,
                location: str = "openssl", first_seen: datetime | None = None, due_at: datetime | None = None,
                finding_class: str = "P2", kind: str = "vulnerability", title: str = "OpenSSL flaw",
                fixed_by: str | None = None, **extra: Any) -> int:
    """A finding row as the engine would store it; ``fixed_by`` closes it with that producer's proof."""
    n = next(_serial)
    now = utcnow()
    first_seen = first_seen or now - timedelta(days=3)
    due_at = due_at or now + timedelta(days=20)
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code=unit).id
        identity = f"host:{host_id}" if host_id else f"addr:{unit_id}:10.9.{n // 250}.{n % 250}"
        row = Finding(unit_id=unit_id, host_id=host_id, identity=identity, kind=kind,
                      rule=rule or f"CVE-2026-{n:05d}", location=location, dedupe_key=f"test-{n}",
                      title=title, finding_class=finding_class, status="open", sources="agent",
                      first_seen=first_seen, last_seen=first_seen, clock_start=first_seen, due_at=due_at, **extra)
        if fixed_by:
            proof = {"by": fixed_by, "at": now.isoformat(), "installed_version": "3.0.13-1~deb12u1"}
            row.status, row.fixed_at, row.fixed_proof, row.sources = "fixed", now, proof, ""
        s.add(row)
        s.flush()
        if fixed_by:
            s.add(FindingEvent(finding_id=row.id, unit_id=unit_id, at=now, action="fixed", detail=proof))
        return row.id
