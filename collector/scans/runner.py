"""Running a scan: validate targets against the unit's ranges, nmap chunk by chunk, store, reconcile.

No database transaction is open while nmap runs: each chunk is scanned first, then stored and
turned into findings in one short transaction. A run that reaches the end of its window stops
between (or inside) chunks, is recorded as interrupted, and the addresses it did not finish stay
due, so the next window picks them up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from collector.db import Database
from collector.errors import InvalidInput
from collector.findings import service as findings
from collector.findings.service import Observation, Subject
from collector.hosts.models import Host, InventoryRow
from collector.scans import service as scans
from collector.scans.models import PROFILES, ScanHost, ScanPort, ScanRun
from collector.scans.nmap import HostResult, ScanError, ScanInterrupted, ScanOutput, run_nmap
from collector.scans.targets import TargetError, check_size, check_within, expand_chunks, parse_targets
from collector.types import utcnow
from collector.units import service as units
from rules.scans.assess import ScannedHost, ScannedPort, assess_host, default_exposure, reconcile_ports

log = logging.getLogger(__name__)
PRODUCER = "scan"
DEFAULT_MAX_ADDRESSES = 65_536


@dataclass(frozen=True, slots=True)
class Progress:
    chunk: int
    chunks: int
    percent: float  # of the whole run
    message: str


def plan(session: Session, *, unit_code: str, targets: list[str] | None, max_addresses: int,
         skip: set[str] = frozenset()) -> tuple[int, list[str], list[str], list[list[str]]]:
    """(unit id, targets, excludes, address chunks) — refuses bad CIDRs, oversize and out-of-range targets."""
    unit = units.get_by_code(session, code=unit_code)
    owned, excluded = scans.ranges_of(session, unit_id=unit.id)
    if not owned:
        raise InvalidInput(f"unit {unit_code} has no declared ranges: khien unit ranges {unit_code} --add CIDR")
    try:
        nets = parse_targets(targets) if targets else parse_targets(owned)
        check_within(nets, allowed=parse_targets(owned), excludes=parse_targets(excluded), unit=unit_code)
        check_size(nets, max_addresses=max_addresses)
        chunks = expand_chunks(nets, excludes=parse_targets(excluded))
    except TargetError as exc:
        raise InvalidInput(str(exc)) from exc
    if skip:
        chunks = [kept for kept in ([a for a in c if a not in skip] for c in chunks) if kept]
    return unit.id, [str(n) for n in nets], excluded, chunks


def run(db: Database, *, unit_code: str, targets: list[str] | None = None, profile: str = "standard",
        trigger: str = "cli", max_addresses: int = DEFAULT_MAX_ADDRESSES, deadline: float | None = None,
        only_due: bool = False, nmap: str | None = None, ports: str | None = None,
        on_progress: Callable[[Progress], None] | None = None) -> ScanRun | None:
    """Scan now; returns the stored run (completed, interrupted at the deadline, or failed).

    With ``only_due`` only addresses whose rescan interval ran out are scanned (None: nothing due).
    """
    say = on_progress or (lambda _p: None)
    if profile not in PROFILES:
        raise InvalidInput(f"unknown scan profile {profile!r}; choose {', '.join(PROFILES)}")
    with db.transaction() as session:
        skip = set()
        if only_due:
            skip = scans.not_due(session, unit_id=units.get_by_code(session, code=unit_code).id, now=utcnow())
        unit_id, nets, excluded, chunks = plan(session, unit_code=unit_code, targets=targets,
                                               max_addresses=max_addresses, skip=skip)
        if only_due and not chunks:
            return None
        run_row = ScanRun(unit_id=unit_id, profile=profile, targets=nets, excludes=excluded, trigger=trigger,
                          started_at=utcnow(), chunks_total=len(chunks), addresses=sum(len(c) for c in chunks))
        session.add(run_row)
        session.flush()
        run_id = run_row.id
    risky = default_exposure()
    status, error, nmap_seconds, hosts_up, command = "completed", None, 0.0, 0, ""
    totals: dict[str, int] = {}
    try:
        status, error, nmap_seconds, hosts_up, command = _scan_chunks(
            db, run_id=run_id, unit_id=unit_id, chunks=chunks, profile=profile, deadline=deadline, nmap=nmap,
            ports=ports, risky=risky, totals=totals, say=say)
    except BaseException as exc:  # a run never stays "running": record why, then re-raise
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        row = _finish(db, run_id=run_id, status=status, error=error, hosts_up=hosts_up,
                      nmap_seconds=nmap_seconds, command=command, totals=totals)
    return row


def _scan_chunks(db: Database, *, run_id: int, unit_id: int, chunks: list[list[str]], profile: str,
                 deadline: float | None, nmap: str | None, ports: str | None, risky: Any, totals: dict[str, int],
                 say: Callable[[Progress], None]) -> tuple[str, str | None, float, int, str]:
    """nmap chunk by chunk, each stored in its own transaction: (status, error, nmap s, hosts up, command)."""
    status, error, nmap_seconds, hosts_up, command = "completed", None, 0.0, 0, ""
    for i, chunk in enumerate(chunks):
        def progress(fraction: float, i: int = i, size: int = len(chunk)) -> None:
            say(Progress(i + 1, len(chunks), round(100 * (i + fraction) / len(chunks), 1),
                         f"chunk {i + 1}/{len(chunks)}: {size} addresses"))
        progress(0.0)
        try:
            output = run_nmap(chunk, profile=profile, on_progress=progress, deadline=deadline, nmap=nmap,
                              ports=ports)
        except ScanInterrupted as exc:
            status, error = "interrupted", str(exc)[:2000]
            break
        except ScanError as exc:
            status, error = "failed", str(exc)[:2000]
            break
        nmap_seconds += output.elapsed_s
        command = " ".join(output.command)[:2000]
        with db.transaction() as session:
            counted = store_chunk(session, run_id=run_id, unit_id=unit_id, chunk=chunk, output=output, risky=risky)
            hosts_up += counted.pop("hosts_up")
            for k, v in counted.items():
                totals[k] = totals.get(k, 0) + v
            session.get(ScanRun, run_id).chunks_done = i + 1
        progress(1.0)
    return status, error, nmap_seconds, hosts_up, command


def _finish(db: Database, *, run_id: int, status: str, error: str | None, hosts_up: int, nmap_seconds: float,
            command: str, totals: dict[str, int]) -> ScanRun:
    with db.transaction() as session:
        row = session.get(ScanRun, run_id)
        row.status, row.error, row.finished_at = status, error, utcnow()
        row.hosts_up, row.nmap_seconds, row.command, row.findings = hosts_up, round(nmap_seconds, 3), command, totals
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


def store_chunk(session: Session, *, run_id: int, unit_id: int, chunk: list[str], output: ScanOutput,
                risky: Any) -> dict[str, int]:
    """Store one chunk's results and reconcile the findings of the addresses that answered."""
    now = utcnow()
    managed = _managed_addresses(session, unit_id=unit_id)
    by_address = {h.address: h for h in output.hosts}
    states: dict[str, tuple[str, int | None]] = {}
    exposure: dict[Subject, list[Observation]] = {}
    unmanaged: dict[Subject, list[Observation]] = {}
    scanned_addresses: dict[str, str] = {}  # identity -> address this chunk looked at
    hosts_up = 0
    for address in chunk:
        result = by_address.get(address)
        state = result.state if result else "down"
        host = managed.get(address)
        states[address] = (state, host.id if host else None)
        if result is None:
            continue
        _store_host(session, run_id=run_id, unit_id=unit_id, result=result, host_id=host.id if host else None,
                    at=now)
        if state != "up" or result.timed_out:
            # A host that did not answer, or whose results nmap dropped at --host-timeout, proves
            # nothing either way: its findings stay as they are and it stays due.
            if result.timed_out:
                states[address] = ("timeout", states[address][1])
            continue
        hosts_up += 1
        observations = _observe(session, result, host, risky, now)
        addr_subject = Subject.of_address(unit_id=unit_id, address=address)
        if host is not None:
            subject = Subject.of_host(host)
            exposure.setdefault(subject, []).extend(observations)
            scanned_addresses[subject.identity] = address
            exposure[addr_subject] = []  # whatever was seen here while unmanaged is now the host's
            unmanaged[addr_subject] = []
        else:
            exposure[addr_subject] = observations
            unmanaged[addr_subject] = [Observation(
                rule="unmanaged-host", location="", finding_class="failed_check",
                title=f"{address} answers on the network but has no enrolled agent",
                evidence={"address": address, "hostnames": list(result.hostnames), "os_guess": result.os_guess,
                          "open_ports": [f"{p.proto}/{p.port}" for p in result.ports if p.state == "open"][:50]})]
        scanned_addresses[addr_subject.identity] = address

    def covers(subject: Subject, row: Any) -> bool:
        return row.location.endswith("@" + scanned_addresses.get(subject.identity, "\0")) or row.location == ""

    def proof(subject: Subject, row: Any) -> dict[str, Any]:
        address = scanned_addresses.get(subject.identity)
        if subject.host_id is None and address in managed:
            return {"proof": "an enrolled agent now reports this address", "host_id": managed[address].id,
                    "address": address}
        return {"proof": "not seen by the network scan", "address": address, "run_id": run_id}

    counts: dict[str, int] = {"hosts_up": hosts_up}
    for kind, observed in (("exposure", exposure), ("unmanaged", unmanaged)):
        result = findings.reconcile(session, kind=kind, producer=PRODUCER, observed=observed, now=now, proof=proof,
                                    covers=covers)
        for k, v in result.as_dict().items():
            counts[k] = counts.get(k, 0) + v
    scans.update_assets(session, unit_id=unit_id, results=states, now=now)
    return counts


