"""Builders for console tests: a small unit tree with users and hosts, and a browser-like login."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from agent.wire import section_hash
from collector.db import Database
from collector.events import service as events
from collector.hosts import service as hosts
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from collector.units.models import UnitCreate
from collector.users import service as users

PASSWORD = "correct horse battery staple"
XSS = "<script>alert(1)</script>"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class World:
    web01: int  # unit D1, fresh, full inventory and change events
    db02: int   # unit D2, last seen two days ago
    hostile: int  # unit D1, hostname and a package name are markup


def add_user(db: Database, name: str, role: str, unit: str | None = None) -> None:
    with db.transaction() as s:
        users.create(s, username=name, password=PASSWORD, role=role, unit_code=unit)


def inventory(packages: list[dict[str, Any]], ports: list[dict[str, Any]]) -> dict[str, tuple[str, list]]:
    sections: dict[str, list[dict[str, Any]]] = {
        "os": [{"platform": "linux", "pretty_name": "Debian GNU/Linux 12 (bookworm)", "version_id": "12",
                "kernel": "6.1.0-18-amd64", "arch": "x86_64"}],
        "hardware": [{"cpu_model": "Intel Xeon E5-2680", "cpu_cores": 4, "cpu_threads": 8,
                      "ram_bytes": 8 * 1024**3, "disks": [{"device": "/dev/sda1", "mountpoint": "/",
                                                             "fstype": "ext4", "total_bytes": 50 * 1024**3,
                                                             "used_bytes": 20 * 1024**3}]}],
        "interfaces": [{"name": "eth0", "mac": "52:54:00:12:34:56", "is_up": True, "mtu": 1500,
                        "addresses": [{"family": "ipv4", "address": "10.1.2.3", "netmask": "255.255.255.0"}]}],
        "users": [{"name": "root", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash",
                   "password_status": "set"},
                  {"name": "backdoor", "uid": 1001, "gid": 1001, "home": "/home/backdoor",
                   "shell": "/bin/sh", "password_status": "empty"}],
        "services": [{"name": "ssh.service", "enabled": "enabled", "active": "active",
                      "description": "OpenBSD Secure Shell server"}],
        "packages": packages,
        "listening_ports": ports,
    }
    return {name: (section_hash(rows), rows) for name, rows in sections.items()}


def pkg(name: str, version: str) -> dict[str, Any]:
    return {"name": name, "version": version, "arch": "amd64", "source": name, "manager": "dpkg"}


def port(number: int, process: str, address: str = "0.0.0.0") -> dict[str, Any]:
    return {"proto": "tcp", "family": "ipv4", "address": address, "port": number, "pid": 100 + number,
            "process": process}


def add_host(db: Database, *, unit: str, hostname: str, machine_id: str, last_seen: datetime,
             sections: dict[str, tuple[str, list]], at: datetime) -> int:
    """A host with an inventory; the derived change events are stored the way the pipeline stores them."""
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code=unit).id
        host = hosts.find_or_create(s, unit_id=unit_id, now=at, identity={
            "hostname": hostname, "machine_id": machine_id, "product_uuid": None, "macs": []})
        changes = hosts.update_from_inventory(s, host=host, sections=sections, at=at)
        events.add_many(s, rows=[{"unit_id": unit_id, "host_id": host.id, "type": kind, "ts": at,
                                  "received_at": at, "origin": "collector", "data": data}
                                 for kind, data in changes])
        host.agent_version = "0.1.0"
        hosts.touch(host, at=last_seen)
        s.add(host)
        return host.id


def update_inventory(db: Database, *, host_id: int, sections: dict[str, tuple[str, list]], at: datetime) -> None:
    with db.transaction() as s:
        host, _ = hosts.get(s, scope=Scope.everything(), host_id=host_id)
        changes = hosts.update_from_inventory(s, host=host, sections=sections, at=at)
        events.add_many(s, rows=[{"unit_id": host.unit_id, "host_id": host.id, "type": kind, "ts": at,
                                  "received_at": at, "origin": "collector", "data": data}
                                 for kind, data in changes])


def seed_world(db: Database) -> World:
    """Province P with departments D1 and D2; an admin and one officer per department; three hosts."""
    with db.transaction() as s:
        units.create(s, data=UnitCreate(code="P", name="Tỉnh mẫu", kind="province"))
        units.create(s, data=UnitCreate(code="D1", name="Sở Khoa học và Công nghệ", kind="department",
                                        parent_code="P"))
        units.create(s, data=UnitCreate(code="D2", name="Sở Tài chính", kind="department", parent_code="P"))
    add_user(db, "admin", "admin")
    add_user(db, "officer1", "unit_officer", "D1")
    add_user(db, "officer2", "unit_officer", "D2")
    now = utcnow()
    before = now - timedelta(days=3)
    web01 = add_host(db, unit="D1", hostname="web01.d1.gov.vn", machine_id="1" * 32, last_seen=now, at=before,
                     sections=inventory([pkg("openssl", "3.0.11")], [port(22, "sshd")]))
    # A second inventory: openssl upgraded, nginx installed, port 80 opened -> change events.
    update_inventory(db, host_id=web01, at=now - timedelta(hours=1), sections=inventory(
        [pkg("openssl", "3.0.13"), pkg("nginx", "1.22.1")], [port(22, "sshd"), port(80, "nginx")]))
    db02 = add_host(db, unit="D2", hostname="db02.d2.gov.vn", machine_id="2" * 32, at=before,
                    last_seen=now - timedelta(days=2),
                    sections=inventory([pkg("postgresql-15", "15.6")], [port(5432, "postgres", "10.2.0.5")]))
    hostile = add_host(db, unit="D1", hostname=XSS, machine_id="3" * 32, last_seen=now, at=before,
                       sections=inventory([pkg(XSS, "1.0"), pkg('"><img src=x onerror=alert(2)>', "1")],
                                          [port(8080, XSS)]))
    return World(web01=web01, db02=db02, hostile=hostile)


def csrf_token(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD, *, next_path: str = "") -> Response:
    """Log in like a browser: load the form (gets the pre-session CSRF cookie), post it back."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post("/login", follow_redirects=False, data={
        "username": username, "password": password, "csrf_token": csrf_token(form.text), "next": next_path})


def logged_in(client: TestClient, username: str) -> TestClient:
    """The client, now carrying the user's session cookie."""
    response = login(client, username)
    assert response.status_code == 303, response.text
    return client


def session_cookie_header(response: Response) -> str:
    """The Set-Cookie header that carries the console session."""
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith("khien_session=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]
