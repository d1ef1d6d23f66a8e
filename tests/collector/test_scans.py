"""Network compliance scans through the collector: ranges and refusals, real nmap on loopback only,
results stored with history, findings (risky service, unmanaged host, open-but-not-listening),
reconciliation with the agent's inventory, closing on rescan, interruption, nmap missing, the scheduler."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from collector.errors import InvalidInput
from collector.findings.models import Finding
from collector.scans import runner, store
from collector.scans import service as scans
from collector.scans.models import ScanAsset, ScanHost, ScanPolicy, ScanPort, ScanRun
from collector.scheduler import Jobs
from tests import scanhelpers
from tests.collector import helpers as h

# Database ports (exposed, a critical misconfiguration): the first one free on this machine is used,
# since CI machines may run some of these servers on loopback themselves.
DATABASE_PORTS = {27017: "mongodb", 9200: "elasticsearch", 11211: "memcached", 1433: "mssql", 1521: "oracle",
                  6379: "exposed_db", 3306: "mysql"}


def free_database_port() -> tuple[int, str]:
    for port, service in DATABASE_PORTS.items():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port, service
    raise AssertionError("every database port is taken on 127.0.0.1")


def unit_with_loopback(db) -> None:
    h.seed_units(db)
    with db.transaction() as s:
        scans.set_ranges(s, code="D1", add=["127.0.0.1", "::1"])


def findings_of(db, kind: str | None = None) -> list[Finding]:
    with db.session() as s:
        q = select(Finding).order_by(Finding.id)
        if kind:
            q = q.where(Finding.kind == kind)
        return list(s.exec(q).all())


def runs(db) -> list[ScanRun]:
    with db.session() as s:
        return list(s.exec(select(ScanRun).order_by(ScanRun.id)).all())


def test_targets_are_refused_outside_the_unit_ranges_and_nothing_is_stored(db):
    unit_with_loopback(db)
    cases = [(["10.0.0.0/33"], "not an IP address or CIDR"), (["127.0.0.2"], "outside unit D1's declared ranges"),
             (["scanme.example.org"], "addresses or CIDR"), (["127.0.0.0/8"], "outside")]
    for targets, message in cases:
        with pytest.raises(InvalidInput, match=message):
            runner.run(db, unit_code="D1", targets=targets)
    with pytest.raises(InvalidInput, match="no declared ranges"):
        runner.run(db, unit_code="D2", targets=["127.0.0.1"])
    with db.transaction() as s:
        scans.set_ranges(s, code="D2", add=["127.0.0.0/16"])
    with pytest.raises(InvalidInput, match="65536"):
        runner.run(db, unit_code="D2", max_addresses=1024)
    with db.transaction() as s, pytest.raises(InvalidInput, match="not a range of unit D1"):
        scans.set_ranges(s, code="D1", remove=["10.9.0.0/24"])
    assert runs(db) == []


def test_scan_finds_risky_service_unmanaged_host_and_closes_when_fixed(db):
    unit_with_loopback(db)
    db_port, db_service = free_database_port()
    with scanhelpers.http_server() as http, scanhelpers.closing_listener(port=db_port):
        ports = f"{http.port},{db_port}"
        progress: list[float] = []
        run = runner.run(db, unit_code="D1", targets=["127.0.0.1"], ports=ports,
                         on_progress=lambda p: progress.append(p.percent))
    assert run.status == "completed" and run.hosts_up == 1, run.error
    assert progress[0] == 0.0 and progress[-1] == 100.0
    with db.session() as s:
        [host] = s.exec(select(ScanHost).where(ScanHost.run_id == run.id)).all()
        open_ports = {(p.port, p.service) for p in s.exec(select(ScanPort).where(ScanPort.run_id == run.id)).all()
                      if p.state == "open"}
    assert host.address == "127.0.0.1" and host.host_id is None
    assert http.port in {p for p, _ in open_ports} and db_port in {p for p, _ in open_ports}
    found = {(f.kind, f.rule, f.location): f for f in findings_of(db)}
    exposed_db = found[("exposure", f"exposed-service:{db_service}", f"tcp/{db_port}@127.0.0.1")]
    assert exposed_db.finding_class == "critical_misconfig" and exposed_db.sources == "scan"
    unmanaged = found[("unmanaged", "unmanaged-host", "")]
    assert unmanaged.address == "127.0.0.1" and unmanaged.identity.startswith("addr:")

    # The database is firewalled off: the next scan proves it, the finding closes with that proof.
    with scanhelpers.http_server() as http2:
        again = runner.run(db, unit_code="D1", targets=["127.0.0.1"], ports=f"{http2.port},{db_port}")
    assert again.status == "completed"
    by_id = {f.id: f for f in findings_of(db)}
    assert by_id[exposed_db.id].status == "fixed"
    assert by_id[exposed_db.id].fixed_proof["proof"] == "not seen by the network scan"
    assert by_id[unmanaged.id].status == "open"  # still no agent there
    with db.session() as s:
        asset = s.exec(select(ScanAsset).where(ScanAsset.address == "127.0.0.1")).one()
    assert asset.state == "up" and asset.next_scan_at > asset.last_scanned  # rescan interval set


def test_scan_reconciled_with_the_agent(client, db, enrolled):
    """A managed host: findings attach to it; open-but-not-listening is reported; enrolling closes 'unmanaged'."""
    with db.transaction() as s:
        scans.set_ranges(s, code="D1", add=["127.0.0.1", "::1"])
    with scanhelpers.http_server("::1") as http6:
        run = runner.run(db, unit_code="D1", targets=["::1"], ports=str(http6.port))
        assert run.status == "completed", run.error
        [unmanaged] = findings_of(db, "unmanaged")
        assert unmanaged.status == "open" and unmanaged.address == "::1"
        # The agent now reports ::1 on its loopback interface, and listens on nothing there.
        inventory = h.inventory({"interfaces": [{"name": "lo", "addresses": [
            {"family": "ipv6", "address": "::1", "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}]}],
            "listening_ports": [h.PORT]})
        resp = client.post("/api/v1/agent/batches", content=h.gz(h.batch([inventory])), headers=enrolled["headers"])
        assert resp.status_code == 202, resp.text
        run = runner.run(db, unit_code="D1", targets=["::1"], ports=str(http6.port))
    assert run.status == "completed"
    by_kind = {(f.kind, f.rule): f for f in findings_of(db)}
    assert by_kind[("unmanaged", "unmanaged-host")].status == "fixed"
    assert by_kind[("unmanaged", "unmanaged-host")].fixed_proof["host_id"] == enrolled["host_id"]
    gap = by_kind[("exposure", "port-open-not-listening")]
    assert gap.host_id == enrolled["host_id"] and gap.location == f"tcp/{http6.port}@::1" and gap.status == "open"
    with db.session() as s:
        hosts = s.exec(select(ScanHost).where(ScanHost.run_id == run.id)).all()
    assert [x.host_id for x in hosts] == [enrolled["host_id"]]


def test_interrupted_at_the_window_end_and_nmap_missing(db):
    unit_with_loopback(db)
    interrupted = runner.run(db, unit_code="D1", targets=["127.0.0.1"], ports="1", deadline=time.monotonic() - 1)
    assert interrupted.status == "interrupted" and interrupted.chunks_done == 0
    with db.session() as s:
        assert s.exec(select(ScanAsset)).all() == []  # nothing recorded as scanned: still due
    failed = runner.run(db, unit_code="D1", targets=["127.0.0.1"], ports="1", nmap="/nonexistent/nmap")
    assert failed.status == "failed" and "apt-get install nmap" in failed.error
    assert [r.status for r in runs(db)] == ["interrupted", "failed"]


def test_windows_and_rescan_intervals():
    # 23:30 in Hà Nội is 16:30 UTC.
    late = datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert scans.window_end([[22, 6]], late) == datetime(2026, 11, 23, 6, 0, tzinfo=scans.LOCAL_TZ)
    assert scans.window_end([[8, 17]], late) is False
    assert scans.window_end([], late) is True
    early = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # 03:00 local
    assert scans.window_end([[22, 6]], early) == datetime(2026, 11, 23, 6, 0, tzinfo=scans.LOCAL_TZ)
    assert store.rescan_after(["P3", "P0"], responded=True).total_seconds() == 12 * 3600
    assert store.rescan_after([], responded=True).days == 7
    assert store.rescan_after(["P4"], responded=False).days == 90
    with pytest.raises(InvalidInput, match="22-06"):
        scans.parse_window("late")


def test_scheduler_tick_scans_due_units_inside_their_window_only(db, settings):
    unit_with_loopback(db)
    with db.transaction() as s:
        scans.set_ranges(s, code="D1", remove=["::1"])
        scans.set_policy(s, code="D1", profile="discovery")
        scans.set_ranges(s, code="D2", add=["127.0.0.1"])
        hour = datetime.now(scans.LOCAL_TZ).hour
        scans.set_policy(s, code="D2", windows=[f"{(hour + 2) % 24:02d}-{(hour + 3) % 24:02d}"])  # not now
    jobs = Jobs(db, settings)
    try:
        jobs.scan_tick()
        jobs.pool.shutdown(wait=True)
    finally:
        jobs.stop()
    done = runs(db)
    assert [(r.unit_id, r.trigger, r.profile, r.status) for r in done] == [(2, "schedule", "discovery", "completed")]
    # Everything is scanned and not yet due again: the next tick starts nothing.
    jobs = Jobs(db, settings)
    try:
        jobs.scan_tick()
        jobs.pool.shutdown(wait=True)
    finally:
        jobs.stop()
    assert len(runs(db)) == 1
    with db.session() as s:
        assert s.get(ScanPolicy, 3).windows != []


def test_a_run_never_stays_running(db, monkeypatch):
    unit_with_loopback(db)
    with pytest.raises(InvalidInput, match="unknown scan profile"):
        runner.run(db, unit_code="D1", targets=["127.0.0.1"], profile="aggressive")
    assert runs(db) == []

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "store_chunk", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        runner.run(db, unit_code="D1", targets=["127.0.0.1"], ports="1")
    [run] = runs(db)
    assert run.status == "failed" and "disk full" in run.error and run.finished_at is not None
