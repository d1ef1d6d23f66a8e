"""Proof under faults (issue 8): real ``khien server`` processes, real agents, real databases.

Every case counts end to end: what the agents generated (unique auth-log lines, numbered items)
against what the server stored, so "nothing lost, nothing duplicated" is an equality, not a hope.
Cases: the server SIGKILLed during sustained ingest; the database unreachable (a loopback TCP proxy
cut for PostgreSQL, a full disk for SQLite); the agent restarted during an outage; the spool at its
byte cap; the agent's state dir full; the agent's clock hours off.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, update
from sqlmodel import select

from agent.config import SenderSection
from agent.sender import BATCHES_PATH, Backoff, Sender, ServerUnreachable, Transport, enroll
from agent.spool import Spool
from agent.wire import Item
from collector.alerts.models import Alert
from collector.compliance.models import CheckResultRow
from collector.db import PG_CONNECT_ARGS, Database
from collector.events.models import Event
from collector.hosts.models import Host
from collector.scoring import service as scoring
from collector.scoring.activity import local_day
from collector.scoring.models import HostActivity
from rules.scoring.model import builtin_model
from tests.collector import helpers as h
from tests.conftest import free_port
from tests.integration.conftest import Server
from tests.integration.faultkit import (
    AgentProcess,
    AuthLog,
    exactly_once,
    last_heartbeat,
    quiet,
    reported_dropped,
    stored_batches,
    stored_users,
    wait_until,
)
from tests.smallfs import fill, release, tmpfs
from tests.tcpproxy import BLACKHOLE, REFUSE, TcpProxy


@pytest.fixture(autouse=True)
def _no_agent_outlives_its_test() -> Iterator[None]:
    yield
    AgentProcess.kill_leftovers()


# --- agent restarted during a collector outage --------------------------------------------------------


def test_agent_restarted_during_an_outage_delivers_its_spool_after_recovery(server, tmp_path: Path) -> None:
    log = AuthLog(tmp_path / "auth.log", "restart")
    agent = AgentProcess(tmp_path, "a", config=quiet(log.path))
    host_id = agent.enroll(server)["host_id"]
    agent.start()
    log.append(20)
    wait_until(lambda: len(stored_users(server.db_url, host_id)) == 20, timeout=60, what="the first lines")

    server.stop()
    log.append(150)
    # Spooled, and the log position saved past them: what a restart must not lose or read twice.
    wait_until(lambda: agent.spool().get("items", 0) >= 150 and agent.log_position() == log.path.stat().st_size,
               timeout=60, what="the agent to spool the lines written during the outage")
    agent.kill()  # SIGKILL: no chance to flush or close anything
    spooled = agent.spool()["items"]
    log.append(80)  # written while the agent is down: read from the saved position on restart
    agent.start()
    wait_until(lambda: agent.spool().get("items", 0) >= spooled + 80, timeout=60,
               what="the restarted agent to spool the new lines on top of the old ones")
    assert agent.alive()

    server.start()
    wait_until(lambda: len(stored_users(server.db_url, host_id)) >= len(log.users), timeout=120,
               what="everything spooled to arrive")
    time.sleep(2)  # a late duplicate would land now
    exactly_once(stored_users(server.db_url, host_id), log.users)
    agent.stop()
    assert agent.spool()["dropped"] == {} and agent.spool()["dead_letters"] == 0


# --- the spool at its byte cap ------------------------------------------------------------------------

BATCH_MAX_ITEMS = SenderSection().batch_max_items
SPOOL_CAP = 512 * 1024  # the inventory baseline (~200 KB here) fits; 1,500 auth events (~700 KB) do not


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Sorted indexes as half-open runs of consecutive numbers: [3, 4, 5, 9] -> [(3, 6), (9, 10)]."""
    runs: list[tuple[int, int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def test_spool_at_its_cap_drops_oldest_counts_it_and_the_server_hears_of_it(server, tmp_path: Path) -> None:
    log = AuthLog(tmp_path / "auth.log", "cap")
    agent = AgentProcess(tmp_path, "a", config=quiet(log.path, spool={"max_bytes": SPOOL_CAP}))
    creds = agent.enroll(server)
    agent.start()
    log.append(20)
    wait_until(lambda: len(stored_users(server.db_url, creds["host_id"])) == 20, timeout=60, what="the first lines")

    server.stop()
    during = log.append(1500)
    wait_until(lambda: agent.log_position() == log.path.stat().st_size, timeout=60, what="the agent to read the log")
    wait_until(lambda: agent.spool().get("dropped", {}).get("spool_full"), timeout=30, what="drops at the cap")
    assert agent.spool()["bytes"] <= SPOOL_CAP

    server.start()
    wait_until(lambda: agent.spool().get("items", 1) <= 1, timeout=90, what="the spool to drain")
    dropped = agent.spool()["dropped"]["spool_full"]  # final: heartbeats spooled during the outage dropped more
    # The loss reaches the server in a heartbeat sent after the recovery.
    wait_until(lambda: ((last_heartbeat(server.db_url, creds["agent_id"]) or {}).get("dropped") or {})
               .get("spool_full") == dropped, timeout=60, what="a heartbeat reporting the drops")
    assert reported_dropped(server.url) == {"spool_full": dropped}
    agent.stop()

    spool = agent.spool()
    assert spool["dropped"] == {"spool_full": dropped} and spool["dead_letters"] == 0
    # Every item the agent produced is stored once, still spooled, or counted as dropped.
    sent = sum(stored_batches(server.db_url, creds["agent_id"]).values())
    assert sent + spool["items"] + dropped == agent.emitted()
    stored = stored_users(server.db_url, creds["host_id"])
    assert max(stored.values()) == 1
    lost = [u for u in during if u not in stored]
    # Drop-oldest: the oldest items not yet in a batch go first; a batch already assigned keeps its
    # content, so its resend stays a harmless duplicate. The spool holds one pending batch at a time,
    # so the lost lines are one run, or two runs around the one batch assigned between two drops
    # (seen in CI: lines 20-342 dropped, 343-842 batched, 843 dropped by a later heartbeat).
    assert 0 < len(lost) <= dropped
    runs = _runs([during.index(u) for u in lost])
    assert len(runs) <= 2, runs
    for (_, gap_start), (gap_end, _) in itertools.pairwise(runs):
        assert gap_end - gap_start <= BATCH_MAX_ITEMS and all(u in stored for u in during[gap_start:gap_end])
    assert all(u in stored for u in during[runs[-1][1]:])  # the newest survive
    # The server turned each growth of the counter into agent.loss events: together, every drop.
    assert sum(e["dropped"] for e in _events(server.db_url, creds["host_id"], "agent.loss")) == dropped


# --- disk full in the agent's state dir ---------------------------------------------------------------


def test_full_state_disk_agent_keeps_running_reports_disk_full_and_recovers(server, tmp_path: Path) -> None:
    log = AuthLog(tmp_path / "auth.log", "full")
    with tmpfs(tmp_path / "state", size_kib=4096) as state:
        agent = AgentProcess(tmp_path, "a", config=quiet(log.path), state_dir=state)
        creds = agent.enroll(server)
        agent.start()
        log.append(20)
        wait_until(lambda: len(stored_users(server.db_url, creds["host_id"])) == 20, timeout=60,
                   what="the first lines")

        fill(state)

        def reported() -> int | None:
            log.append(100)  # keep the collectors busy until the disk refuses and a heartbeat says so
            beat = last_heartbeat(server.db_url, creds["agent_id"]) or {}
            return (beat.get("dropped") or {}).get("disk_full")

        lost = wait_until(reported, timeout=120, every=2, what="a heartbeat reporting disk_full drops")
        assert agent.alive()
        assert reported_dropped(server.url).get("disk_full", 0) >= lost

        release(state)
        after = log.append(50)
        wait_until(lambda: all(u in stored_users(server.db_url, creds["host_id"]) for u in after), timeout=90,
                   what="lines written after the space came back")
        assert agent.alive()
        agent.stop()
        spool = agent.spool()
        # The counts the agent kept in memory while the disk was full are in its spool file now.
        total = spool["dropped"]["disk_full"]
        assert set(spool["dropped"]) == {"disk_full"} and total >= lost
        stored = stored_users(server.db_url, creds["host_id"])
        assert max(stored.values()) == 1 and set(stored) <= set(log.users)
        assert len(log.users) - len(stored) <= total  # every line missing is among the counted drops


# --- the server SIGKILLed during sustained ingest -----------------------------------------------------


class RecordingTransport(Transport):
    """The agent's own transport, noting every batch the server answered and how."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout_s=15)
        self.answers: list[tuple[str, int, int, bool]] = []  # (batch id, items, status, duplicate)
        self.unreachable = 0

    def request(self, method, path, *, body=None, headers=None):
        try:
            response = super().request(method, path, body=body, headers=headers)
        except ServerUnreachable:
            self.unreachable += 1
            raise
        if path == BATCHES_PATH:
            batch = json.loads(gzip.decompress(body))
            self.answers.append((batch["batch_id"], len(batch["items"]), response.status,
                                 bool(response.json().get("duplicate"))))
        return response


class LoadSender(threading.Thread):
    """``agent.sender`` driven from a test thread: ~100 numbered items a second, sent as they come."""

    def __init__(self, server, tmp_path: Path, name: str, unit: str) -> None:
        super().__init__(name=name, daemon=True)
        self.generated = 0
        self.finished = threading.Event()
        db = Database(server.db_url)
        token = h.enroll_token(db, unit)
        db.dispose()
        self.transport = RecordingTransport(server.url)
        self.credentials = enroll(self.transport, token=token, agent_version="test", platform="linux",
                                  identity={"hostname": name, "machine_id": uuid.uuid4().hex, "macs": []})
        self.spool = Spool(tmp_path / f"{name}.db")
        self.sender = Sender(self.spool, self.transport, self.credentials, batch_max_items=200,
                             backoff=Backoff(0.2, 1.0))

    def run(self) -> None:
        while not self.finished.is_set():
            self.spool.put_many(Item("agent.error", {"collector": self.name, "error": "load", "count": n})
                                for n in range(self.generated, self.generated + 10))
            self.generated += 10
            self.sender.drain()
            time.sleep(0.1)

    def stored_counts(self, db_url: str) -> Counter[int]:
        db = Database(db_url)
        with db.session() as s:
            rows = s.exec(select(Event.data).where(Event.host_id == self.credentials.host_id,
                                                   Event.type == "agent.error")).all()
        db.dispose()
        return Counter(d["count"] for d in rows if d["collector"] == self.name)


def test_server_sigkilled_during_sustained_ingest_loses_and_duplicates_nothing(server, tmp_path: Path) -> None:
    logs = [AuthLog(tmp_path / f"auth-{n}.log", f"kill{n}") for n in range(2)]
    agents = [AgentProcess(tmp_path, f"agent{n}", config=quiet(log.path)) for n, log in enumerate(logs)]
    creds = [a.enroll(server, unit) for a, unit in zip(agents, ("D1", "D2"), strict=True)]
    senders = [LoadSender(server, tmp_path, f"load{n}", unit) for n, unit in enumerate(("D1", "D2"))]
    for process in agents:
        process.start()
    for sender in senders:
        sender.start()
    writing = threading.Event()
    writing.set()

    def write_logs() -> None:  # ~40 lines/s per agent, all along
        while writing.is_set():
            for log in logs:
                log.append(8)
            time.sleep(0.2)

    writer = threading.Thread(target=write_logs, daemon=True)
    writer.start()
    try:
        time.sleep(6)
        server.proc.kill()  # SIGKILL mid-ingest: in-flight requests and transactions die with it
        server.proc.wait()
        time.sleep(4)
        server.start()  # the same database, the same port
        time.sleep(6)
    finally:
        writing.clear()
        writer.join()
        for sender in senders:
            sender.finished.set()
            sender.join(timeout=60)

    for sender in senders:  # what the threads still hold goes out now, from here
        wait_until(lambda: sender.sender.drain().ok, timeout=120, every=1, what=f"{sender.name}'s spool")  # noqa: B023
    for process, log, cred in zip(agents, logs, creds, strict=True):
        wait_until(lambda: len(stored_users(server.db_url, cred["host_id"])) >= len(log.users), timeout=120,  # noqa: B023
                   what=f"{process.name}'s lines")
    time.sleep(2)  # anything resent late would land now
    for process in agents:
        process.stop()

    for process, log, cred in zip(agents, logs, creds, strict=True):
        exactly_once(stored_users(server.db_url, cred["host_id"]), log.users)
        spool = process.spool()
        assert spool["dropped"] == {} and spool["dead_letters"] == 0
        assert sum(stored_batches(server.db_url, cred["agent_id"]).values()) + spool["items"] == process.emitted()
    for sender in senders:
        assert sender.transport.unreachable > 0  # the outage was felt
        assert sender.stored_counts(server.db_url) == Counter(range(sender.generated))  # each item once
        stored = stored_batches(server.db_url, sender.credentials.agent_id)
        acked = {bid: n for bid, n, status, _dup in sender.transport.answers if status == 202}
        assert acked == stored  # every acknowledged batch stored, with all its items, and nothing else
        assert sender.spool.stats()["items"] == 0 and sender.spool.stats()["dropped"] == {}
        sender.spool.close()
        print(f"{sender.name}: {sender.generated} items in {len(stored)} batches; "
              f"{sum(dup for *_, dup in sender.transport.answers)} answered as duplicates, "
              f"{sender.transport.unreachable} sends failed during the outage")
    print("agents:", ", ".join(f"{len(log.users)} lines" for log in logs))


# --- the database unreachable for a while -------------------------------------------------------------


@dataclass
class Outage:
    """How the server's database is taken away and given back, per backend."""

    url: str  # what the server is given
    phases: list[tuple[str, Callable[[], None]]]  # (name, how to cut) in order, each held PHASE_S
    restore: Callable[[], None]


PHASE_S = 8


@pytest.fixture
def outage(db_url: str, tmp_path: Path) -> Iterator[Outage]:
    if db_url.startswith("postgresql"):
        # The server reaches PostgreSQL only through a proxy the test can cut: first refusing
        # connections (a stopped database host), then accepting and never answering (a hung one).
        url = make_url(db_url)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
        yield Outage(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                     [("refused", lambda: proxy.cut(REFUSE)), ("blackholed", lambda: proxy.cut(BLACKHOLE))],
                     proxy.restore)
        proxy.stop()
        return
    # SQLite: the database file's filesystem fills up (a server's disk full): every write fails.
    source = Path(db_url.split("///", 1)[1])
    with tmpfs(tmp_path / "dbfs", size_kib=64 * 1024) as dbfs:
        shutil.copy(source, dbfs / "khien.db")
        path = dbfs / "khien.db"

        def fill_disk() -> None:
            with sqlite3.connect(path) as conn:  # empty the WAL: the next write needs new space
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            fill(dbfs)

        yield Outage(f"sqlite:///{path}", [("disk full", fill_disk), ("still full", lambda: None)],
                     lambda: release(dbfs))


def start_server(db_url: str, tmp_path: Path) -> Server:
    db = Database(db_url)
    h.seed_units(db)
    db.dispose()
    env = os.environ | {"KHIEN_AGENT_HEARTBEAT_S": "10"}
    srv = Server(url="", db_url=db_url, data_dir=tmp_path / "server", port=free_port(), env=env,
                 log=tmp_path / "server.log")
    srv.url = f"http://127.0.0.1:{srv.port}"
    srv.start()
    return srv


def probe(server: Server, credential: str, n: int) -> tuple[int, float, str | None]:
    """POST a one-item batch as the agent; (status, seconds, Retry-After)."""
    body = h.gz(h.batch([{"type": "agent.error", "ts": h.now_iso(),
                          "data": {"collector": "probe", "error": "probe", "count": n}}]))
    started = time.monotonic()
    response = httpx.post(f"{server.url}/api/v1/agent/batches", content=body, timeout=60,
                          headers={"Authorization": f"Bearer {credential}", "Content-Encoding": "gzip",
                                   "Content-Type": "application/json"})
    return response.status_code, time.monotonic() - started, response.headers.get("Retry-After")


def test_database_unreachable_server_answers_503_fast_and_everything_arrives_once(outage, tmp_path: Path) -> None:
    server = start_server(outage.url, tmp_path)
    try:
        log = AuthLog(tmp_path / "auth.log", "dbdown")
        agent = AgentProcess(tmp_path, "a", config=quiet(log.path))
        creds = agent.enroll(server)
        credential = f"{creds['agent_id']}.{creds['secret']}"
        agent.start()
        log.append(20)
        wait_until(lambda: len(stored_users(outage.url, creds["host_id"])) == 20, timeout=60, what="the first lines")
        assert probe(server, credential, 0)[0] == 202

        answers: dict[str, list[tuple[int, float, str | None]]] = {}
        for name, cut in outage.phases:
            cut()
            deadline = time.monotonic() + PHASE_S
            while time.monotonic() < deadline:
                log.append(10)
                answers.setdefault(name, []).append(probe(server, credential, len(log.users)))
                time.sleep(0.5)
        spooled = agent.spool()["items"]
        outage.restore()

        for name, seen in answers.items():
            print(f"{name}: {len(seen)} probes, statuses {sorted({s for s, _, _ in seen})}, "
                  f"slowest {max(t for _, t, _ in seen):.2f} s")
            assert {status for status, _, _ in seen} == {503}, name
            assert all(retry is not None for _, _, retry in seen), name
            # Bounded by the connect timeout, never by the client's patience (without one: for ever).
            assert max(t for _, t, _ in seen) < PG_CONNECT_ARGS["connect_timeout"] + 3, name
        assert spooled >= 10  # the agent kept what it could not deliver
        assert "HTTP 503" in (agent.status().get("last_error") or "")

        wait_until(lambda: httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200, timeout=60,
                   what="the server to see its database again")
        wait_until(lambda: len(stored_users(outage.url, creds["host_id"])) >= len(log.users), timeout=120,
                   what="the lines written during the outage")
        time.sleep(2)
        exactly_once(stored_users(outage.url, creds["host_id"]), log.users)
        assert agent.alive() and server.proc.poll() is None
        agent.stop()
        assert agent.spool()["dropped"] == {}
        assert probe(server, credential, 10**6)[0] == 202
        # Probes answered 503 stored nothing: only the two accepted ones are there.
        probes = [d for d in _events(outage.url, creds["host_id"], "agent.error") if d["collector"] == "probe"]
        assert sorted(d["count"] for d in probes) == [0, 10**6]
    finally:
        server.stop()


def _events(db_url: str, host_id: int, type_: str) -> list[dict]:
    db = Database(db_url)
    with db.session() as s:
        rows = s.exec(select(Event.data).where(Event.host_id == host_id, Event.type == type_)).all()
    db.dispose()
    return list(rows)


# --- the agent's clock hours off -----------------------------------------------------------------------

SKEW = {"+26h": timedelta(hours=26), "-26h": timedelta(hours=-26)}  # over a day: the local date always differs
CLOSE = timedelta(minutes=10)  # test duration plus margin


def skewed_agent(tmp_path: Path, offset: str, web_root: Path, *, facts: bool = True) -> AgentProcess:
    web_root.mkdir(exist_ok=True)
    return AgentProcess(tmp_path, "skewed", clock_offset=offset, config=quiet(
        facts={"enabled": facts},
        fim={"enabled": True, "paths": [str(web_root)], "web_roots": [str(web_root)], "interval_s": 1.0}))


def _host_rows(db_url: str, model, host_id: int) -> list:
    db = Database(db_url)
    with db.session() as s:
        rows = s.exec(select(model).where(model.host_id == host_id)).all()
    db.dispose()
    return list(rows)


@pytest.mark.parametrize("offset", list(SKEW))
def test_clock_skew_events_keep_both_times_and_scoring_uses_the_servers(server, tmp_path: Path, offset: str) -> None:
    web_root = tmp_path / "www"
    agent = skewed_agent(tmp_path, offset, web_root)
    creds = agent.enroll(server)
    host_id = creds["host_id"]
    agent.start()
    wait_until(lambda: _events(server.db_url, host_id, "facts.snapshot"), timeout=120, what="a facts snapshot")

    def defaced() -> list:
        (web_root / f"shell{time.monotonic_ns()}.php").write_text("<?php system($_GET['c']); ?>")
        return [a for a in _host_rows(server.db_url, Alert, host_id) if a.rule_id == "file_lnx_web_root_change"]

    alert = wait_until(defaced, timeout=120, every=3, what="a defacement alert")[0]
    agent.stop()
    now, skew = datetime.now(UTC), SKEW[offset]

    # Events keep the agent's time (ts) and the server's (received_at).
    events = [e for e in _host_rows(server.db_url, Event, host_id) if e.origin == "agent"]
    assert {"facts.snapshot", "file.change"} <= {e.type for e in events}
    for event in events:
        assert abs(event.ts - (now + skew)) < CLOSE, (event.type, event.ts)
        assert abs(event.received_at - now) < CLOSE, (event.type, event.received_at)
    assert abs(alert.first_seen - (now + skew)) < CLOSE and abs(alert.created_at - now) < CLOSE

    # The host reported on the server's day(s), never on the day its own clock shows.
    days = {a.day for a in _host_rows(server.db_url, HostActivity, host_id)}
    assert days == {local_day(e.received_at) for e in events}
    assert local_day(now + skew) not in days

    db = Database(server.db_url)
    with db.transaction() as s:  # exposed to the internet, so A7 weighs the defacement
        s.exec(update(Host).where(Host.id == host_id).values(internet_facing=True))
    with db.session() as s:
        unit_id = s.get(Host, host_id).unit_id
        measures = scoring.compute(s, day=local_day(now), unit_ids=frozenset({unit_id}))[unit_id].measures
    db.dispose()
    model = builtin_model()
    a1 = {p[0]: p for p in measures["A1"].parts}[f"host:{host_id}"]
    assert a1[2] == 1.0, a1  # monitored today: it reported today, by the server's clock
    a7 = {p[0]: p for p in measures["A7"].parts}[f"host:{host_id}"]
    # The defacement counts in the month the server saw it, wherever the host's clock put it.
    assert a7[3]["penalty"] >= model.indicators["A7"].params["defacement"], a7


def test_clock_skew_check_results_are_dated_by_receipt(server, tmp_path: Path) -> None:
    agent = skewed_agent(tmp_path, "+26h", tmp_path / "www")
    creds = agent.enroll(server)
    run = subprocess.run(agent.command("run", "--once"), capture_output=True, text=True, timeout=300, env=agent.env)
    assert run.returncode == 0, run.stderr
    received = max(e.received_at for e in _host_rows(server.db_url, Event, creds["host_id"]))
    results = _host_rows(server.db_url, CheckResultRow, creds["host_id"])
    assert results
    # An agent a day ahead must not make its results count only from tomorrow: valid_from is never
    # later than when the server learned them. (A clock behind is kept: a snapshot spooled during an
    # outage and sent late legitimately carries an earlier time.)
    assert all(abs(r.valid_from - received) < CLOSE for r in results)
