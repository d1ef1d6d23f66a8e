"""Builders for the host page sections: an enrolled agent on web01 that sends heartbeats and facts
through the real ingest pipeline, an alert, and a network scan stored by the scan service.

Hostile values (markup) go into every agent- or network-supplied field a section shows.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from collector import pipeline
from collector.agents import service as agents
from collector.agents.models import Agent
from collector.alerts import service as alerts
from collector.alerts.service import NewDetection
from collector.db import Database
from collector.hosts import service as hosts
from collector.ingest.schema import parse_batch
from collector.scans import store
from collector.scans.models import ScanRun
from collector.scans.nmap import HostResult, PortResult, ScanOutput
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from tests.console import helpers as h

ROOT_LOGIN = "ssh_lnx_root_login_disabled"
HOSTILE_REASON = "<b>spool_full</b>"
HOSTILE_COLLECTOR = "<svg onload=alert(3)>"
HOSTILE_FACT = "<iframe src=javascript:alert(4)>"
HOSTILE_BANNER = "<script>alert('banner')</script>"
HOSTILE_GROUP = "<img src=y onerror=alert(5)>"
WEB01_ADDRESS = "10.1.2.3"  # web01's interface address in tests/console/helpers.inventory
UNMANAGED_D1 = "10.1.2.99"
UNMANAGED_D2 = "10.2.0.77"
OS_ROW = {"platform": "linux", "id": "debian", "name": "Debian GNU/Linux", "version_id": "12",
          "pretty_name": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-18-amd64", "arch": "x86_64"}


@dataclass(frozen=True, slots=True)
class Sections:
    agent_id: str
    d1_alert: int
    d2_alert: int


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def enroll_agent(db: Database, *, unit: str, hostname: str, machine_id: str) -> Agent:
    """An agent enrolled for the seeded host with this identity (enrolment finds the same host)."""
    with db.transaction() as s:
        token = agents.create_enrollment_token(s, unit_code=unit, expires_in=timedelta(hours=1), max_uses=1)
    with db.transaction() as s:
        enrolled = agents.enroll(s, token=token, agent_version="0.2.0", identity={
            "hostname": hostname, "machine_id": machine_id, "product_uuid": None, "macs": []})
    with db.session() as s:
        return s.exec(select(Agent).where(Agent.id == enrolled.agent_id)).one()


def ingest(db: Database, agent: Agent, items: list[dict[str, Any]]) -> None:
    """One batch through the real pipeline (validation, heartbeat bookkeeping, judging facts, findings)."""
    batch = {"schema": 1, "batch_id": str(uuid.uuid4()), "agent_time": _iso(utcnow()), "items": items}
    pipeline.ingest_batch(db, agent=agent, batch=parse_batch(json.dumps(batch).encode()))


def heartbeat(at: datetime) -> dict[str, Any]:
    return {"type": "host.heartbeat", "ts": _iso(at), "data": {
        "agent_version": "0.2.0", "agent_uptime_s": 3600.0, "spool_items": 7, "spool_bytes": 2048,
        "dropped": {HOSTILE_REASON: 3}, "dead_letters": 2, "rss_bytes": 40 * 1024**2, "cpu_percent": 1.5,
        "collectors": {HOSTILE_COLLECTOR: {"runs": 4, "errors": 1, "status": "error", "last_error": h.XSS}}}}


def facts(at: datetime, *, permit_root: str) -> dict[str, Any]:
    kinds = {"sshd": {"available": True, "installed": True, "source": "sshd -T",
                      "settings": {"permitrootlogin": permit_root, "passwordauthentication": "no",
                                   "banner": HOSTILE_FACT}}}
    return {"type": "facts.snapshot", "ts": _iso(at), "data": {"kinds": kinds, "collected_in_ms": 5}}


def os_inventory(at: datetime) -> dict[str, Any]:
    from agent.wire import section_hash

    return {"type": "inventory.snapshot", "ts": _iso(at),
            "data": {"sections": {"os": {"hash": section_hash([OS_ROW]), "rows": [OS_ROW]}}}}


def raise_alert(db: Database, *, host_id: int, rule_id: str, group: dict[str, Any]) -> int:
    with db.transaction() as s:
        host, _ = hosts.get(s, scope=Scope.everything(), host_id=host_id)
        now = utcnow()
        alert, _new = alerts.record(s, detection=NewDetection(
            unit_id=host.unit_id, host_id=host.id, rule_id=rule_id, severity="high", key=f"{rule_id}:{host.id}",
            group=group, first_ts=now - timedelta(minutes=5), last_ts=now, event_count=3, event_ids=(),
            suppress_s=0))
        s.flush()
        return alert.id


def port(number: int, service: str, product: str | None = None, http_title: str | None = None) -> PortResult:
    return PortResult(proto="tcp", port=number, state="open", service=service, product=product, version=None,
                      extrainfo=None, tls=None, http_title=http_title, http_server=None, ssh_auth_methods=None)


def scan(db: Database, *, unit: str, results: list[HostResult]) -> None:
    """A completed scan run of ``unit`` stored by the scan service (hosts, ports, assets, findings)."""
    now = utcnow()
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code=unit).id
        run = ScanRun(unit_id=unit_id, profile="standard", targets=[r.address for r in results], trigger="cli",
                      status="completed", started_at=now, finished_at=now)
        s.add(run)
        s.flush()
        output = ScanOutput(command=("nmap",), started=now, finished=now, hosts=tuple(results),
                            nmap_version="7.93", elapsed_s=1.0)
        store.store_chunk(s, run_id=run.id, unit_id=unit_id, chunk=[r.address for r in results], output=output)


def seed_sections(db: Database, world: h.World) -> Sections:
    """Everything the host page's new sections show, for web01 (D1), plus D2 rows that must stay hidden."""
    agent = enroll_agent(db, unit="D1", hostname="web01.d1.gov.vn", machine_id="1" * 32)
    now = utcnow()
    ingest(db, agent, [os_inventory(now - timedelta(minutes=3)), heartbeat(now - timedelta(minutes=2)),
                       facts(now - timedelta(minutes=1), permit_root="yes")])
    d1_alert = raise_alert(db, host_id=world.web01, rule_id="ssh-brute-force", group={"src_ip": HOSTILE_GROUP})
    d2_alert = raise_alert(db, host_id=world.db02, rule_id="d2-only-rule", group={"src_ip": "10.2.9.9"})
    scan(db, unit="D1", results=[
        HostResult(address=WEB01_ADDRESS, state="up", hostnames=(), os_guess="Linux 5.x", ports=(
            port(22, "ssh", "OpenSSH"), port(80, "http", HOSTILE_BANNER, http_title=HOSTILE_BANNER))),
        HostResult(address=UNMANAGED_D1, state="up", hostnames=(), os_guess=None, ports=(port(23, "telnet"),)),
    ])
    scan(db, unit="D2", results=[
        HostResult(address=UNMANAGED_D2, state="up", hostnames=(), os_guess=None, ports=(port(3389, "ms-wbt-server"),)),
        # The same private address in another unit is another machine: never shown on web01's page.
        HostResult(address=WEB01_ADDRESS, state="up", hostnames=(), os_guess=None, ports=(port(5900, "vnc"),)),
    ])
    return Sections(agent_id=agent.id, d1_alert=d1_alert, d2_alert=d2_alert)
