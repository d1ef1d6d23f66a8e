"""Builders for collector tests: a unit tree, users, enrollment and wire batches."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.agents import service as agents
from collector.db import Database
from collector.units import service as units
from collector.units.models import UnitCreate
from collector.users import service as users

PASSWORD = "correct horse battery staple"


def seed_units(db: Database) -> None:
    with db.transaction() as s:
        units.create(s, data=UnitCreate(code="P", name="Province", kind="province"))
        units.create(s, data=UnitCreate(code="D1", name="Dept one", kind="department", parent_code="P"))
        units.create(s, data=UnitCreate(code="D2", name="Dept two", kind="department", parent_code="P"))


def add_user(db: Database, name: str, role: str, unit: str | None = None) -> None:
    with db.transaction() as s:
        users.create(s, username=name, password=PASSWORD, role=role, unit_code=unit)


def api_token(db: Database, name: str) -> str:
    with db.transaction() as s:
        return users.create_api_token(s, username=name, expires_in=timedelta(days=1))


def enroll_token(db: Database, unit: str = "D1", *, max_uses: int | None = None,
                 expires_in: timedelta = timedelta(hours=1)) -> str:
    with db.transaction() as s:
        return agents.create_enrollment_token(s, unit_code=unit, expires_in=expires_in, max_uses=max_uses)


def identity(machine_id: str = "a" * 32, hostname: str = "web01", **extra: Any) -> dict[str, Any]:
    return {"hostname": hostname, "machine_id": machine_id, "product_uuid": None, "macs": ["52:54:00:12:34:56"]}\
        | extra


def batch_headers(agent: dict[str, Any]) -> dict[str, str]:
    """What an agent sends a gzip batch with, from its enrollment answer (agent_id, secret)."""
    return {"Authorization": f"Bearer {agent['agent_id']}.{agent['secret']}", "Content-Encoding": "gzip",
            "Content-Type": "application/json"}


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def section(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from agent.wire import section_hash

    return {"hash": section_hash(rows), "rows": rows}


def batch(items: list[dict[str, Any]], batch_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"schema": 1, "batch_id": batch_id or str(uuid.uuid4()), "agent_time": now_iso(),
            "items": items} | extra


def heartbeat(**data: Any) -> dict[str, Any]:
    return {"type": "host.heartbeat", "ts": now_iso(),
            "data": {"agent_version": "0.1.0", "agent_uptime_s": 5.0} | data}


def inventory(sections: dict[str, list[dict[str, Any]]], full: bool = True) -> dict[str, Any]:
    return {"type": "inventory.snapshot", "ts": now_iso(),
            "data": {"full": full, "sections": {k: section(v) for k, v in sections.items()}}}


def gz(payload: Any) -> bytes:
    return gzip.compress(json.dumps(payload).encode())


PKG = {"name": "openssl", "version": "3.0.11-1~deb12u2", "arch": "amd64", "source": "openssl",
       "source_version": "3.0.11-1~deb12u2", "manager": "dpkg"}
PORT = {"proto": "tcp", "family": "ipv4", "address": "0.0.0.0", "port": 22, "pid": 1, "process": "sshd"}
USER = {"name": "alice", "uid": 1000, "gid": 1000, "home": "/home/alice", "shell": "/bin/bash",
        "password_status": "set"}
SERVICE = {"name": "ssh.service", "enabled": "enabled", "active": "active"}