def _observe(session: Session, result: HostResult, host: Host | None, risky: Any, now: datetime) -> list[Observation]:
    scanned = ScannedHost(address=result.address, ports=tuple(
        ScannedPort(proto=p.proto, port=p.port, state=p.state, service=p.service, product=p.product,
                    version=p.version, tls_weak=tuple(p.tls.weak_protocols) if p.tls else (),
                    tls_expired=p.tls.expired if p.tls else None, tls_not_after=p.tls.not_after if p.tls else None,
                    ssh_password=_password_login(p.ssh_auth_methods),
                    http_title=p.http_title, http_server=p.http_server)
        for p in result.ports))
    observed = list(assess_host(scanned, risky=risky, now=now))
    if host is not None:
        listening = [row for row in session.exec(select(InventoryRow.data).where(
            InventoryRow.host_id == host.id, InventoryRow.section == "listening_ports",
            InventoryRow.valid_to.is_(None))).all()]
        open_ports = {(p.proto, p.port) for p in result.ports if p.state == "open"}
        observed += reconcile_ports(scanned_open=open_ports, agent_listening=listening, allowed=None)
    return [Observation(rule=o.rule, location=f"{o.location}@{result.address}", title=f"{o.title} ({result.address})",
                        finding_class=o.finding_class, evidence=dict(o.evidence) | {"address": result.address})
            for o in observed]


