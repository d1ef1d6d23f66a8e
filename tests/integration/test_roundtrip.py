"""Agent on this host → real server → API and console: the foundation's whole path, for real."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time

import httpx
from sqlalchemy import func
from sqlmodel import select

from collector.db import Database
from collector.events.models import Event
from collector.ingest.models import IngestBatch
from tests.collector import helpers as h
from tests.integration.conftest import agent, quiet_config, spawn_agent


def enroll(server, tmp_path, unit: str = "D1"):
    db = Database(server.db_url)
    token = h.enroll_token(db, unit)
    db.dispose()
    state = tmp_path / "agent"
    proc = agent("enroll", "--server", server.url, "--token", token, state_dir=state)
    assert proc.returncode == 0, proc.stderr
    return state


def batch_totals(server) -> tuple[int, int]:
    db = Database(server.db_url)
    with db.session() as s:
        batches, items = s.exec(select(func.count(), func.coalesce(func.sum(IngestBatch.item_count), 0))).one()
    db.dispose()
    return batches, items


def ss_listening_tcp_ports() -> set[int]:
    out = subprocess.run(["ss", "-tlnH"], capture_output=True, text=True, check=True).stdout
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}


def dpkg_packages() -> set[tuple[str, str]]:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {(p, v) for s, p, v in (line.split("\t") for line in out.splitlines()) if s.startswith(("ii", "hi"))}


def login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=True, timeout=30)
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"username": "admin1", "password": h.PASSWORD, "csrf_token": csrf})
    assert resp.status_code == 200 and "khien_session" in client.cookies
    return client


def test_enroll_run_once_then_api_and_console_show_this_host(server, tmp_path):
    state = enroll(server, tmp_path)
    ports_before = ss_listening_tcp_ports()
    run = agent("run", "--once", state_dir=state)
    ports_after = ss_listening_tcp_ports()
    assert run.returncode == 0, run.stderr
    token = h.api_token(Database(server.db_url), "admin1")
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    hosts = api.get("/api/v1/hosts").json()["items"]
    assert len(hosts) == 1 and hosts[0]["unit"] == "D1" and hosts[0]["last_seen"]
    detail = api.get(f"/api/v1/hosts/{hosts[0]['id']}").json()
    assert {(p["name"], p["version"]) for p in detail["packages"]} == dpkg_packages()
    reported = {p["port"] for p in detail["listening_ports"] if p["proto"] == "tcp"}
    assert server.port in reported
    # Parallel tests open and close listeners: what ss saw throughout must be reported, and anything
    # else reported can only be a short-lived listener on an ephemeral port.
    assert (ports_before & ports_after) <= reported
    assert all(p >= 32768 for p in reported - ports_before - ports_after)
    users = {u["name"] for u in detail["users"]}
    with open("/etc/passwd") as passwd:
        assert users == {line.split(":")[0] for line in passwd if line.strip()}

    console = login(server.url)
    page = console.get(f"/hosts/{hosts[0]['id']}")
    assert page.status_code == 200 and hosts[0]["hostname"] in page.text
    assert detail["packages"][0]["name"] in page.text
    listing = console.get("/hosts")
    assert hosts[0]["hostname"] in listing.text
    status = agent("status", state_dir=state)
    assert status.returncode == 0 and "spool" in status.stdout.lower()
    db = Database(server.db_url)
    with db.session() as s:  # the default modules include patch status: stored as an event of the host
        patch = s.exec(select(Event).where(Event.type == "patch.status")).one()
    db.dispose()
    assert patch.host_id == hosts[0]["id"] and patch.data["manager"] == "apt"


def test_server_down_then_up_nothing_lost_nothing_duplicated(server, tmp_path):
    state = enroll(server, tmp_path)
    config = quiet_config(tmp_path)
    server.stop()
    for _ in range(2):
        down = agent("run", "--once", state_dir=state, config=config)
        assert down.returncode == 3, down.stderr  # data left spooled, said plainly
    assert batch_totals(server) == (0, 0)
    server.start()
    up = agent("run", "--once", state_dir=state, config=config)
    assert up.returncode == 0, up.stderr
    assert batch_totals(server)[1] == 6  # three runs × (heartbeat + inventory snapshot), each stored exactly once
    again = agent("run", "--once", state_dir=state, config=config)
    assert again.returncode == 0 and batch_totals(server)[1] == 8


def test_agent_killed_mid_send_resends_the_same_batch(server, tmp_path):
    state = enroll(server, tmp_path)
    server.proc.send_signal(signal.SIGSTOP)  # the server accepts the bytes but never answers
    try:
        proc = spawn_agent("run", "--once", state_dir=state, log=tmp_path / "agent.log",
                           config=quiet_config(tmp_path))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until a batch is assigned, i.e. the send is under way
            try:
                with sqlite3.connect(state / "spool.db") as conn:
                    if conn.execute("SELECT count(*) FROM batches").fetchone()[0]:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None
        proc.kill()
        proc.wait()
    finally:
        server.proc.send_signal(signal.SIGCONT)
    time.sleep(1)  # the stopped server now handles the request whose sender is gone
    rerun = agent("run", "--once", state_dir=state, config=quiet_config(tmp_path))
    assert rerun.returncode == 0, rerun.stderr
    # Two runs × two items in two batches: the interrupted batch was resent under its own id and
    # stored once, whether or not the stopped server had processed it before the agent died.
    assert batch_totals(server) == (2, 4)
