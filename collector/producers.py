"""Findings produced from what an agent reports: pending security updates, end-of-life OS, failed
checks, listening ports outside the unit's allowlist, and (through matching) vulnerable packages.

Each runs inside the ingest transaction of the item that carries its data, so a finding never
disagrees with the stored inventory, patch status or check results it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from collector.compliance.models import CheckResultRow
from collector.compliance.service import builtin_checks
from collector.findings import service as findings
from collector.findings.service import Observation, Subject
from collector.hosts.models import Host, InventoryRow
from collector.units import service as units
from collector.vulns import matching

# A security update of unknown severity is taken as high (P2): Debian and Ubuntu only ship
# security-archive updates for issues that warrant one (minor ones are marked no-dsa instead).
PENDING_UPDATE_CLASS = "P2"
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "*", "[::]"})  # noqa: S104 - matched, never bound


def from_patch_status(session: Session, *, host: Host, data: dict[str, Any], now: datetime) -> None:
    """Pending security updates and an end-of-life OS, from one ``patch.status``."""
    subject = Subject.of_host(host)
    pending = [
        Observation(rule="pending-security-update", location=p["name"],
                    title=f"Security update pending for {p['name']}"
                          + (f" ({p.get('installed_version')} → {p.get('candidate_version')})"
                             if p.get("candidate_version") else ""),
                    finding_class=PENDING_UPDATE_CLASS,
                    evidence={k: p.get(k) for k in ("installed_version", "candidate_version", "arch", "origin")},
                    fixed_version=p.get("candidate_version"))
        for p in data.get("pending") or [] if p.get("security")]
    findings.reconcile(session, kind="patch", producer="agent", observed={subject: pending}, now=now,
                       proof=lambda _s, row: {"proof": "no longer pending in the agent's patch status",
                                              "package": row.location})
    eol = data.get("os_eol") or {}
    observed = []
    if eol.get("status") == "eol":
        observed.append(Observation(
            rule="os-eol", location=f"{eol.get('product')} {eol.get('version')}",
            title=f"Operating system past end of life: {eol.get('product')} {eol.get('version')}"
                  f" (since {eol.get('eol_date')})",
            finding_class="eol", evidence=eol))
    findings.reconcile(session, kind="eol", producer="agent", observed={subject: observed}, now=now,
                       proof=lambda _s, _row: {"proof": "operating system supported", "os_eol": eol or None})


def from_check_results(session: Session, *, host: Host, now: datetime) -> None:
    """A finding per failed check: critical checks are critical misconfigurations (SLA table)."""
    checks = builtin_checks().checks
    failed = session.exec(select(CheckResultRow).where(
        CheckResultRow.host_id == host.id, CheckResultRow.valid_to.is_(None), CheckResultRow.status == "fail")).all()
    observed = []
    for r in failed:
        check = checks.get(r.check_id)
        title = (check.title.get("en") or r.check_id) if check else r.check_id
        observed.append(Observation(rule=r.check_id, location="", title=f"Check failed: {title}",
                                    finding_class="critical_misconfig" if r.critical else "failed_check",
                                    evidence={"check": r.check_id, "policy": r.policy_id, "level": r.level,
                                              "evidence": r.evidence[:1000], "requirements": r.requirements}))
    findings.reconcile(session, kind="check", producer="agent", observed={Subject.of_host(host): observed}, now=now,
                       proof=lambda _s, row: {"proof": "check passes or no longer applies", "check": row.rule})


def from_listening_ports(session: Session, *, host: Host, now: datetime) -> None:
    """Ports listening on every interface that the unit's allowlist does not name (when it has one)."""
    allowed = units.effective_allowed_ports(session).get(host.unit_id)
    observed = []
    if allowed is not None:
        rows = session.exec(select(InventoryRow.data).where(
            InventoryRow.host_id == host.id, InventoryRow.section == "listening_ports",
            InventoryRow.valid_to.is_(None))).all()
        for row in rows:
            if row.get("address") in WILDCARD_ADDRESSES and row.get("port") not in allowed:
                observed.append(Observation(
                    rule="port-listening-not-allowed", location=f"{row.get('proto')}/{row.get('port')}",
                    title=f"{row.get('proto')}/{row.get('port')} listens on all interfaces"
                          f" ({row.get('process') or 'unknown process'}) and is not in the unit's allowlist",
                    finding_class="failed_check",
                    evidence={k: row.get(k) for k in ("proto", "family", "address", "port", "process")}))
    findings.reconcile(session, kind="exposure", producer="agent", observed={Subject.of_host(host): observed}, now=now,
                       proof=lambda _s, row: {"proof": "no longer listening on all interfaces, or now allowed",
                                              "port": row.location})


def after_inventory(session: Session, *, host: Host, changed: set[str], now: datetime) -> None:
    """Re-match a host whose packages or release changed; re-judge its listening ports."""
    if changed & {"packages", "os"}:
        session.flush()
        # Inline only with the feed index already in memory (~60 ms a host); building it takes
        # seconds, which must not happen inside an agent's ingest transaction.
        index = matching.current_index(session)
        if index is None:
            matching.request_match(session, host.id)
        elif index.by_package:
            matching.match(session, now=now, host_ids=[host.id])
    if "listening_ports" in changed:
        from_listening_ports(session, host=host, now=now)