def _password_login(methods: tuple[str, ...] | None) -> bool | None:
    """SSH accepts a typed password: "password", or "keyboard-interactive" (on Linux, PAM's password prompt)."""
    if methods is None:
        return None
    return "password" in methods or "keyboard-interactive" in methods


def _managed_addresses(session: Session, *, unit_id: int) -> dict[str, Host]:
    """Addresses the unit's enrolled hosts report on their interfaces -> the host."""
    ids = units.subtree_ids(session, unit_id=unit_id)
    hosts = {h.id: h for h in session.exec(select(Host).where(Host.unit_id.in_(ids))).all()}
    out: dict[str, Host] = {}
    rows = session.execute(select(InventoryRow.host_id, InventoryRow.data).where(
        InventoryRow.unit_id.in_(ids), InventoryRow.section == "interfaces", InventoryRow.valid_to.is_(None)))
    for host_id, data in rows:
        for addr in (data or {}).get("addresses") or []:
            value = str(addr.get("address") or "").split("%", 1)[0]
            if value and host_id in hosts:
                out.setdefault(value, hosts[host_id])
    return out


def _store_host(session: Session, *, run_id: int, unit_id: int, result: HostResult, host_id: int | None,
                at: datetime) -> None:
    row = ScanHost(run_id=run_id, unit_id=unit_id, address=result.address, state=result.state,
                   hostnames=list(result.hostnames)[:20], os_guess=result.os_guess, host_id=host_id, scanned_at=at)
    session.add(row)
    session.flush()
    for p in result.ports:
        details: dict[str, Any] = {}
        if p.tls is not None:
            details["tls"] = {"not_after": p.tls.not_after.isoformat() if p.tls.not_after else None,
                              "expired": p.tls.expired, "subject": p.tls.subject,
                              "protocols": list(p.tls.protocols), "weak_protocols": list(p.tls.weak_protocols)}
        if p.http_title or p.http_server:
            details["http"] = {"title": p.http_title, "server": p.http_server}
        if p.ssh_auth_methods is not None:
            details["ssh"] = {"auth_methods": list(p.ssh_auth_methods)}
        session.add(ScanPort(scan_host_id=row.id, run_id=run_id, proto=p.proto, port=p.port, state=p.state,
                             service=p.service, product=p.product, version=p.version, extrainfo=p.extrainfo,
                             details=details))


def run_due(db: Database, *, unit_code: str, profile: str, deadline: float | None,
            max_addresses: int) -> ScanRun | None:
    """The scheduler's entry: scan the unit's addresses whose rescan interval ran out (None if none)."""
    try:
        return run(db, unit_code=unit_code, profile=profile, trigger="schedule", deadline=deadline,
                   max_addresses=max_addresses, only_due=True)
    except InvalidInput as exc:  # e.g. ranges larger than the cap: the operator must see why nothing runs
        log.warning("scheduled scan of %s refused: %s", unit_code, exc)
        return None


def monotonic_deadline(until: datetime) -> float:
    return time.monotonic() + max(0.0, (until - utcnow()).total_seconds())
