"""Storing one scanned chunk: hosts and ports with history, then the findings they prove or close.

Kept apart from ``runner`` so that a fresh ``khien scan`` process can import this module (the
findings and exceptions services, the SLA table: ~0.15 s) while nmap runs instead of before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from collector.findings import service as findings
from collector.findings.service import Observation, Subject
from collector.hosts.models import Host, InventoryRow
from collector.scans.models import ScanAsset, ScanHost, ScanPort
from collector.scans.nmap import HostResult, ScanOutput
from collector.types import utcnow
from collector.units import service as units
from rules.scans.assess import ScannedHost, ScannedPort, assess_host, default_exposure, reconcile_ports
from rules.sla import worst

PRODUCER = "scan"
# Rescan interval by the worst open finding on the address (CISA Cyber Hygiene's cadence).
RESCAN = {
    "P0": timedelta(hours=12), "critical_misconfig": timedelta(hours=12), "P1": timedelta(hours=12),
    "P2": timedelta(hours=24), "P3": timedelta(days=4), "failed_check": timedelta(days=4), "eol": timedelta(days=4),
    "P4": timedelta(days=6),
}
RESCAN_CLEAN = timedelta(days=7)
RESCAN_NOT_RESPONDING = timedelta(days=90)


def store_chunk(session: Session, *, run_id: int, unit_id: int, chunk: list[str], output: ScanOutput) -> dict[str, int]:
    """Store one chunk's results and reconcile the findings of the addresses that answered."""
    now = utcnow()
    risky = default_exposure()
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
    update_assets(session, unit_id=unit_id, results=states, now=now)
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


# ---- when each address is due again ----------------------------------------------------------------

def rescan_after(classes: list[str], *, responded: bool) -> timedelta:
    if not responded:
        return RESCAN_NOT_RESPONDING
    worst_class = worst(classes)
    return RESCAN.get(worst_class, RESCAN_CLEAN) if worst_class else RESCAN_CLEAN


def update_assets(session: Session, *, unit_id: int, results: dict[str, tuple[str, int | None]],
                  now: datetime) -> None:
    """Record each scanned address's state (address -> (state, managed host id)) and its next due time."""
    existing = {a.address: a for a in session.exec(select(ScanAsset).where(
        ScanAsset.unit_id == unit_id, ScanAsset.address.in_(list(results))))}
    identities = {addr: (f"host:{hid}" if hid else f"addr:{unit_id}:{addr}") for addr, (_s, hid) in results.items()}
    classes = findings.worst_open_class(session, identities=identities.values())
    for address, (state, host_id) in results.items():
        if state == "timeout":  # results dropped at --host-timeout: keep it due, record nothing new
            continue
        up = state == "up"
        asset = existing.get(address) or ScanAsset(unit_id=unit_id, address=address, state=state, first_seen=now,
                                                   last_scanned=now, next_scan_at=now)
        asset.state, asset.host_id, asset.last_scanned = state, host_id, now
        if up:
            asset.last_up = now
        asset.next_scan_at = now + rescan_after(classes.get(identities[address], []), responded=up)
        session.add(asset)
