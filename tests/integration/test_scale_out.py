"""Two real ``khien server`` processes on one database, as behind nginx: one leader, no double work.

PostgreSQL is the scale-out backend (one database cloned from the migrated template per test); the
file-lock standby is also run on SQLite. Counting is end to end, in the database.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, text
from sqlmodel import select

from collector.access import Actor
from collector.alerts.models import Alert
from collector.audit import service as audit
from collector.audit.models import AuditEntry
from collector.db import Database, head_revision
from collector.errors import RateLimited
from collector.events.models import Event
from collector.ingest.models import IngestBatch
from collector.scope import Scope
from collector.scoring.models import ScoreSnapshot, ScoreValue
from collector.users.throttle import AuditLogThrottle
from tests.collector import helpers as h
from tests.collector.test_leader import postgresql_database, require_postgresql
from tests.conftest import free_port, new_pg_database
from tests.integration.conftest import Server

BRUTE = "ssh_lnx_brute_force"  # 8 failures from one source within 120 s (rules/data/detections)
FAILOVER_BOUND_S = 15.0  # KHIEN_LEADER_RETRY_S below (0.5 s) plus starting detection, with room for a loaded CI machine
ENV = {"KHIEN_LEADER_RETRY_S": "0.5", "KHIEN_LEADER_CHECK_S": "0.5", "KHIEN_AGENT_RATE_PER_S": "1000",
       "KHIEN_AGENT_RATE_BURST": "1000", "KHIEN_INSECURE_COOKIES": "1", "KHIEN_AGENT_HEARTBEAT_S": "10"}


# --- a cluster of two servers -------------------------------------------------------------------------

class Cluster:
    def __init__(self, db_url: str, tmp_path: Path, env: dict[str, str]) -> None:
        self.db_url = db_url
        env = {k: v for k, v in os.environ.items() if not k.startswith("KHIEN_")} | ENV | env
        # One data dir for both, as a systemd template on one machine would share /var/lib/khien.
        self.servers = [Server(url=f"http://127.0.0.1:{port}", db_url=db_url, data_dir=tmp_path / "data", port=port,
                               env=env, log=tmp_path / f"server-{i}.log")
                        for i, port in enumerate((free_port(), free_port()))]

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def role(self, server: Server) -> str:
        return httpx.get(f"{server.url}/healthz", timeout=5).json()["role"]

    def leader(self) -> Server:
        [leader] = [s for s in self.servers if s.proc.poll() is None and self.role(s) == "leader"]
        return leader

    def logs(self) -> str:
        return "\n".join(s.log.read_text()[-3000:] for s in self.servers)


@pytest.fixture
def pg_url(tmp_path, request) -> str:
    url = postgresql_database(tmp_path, request)
    db = Database(url)
    h.seed_units(db)
    h.add_user(db, "admin1", "admin")
    db.dispose()
    return url


@pytest.fixture
def cluster_env() -> dict[str, str]:
    return {}


@pytest.fixture
def cluster(pg_url, tmp_path, cluster_env) -> Iterator[Cluster]:
    pair = Cluster(pg_url, tmp_path, cluster_env)
    pair.start()
    yield pair
    pair.stop()


def metric(server: Server, line_start: str) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(condition: Callable[[], bool], timeout: float, what: str, cluster: Cluster | None = None) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not within {timeout} s\n" + (cluster.logs() if cluster else ""))
        time.sleep(0.1)
    return time.monotonic() - started


# --- agents and batches ---------------------------------------------------------------------------------

def enroll(server: Server, db_url: str, n: int) -> list[dict[str, str]]:
    """``n`` agents (hosts) enrolled in D1; their credential headers."""
    db = Database(db_url)
    token = h.enroll_token(db, max_uses=n)
    db.dispose()
    headers = []
    for i in range(n):
        identity = h.identity(machine_id=uuid.uuid4().hex, hostname=f"host{i}", macs=[f"52:54:00:00:10:{i:02x}"])
        body = httpx.post(f"{server.url}/api/v1/agent/enroll", json={"token": token, **identity}, timeout=30)
        assert body.status_code == 201, body.text
        creds = body.json()
        headers.append({"Authorization": f"Bearer {creds['agent_id']}.{creds['secret']}", "Content-Encoding": "gzip",
                        "Content-Type": "application/json"})
    return headers


def post(server: Server, headers: dict[str, str], batch: dict) -> dict:
    response = httpx.post(f"{server.url}/api/v1/agent/batches", content=h.gz(batch), headers=headers, timeout=60)
    assert response.status_code == 202, response.text
    return response.json()


def burst(ip: str, start: datetime) -> list[dict]:
    """Eight SSH password failures from ``ip`` within 40 s: one brute-force alert."""
    return [{"type": "auth.failure", "ts": (start + timedelta(seconds=5 * i)).isoformat(),
             "data": {"action": "failed_password", "outcome": "failure", "user": "root", "source_ip": ip,
                      "process": "sshd", "pid": 4000 + i}} for i in range(8)]


def send_bursts(servers: list[Server], headers: dict[str, str], ips: list[str]) -> None:
    """Each burst split in two batches, sent through the servers in turn, all at once; a batch whose server
    died is sent again, under the same id, to a live one (as an agent's retry through nginx would)."""
    start = datetime.now(UTC)
    batches: list[tuple[int, dict]] = []
    for n, ip in enumerate(ips):
        events = burst(ip, start)
        batches += [(2 * n, h.batch(events[:4])), (2 * n + 1, h.batch(events[4:]))]

    def send(i: int, batch: dict) -> None:
        for attempt in range(len(servers) * 2):
            server = servers[(i + attempt) % len(servers)]
            try:
                post(server, headers, batch)
                return
            except httpx.HTTPError:
                continue
        raise AssertionError(f"batch {batch['batch_id']} not stored through any server")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: send(*pair), batches))


def brute_force_alerts(db_url: str) -> list[tuple[str, int, int]]:
    """(source ip, detections folded in, events) of every brute-force alert."""
    db = Database(db_url)
    with db.session() as s:
        rows = s.exec(select(Alert.group, Alert.count, Alert.event_count).where(Alert.rule_id == BRUTE)).all()
    db.dispose()
    return sorted((group["source_ip"], count, events) for group, count, events in rows)


# --- the tests -----------------------------------------------------------------------------------------

def test_one_leader_alerts_once_through_both_and_a_killed_leader_is_replaced(cluster):
    a, b = cluster.servers
    assert sorted([cluster.role(a), cluster.role(b)]) == ["leader", "standby"]
    leader = cluster.leader()
    standby = b if leader is a else a
    assert (metric(leader, "khien_leader"), metric(standby, "khien_leader")) == (1.0, 0.0)
    [headers] = enroll(standby, cluster.db_url, 1)

    first = [f"203.0.113.{i}" for i in range(1, 11)]
    send_bursts(cluster.servers, headers, first)  # halves through each process
    wait_for(lambda: len(brute_force_alerts(cluster.db_url)) == 10, 60, "the first alerts", cluster)

    # Stored through the standby, then the leader dies: most of these are not yet evaluated.
    second = [f"198.51.100.{i}" for i in range(1, 11)]
    send_bursts([standby], headers, second)
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(timeout=10)
    wait_for(lambda: cluster.role(standby) == "leader", FAILOVER_BOUND_S, "failover", cluster)
    assert metric(standby, "khien_leader") == 1.0 and metric(standby, "khien_leader_elections") == 1.0

    third = [f"192.0.2.{i}" for i in range(1, 11)]
    send_bursts([standby], headers, third)
    wait_for(lambda: len(brute_force_alerts(cluster.db_url)) == 30, 60, "all alerts", cluster)
    time.sleep(2)  # two more detection polls: any duplicate would show up now
    alerts = brute_force_alerts(cluster.db_url)
    # One alert per source, from one detection over exactly its 8 events: nothing twice, nothing missed.
    assert alerts == sorted((ip, 1, 8) for ip in first + second + third), alerts

    leader.start()  # the old leader comes back: it stands by
    assert cluster.role(leader) == "standby" and cluster.role(standby) == "leader"


@pytest.mark.parametrize("cluster_env", [{"KHIEN_SCORE_EVERY_S": "1"}])
def test_a_job_ticking_every_second_runs_once_per_tick_across_processes_and_failover(cluster):
    db = Database(cluster.db_url)
    engine = create_engine(cluster.db_url, isolation_level="AUTOCOMMIT", pool_size=1)

    def runs() -> int:
        """store_day replaces the day's rows: each run takes 33 new ids (3 units x 11 indicators)."""
        with engine.connect() as conn:
            last = conn.execute(text("SELECT last_value FROM score_values_id_seq")).scalar()
        with db.session() as s:
            rows = s.exec(select(func.count()).select_from(ScoreValue)).one()
        return last // rows if rows else 0

    try:
        wait_for(lambda: runs() >= 1, 30, "a first run", cluster)
        since, first = time.monotonic(), runs()
        wait_for(lambda: runs() >= first + 3, 30, "three more runs", cluster)
        leader = cluster.leader()
        leader.proc.send_signal(signal.SIGKILL)  # mid-tick, quite possibly
        leader.proc.wait(timeout=10)
        survivor = next(s for s in cluster.servers if s is not leader)
        wait_for(lambda: cluster.role(survivor) == "leader", FAILOVER_BOUND_S, "failover", cluster)
        before = runs()
        wait_for(lambda: runs() >= before + 3, 30, "runs after the failover", cluster)
        made, elapsed = runs() - first, time.monotonic() - since
        # At most one run per second, whoever led; two schedulers would have made about twice as many.
        assert 6 <= made <= elapsed + 1, (made, elapsed)
        assert metric(survivor, 'khien_job_runs{job="daily-scores",outcome="ran"}') >= 3
        with db.session() as s:
            periods = s.exec(select(ScoreSnapshot.period)).all()
        assert len(periods) == 33 and len(set(periods)) == 1  # the month frozen once, by whichever led first
    finally:
        engine.dispose()
        db.dispose()


def test_the_same_batches_posted_to_both_processes_at_once_are_stored_once(cluster):
    a, b = cluster.servers
    agents = enroll(a, cluster.db_url, 4)
    batches = [(headers, h.batch([{"type": "agent.error", "ts": h.now_iso(),
                                   "data": {"collector": "fim", "error": f"test {n}.{k}", "count": 1}}
                                  for k in range(5)]))
               for n in range(60) for headers in agents]
    answers: dict[str, list[dict]] = {batch["batch_id"]: [] for _, batch in batches}
    lock = threading.Lock()

    def both(pair: tuple[dict, dict]) -> None:
        headers, batch = pair
        gate = threading.Barrier(2)

        def one(server: Server) -> None:
            gate.wait(timeout=30)  # the two copies leave together
            answer = post(server, headers, batch)
            with lock:
                answers[batch["batch_id"]].append(answer)

        threads = [threading.Thread(target=one, args=(s,)) for s in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(both, batches))
    assert all(len(got) == 2 for got in answers.values())
    # Each batch: one process stored it, the other answered "duplicate" — and both said 202.
    assert all(sorted(a["duplicate"] for a in got) == [False, True] for got in answers.values()), answers
    assert all(next(a for a in got if not a["duplicate"])["accepted"] == 5 for got in answers.values())
    db = Database(cluster.db_url)
    with db.session() as s:
        stored, items = s.exec(select(func.count(), func.sum(IngestBatch.item_count))).one()
        events = s.exec(select(func.count()).select_from(Event).where(Event.type == "agent.error")).one()
    db.dispose()
    assert (stored, items, events) == (240, 1200, 1200)
    duplicates = sum(metric(s, "khien_ingest_duplicate_batches_total") for s in (a, b))
    assert duplicates == 240


@pytest.mark.parametrize("cluster_env", [{"KHIEN_TRUSTED_PROXIES": "127.0.0.1"}])
def test_failed_logins_count_across_processes_per_forwarded_address(cluster):
    a, b = cluster.servers

    def login(server: Server, username: str, password: str, client_ip: str) -> httpx.Response:
        with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": client_ip}, timeout=30) as client:
            form = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})

    attacker = "203.0.113.77"
    for i in range(20):  # ten through each process, each a different account: no account lockout involved
        assert login((a, b)[i % 2], f"guess{i:02d}", "not the password", attacker).status_code == 401
    for server in (a, b):
        refused = login(server, "admin1", h.PASSWORD, attacker)  # even the right password must wait
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 15 * 60
    # The proxy's own address is not what counts: another person behind it logs in.
    assert login(b, "admin1", h.PASSWORD, "198.51.100.20").status_code in (200, 303)
    db = Database(cluster.db_url)
    with db.session() as s:
        sources = set(s.exec(select(AuditEntry.source_ip).where(AuditEntry.action == "login_failed")).all())
    db.dispose()
    assert sources == {attacker}


def test_the_login_throttle_is_one_count_for_every_process(db):
    """Two throttles on two connections stand for two processes: failures audited through either count."""
    other = Database(db.url)
    throttles = [AuditLogThrottle(db=db, max_failures=3, window_s=60), AuditLogThrottle(db=other, max_failures=3,
                                                                                        window_s=60)]
    actor = Actor(username="guess", role="", scope=Scope.units(frozenset()), source_ip="10.0.0.1", via="console")
    now = datetime.now(UTC)
    try:
        with db.transaction() as s:
            audit.log(s, actor=actor, action="login", target_type="users")  # a success never counts
            for _ in range(2):
                audit.log(s, actor=actor, action="login_failed", target_type="users")
        for throttle in throttles:
            throttle.check("10.0.0.1")
        with other.transaction() as s:
            audit.log(s, actor=actor, action="login_locked", target_type="users")
        for throttle in throttles:
            with pytest.raises(RateLimited) as refused:
                throttle.check("10.0.0.1")
            assert 55 <= refused.value.retry_after <= 60
            throttle.check("10.0.0.2")  # another address is unaffected
            throttle.check(None)
        later = AuditLogThrottle(db=db, max_failures=3, window_s=60, clock=lambda: now + timedelta(seconds=61))
        later.check("10.0.0.1")  # the failures aged out of the window
    finally:
        other.dispose()


def test_a_second_server_on_the_same_database_stands_by_and_takes_over(db_url, tmp_path):
    db = Database(db_url)
    h.seed_units(db)
    db.dispose()
    pair = Cluster(db_url, tmp_path, {})
    try:
        pair.start()
        first, second = pair.servers
        assert (pair.role(first), pair.role(second)) == ("leader", "standby")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        wait_for(lambda: pair.role(second) == "leader", FAILOVER_BOUND_S, "failover", pair)
        if db_url.startswith("sqlite"):
            lock_file = Path(db_url.split("///", 1)[1] + ".leader.lock")
            assert lock_file.read_text().strip() == str(second.proc.pid)
    finally:
        pair.stop()


def test_servers_started_together_on_a_new_database_migrate_it_once(tmp_path, request):
    require_postgresql()
    url = new_pg_database(request)  # empty: no template, no schema
    pair = Cluster(url, tmp_path, {})
    try:
        threads = [threading.Thread(target=s.start) for s in pair.servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        assert all(s.proc.poll() is None for s in pair.servers), pair.logs()
        assert sorted(pair.role(s) for s in pair.servers) == ["leader", "standby"]
        engine = create_engine(pair.db_url, pool_size=1)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        engine.dispose()
    finally:
        pair.stop()
