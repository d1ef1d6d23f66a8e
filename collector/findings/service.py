"""Finding lifecycle: reconcile what a producer observes now with what is stored, and read findings.

Producers (vulnerability matching, pending patches, check results, scans, the agent's port
inventory, end-of-life data) each report, for a set of subjects (hosts or scanned addresses), the
complete list of what they observe now. ``reconcile`` turns that into opened, updated, reopened and
fixed findings. It is set-based: one read of the subjects' findings, then batched inserts and
updates, so a nightly re-match of 10,000 hosts does not cost 10,000 round trips per step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlmodel import Session

from collector.bulk import insert_many
from collector.errors import NotFound
from collector.exceptions.service import Coverage
from collector.findings.models import Finding, FindingEvent, FindingPublic, FindingSighting
from collector.hosts.models import Host
from collector.scope import Scope
from collector.units.models import Unit
from rules.sla import SlaTable, builtin_sla, deadline

REOPEN_WINDOW = timedelta(days=90)
CHUNK = 500
MAX_EVIDENCE_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Subject:
    """What findings attach to: a managed host, or an address seen only by scans."""

    identity: str
    unit_id: int
    host_id: int | None = None
    address: str | None = None
    level: int | None = None
    internet_facing: bool = False

    @classmethod
    def of_host(cls, host: Host) -> Subject:
        return cls(identity=f"host:{host.id}", unit_id=host.unit_id, host_id=host.id,
                   level=host.security_level, internet_facing=host.internet_facing)

    @classmethod
    def of_address(cls, *, unit_id: int, address: str, internet_facing: bool = False) -> Subject:
        return cls(identity=f"addr:{unit_id}:{address}", unit_id=unit_id, address=address,
                   internet_facing=internet_facing)


@dataclass(frozen=True, slots=True)
class Observation:
    rule: str
    location: str
    title: str
    finding_class: str
    evidence: dict[str, Any] = field(default_factory=dict)
    cvss_score: float | None = None
    cvss_vector: str | None = None
    fix_available: bool = True
    distro_state: str | None = None
    fixed_version: str | None = None
    warning_date: datetime | None = None  # an official warning / KEV date: the clock starts at the earlier


@dataclass(slots=True)
class ReconcileResult:
    opened: int = 0
    reopened: int = 0
    fixed: int = 0
    reclassified: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("opened", "reopened", "fixed", "reclassified", "updated", "unchanged")}


# A producer's proof that a finding is gone: given the finding row, what shows it fixed.
ProofFn = Callable[[Subject, Any], dict[str, Any]]


def dedupe_key(identity: str, rule: str, location: str) -> str:
    return hashlib.sha256(f"{identity}\0{rule}\0{location}".encode()).hexdigest()


def _digest(subject: Subject, obs: Observation) -> tuple[dict[str, Any], str]:
    """The evidence to store (clipped) and a hash of everything that decides the stored row.

    Comparing hashes instead of rows keeps the nightly re-match of ~10^6 unchanged findings from
    decoding and comparing every stored evidence document. The host's level and exposure are in
    it because the deadline depends on them.
    """
    text = json.dumps(obs.evidence, sort_keys=True, default=str)
    evidence = obs.evidence if len(text) <= MAX_EVIDENCE_CHARS else {"truncated": text[:MAX_EVIDENCE_CHARS]}
    state = json.dumps([obs.title[:500], obs.finding_class, obs.cvss_score, obs.cvss_vector, obs.fix_available,
                        obs.distro_state, obs.fixed_version, subject.level, subject.internet_facing,
                        obs.warning_date.isoformat() if obs.warning_date else None], default=str)
    return evidence, hashlib.blake2b(f"{state}\0{text}".encode(), digest_size=16).hexdigest()


FINDINGS = Finding.__table__  # Core statements: the ORM's bulk paths cost ~0.5 ms a row here
_COLUMNS = (Finding.id, Finding.dedupe_key, Finding.generation, Finding.status, Finding.sources, Finding.fixed_at,
            Finding.clock_start, Finding.finding_class, Finding.obs_hash, Finding.unit_id, Finding.identity,
            Finding.rule, Finding.location, Finding.fixed_version, Finding.due_at, Finding.last_seen)
SIGHTINGS = FindingSighting.__table__


def _latest_rows(session: Session, *, kind: str, identities: list[str]) -> dict[str, Any]:
    """The newest generation of every finding of ``kind`` on these subjects, by dedupe key."""
    latest: dict[str, Any] = {}
    for i in range(0, len(identities), CHUNK):
        rows = session.connection().execute(select(*_COLUMNS).where(Finding.kind == kind,
                                                       Finding.identity.in_(identities[i:i + CHUNK]))).all()
        for row in rows:
            old = latest.get(row.dedupe_key)
            if old is None or row.generation > old.generation:
                latest[row.dedupe_key] = row
    return latest


def reconcile(session: Session, *, kind: str, producer: str, observed: dict[Subject, list[Observation]],
              now: datetime, proof: ProofFn, sla: SlaTable | None = None,
              covers: Callable[[Subject, Any], bool] | None = None) -> ReconcileResult:
    """Make the stored findings of ``kind`` on these subjects agree with what ``producer`` sees now.

    Every subject in ``observed`` is complete: a finding of this kind the producer saw before on
    that subject and does not list now is no longer seen by it, and is fixed once no producer sees
    it (``proof`` says what showed it fixed). ``covers`` narrows what the producer looked at (a scan
    of one of a host's addresses says nothing about its other addresses).
    """
    sla = sla or builtin_sla()
    result = ReconcileResult()
    subjects = {s.identity: s for s in observed}
    latest = _latest_rows(session, kind=kind, identities=list(subjects))
    # A complete report (no ``covers``) is one sighting per subject instead of a last-seen update per
    # finding; the previous sighting is when a finding that is gone now was last seen.
    complete = covers is None
    previous = _sightings(session, kind=kind, producer=producer, identities=list(subjects)) if complete else {}
    new_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    seen_ids: list[int] = []
    seen_keys: set[str] = set()
    digests: dict[tuple[int, int | None, bool], tuple[dict[str, Any], str]] = {}

    for subject, observations in observed.items():
        for obs in observations:
            key = dedupe_key(subject.identity, obs.rule, obs.location)
            if key in seen_keys:  # the producer listed it twice: once is enough
                continue
            seen_keys.add(key)
            row = latest.get(key)
            # Producers share one Observation object among hosts with the same build: digest it once.
            cache_key = (id(obs), subject.level, subject.internet_facing)
            cached = digests.get(cache_key)
            if cached is None:
                cached = digests[cache_key] = _digest(subject, obs)
            evidence, digest = cached
            if row is None or (row.status == "fixed" and now - row.fixed_at > REOPEN_WINDOW):
                generation = 0 if row is None else row.generation + 1
                new_rows.append(_new_row(subject, kind, producer, obs, key, generation, now, sla, evidence, digest))
                result.opened += 1
            elif row.status == "fixed":
                _reopen(session, subject, producer, obs, row, now, sla, events, evidence, digest)
                result.reopened += 1
            elif producer not in _producers(row) or row.obs_hash != digest:
                _update(session, subject, producer, obs, row, now, sla, events, result, evidence, digest)
            else:
                if not complete:
                    seen_ids.append(row.id)
                result.unchanged += 1

    for key, row in latest.items():
        if row.status == "fixed" or key in seen_keys:
            continue
        subject = subjects[row.identity]
        if covers is not None and not covers(subject, row):
            continue
        last = max(row.last_seen, previous.get(row.identity, row.last_seen))
        _unsee(session, subject, producer, row, now, proof, events, result, last_seen=last)

    for i in range(0, len(seen_ids), CHUNK):
        ids = seen_ids[i:i + CHUNK]
        session.connection().execute(update(FINDINGS).where(FINDINGS.c.id.in_(ids)).values(last_seen=now))
    new_rows.sort(key=lambda r: r["dedupe_key"])  # in index order: B-tree inserts stay local
    insert_many(session.connection(), FINDINGS, new_rows)
    if events:
        session.connection().execute(insert(FindingEvent.__table__), events)
    if complete:
        _record_sightings(session, kind=kind, producer=producer, identities=list(subjects), now=now)
    return result


def _sightings(session: Session, *, kind: str, producer: str, identities: list[str]) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for i in range(0, len(identities), CHUNK):
        out.update(session.connection().execute(select(SIGHTINGS.c.identity, SIGHTINGS.c.seen_at).where(
            SIGHTINGS.c.kind == kind, SIGHTINGS.c.producer == producer,
            SIGHTINGS.c.identity.in_(identities[i:i + CHUNK]))).all())
    return out


def _record_sightings(session: Session, *, kind: str, producer: str, identities: list[str], now: datetime) -> None:
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    for i in range(0, len(identities), CHUNK):
        stmt = upsert(SIGHTINGS)
        stmt = stmt.on_conflict_do_update(index_elements=["identity", "kind", "producer"],
                                          set_={"seen_at": stmt.excluded.seen_at})
        conn.execute(stmt, [{"identity": ident, "kind": kind, "producer": producer, "seen_at": now}
                            for ident in identities[i:i + CHUNK]])


def _new_row(subject: Subject, kind: str, producer: str, obs: Observation, key: str, generation: int,
             now: datetime, sla: SlaTable, evidence: dict[str, Any], digest: str) -> dict[str, Any]:
    """A new finding (its first-seen date and deadline are on the row; events log what changes later)."""
    clock = min(now, obs.warning_date) if obs.warning_date else now
    due = deadline(sla, obs.finding_class, level=subject.level, internet_facing=subject.internet_facing,
                   clock_start=clock)
    return {"unit_id": subject.unit_id, "host_id": subject.host_id, "address": subject.address,
            "identity": subject.identity, "kind": kind, "rule": obs.rule, "location": obs.location,
            "dedupe_key": key, "generation": generation, "title": obs.title[:500], "finding_class": obs.finding_class,
            "cvss_score": obs.cvss_score, "cvss_vector": obs.cvss_vector, "fix_available": obs.fix_available,
            "distro_state": obs.distro_state, "fixed_version": obs.fixed_version, "status": "open",
            "sources": producer, "evidence": evidence, "obs_hash": digest, "first_seen": now, "last_seen": now,
            "clock_start": clock, "due_at": due.due_at, "mitigate_by": due.mitigate_by, "sla_version": due.version,
            "fixed_at": None, "fixed_proof": None, "reopened_count": 0, "remediation_status": "open", "assignee": None}


def _fields(subject: Subject, obs: Observation, row: Any, sla: SlaTable, evidence: dict[str, Any],
            digest: str) -> dict[str, Any]:
    clock = min(row.clock_start, obs.warning_date) if obs.warning_date else row.clock_start
    due = deadline(sla, obs.finding_class, level=subject.level, internet_facing=subject.internet_facing,
                   clock_start=clock)
    return {"title": obs.title[:500], "finding_class": obs.finding_class, "cvss_score": obs.cvss_score,
            "cvss_vector": obs.cvss_vector, "fix_available": obs.fix_available, "distro_state": obs.distro_state,
            "fixed_version": obs.fixed_version, "evidence": evidence, "obs_hash": digest, "clock_start": clock,
            "due_at": due.due_at, "mitigate_by": due.mitigate_by, "sla_version": due.version}


def _producers(row: Any) -> list[str]:
    return row.sources.split(",") if row.sources else []


def _update(session, subject, producer, obs, row, now, sla, events, result, evidence, digest) -> None:
    sources = ",".join(sorted({*_producers(row), producer}))
    values = _fields(subject, obs, row, sla, evidence, digest) | {"last_seen": now, "sources": sources}
    session.connection().execute(update(FINDINGS).where(FINDINGS.c.id == row.id).values(**values))
    if row.finding_class != obs.finding_class or values["due_at"] != row.due_at:
        events.append({"finding_id": row.id, "unit_id": row.unit_id, "at": now, "action": "reclassified",
                       "detail": {"from": row.finding_class, "to": obs.finding_class,
                                  "due_at": values["due_at"].isoformat()}})
        result.reclassified += 1
    else:
        result.updated += 1


def _reopen(session, subject, producer, obs, row, now, sla, events, evidence, digest) -> None:
    """Back within the reopen window: same row, same first-seen date and clock, so the same deadline."""
    values = _fields(subject, obs, row, sla, evidence, digest) | {
        "status": "reopened", "last_seen": now, "sources": producer, "fixed_at": None,
        "reopened_count": FINDINGS.c.reopened_count + 1,
        "remediation_status": "open"}  # back after a fix: whatever people said about it is work to redo
    session.connection().execute(update(FINDINGS).where(FINDINGS.c.id == row.id).values(**values))
    events.append({"finding_id": row.id, "unit_id": row.unit_id, "at": now, "action": "reopened",
                   "detail": {"fixed_at": row.fixed_at.isoformat(), "by": producer}})


def _unsee(session, subject, producer, row, now, proof, events, result, *, last_seen: datetime) -> None:
    if producer not in _producers(row):
        return  # another producer's finding: not ours to close
    remaining = [s for s in _producers(row) if s != producer]
    if remaining:
        session.connection().execute(update(FINDINGS).where(FINDINGS.c.id == row.id)
                                     .values(sources=",".join(remaining), last_seen=last_seen))
        result.updated += 1
        return
    evidence = proof(subject, row) | {"by": producer, "at": now.isoformat()}
    session.connection().execute(update(FINDINGS).where(FINDINGS.c.id == row.id).values(
        status="fixed", fixed_at=now, fixed_proof=evidence, sources="", last_seen=last_seen))
    events.append({"finding_id": row.id, "unit_id": row.unit_id, "at": now, "action": "fixed", "detail": evidence})
    result.fixed += 1


# ---- reading -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FindingFilter:
    unit_ids: frozenset[int] | None = None  # a unit and its sub-units, already resolved
    host_id: int | None = None
    kind: str | None = None
    finding_class: str | None = None
    status: str | None = None  # open (incl. reopened) | fixed | accepted | any stored status
    overdue: bool | None = None
    rule: str | None = None


def list_(session: Session, *, scope: Scope, filters: FindingFilter, now: datetime, limit: int = 100,
          before_id: int | None = None) -> list[FindingPublic]:
    """Findings visible to ``scope``, newest first, keyset-paginated by id."""
    query = (select(Finding, Unit.code, Host.hostname).join(Unit, Unit.id == Finding.unit_id)
             .outerjoin(Host, Host.id == Finding.host_id).where(scope.where(Finding.unit_id)))
    query = _filtered(query, filters, now)
    if before_id is not None:
        query = query.where(Finding.id < before_id)
    coverage = _coverage(session, now)
    out: list[FindingPublic] = []
    # "accepted" is computed (an exception lapses with no job to run), so filter it after reading.
    want = filters.status
    batch = limit if want not in ("accepted", "open") else max(limit * 4, 200)
    cursor = before_id
    while len(out) < limit:
        page_query = query if cursor is None else query.where(Finding.id < cursor)
        rows = session.exec(page_query.order_by(Finding.id.desc()).limit(batch)).all()
        sighted = _sighted(session, [r[0] for r in rows])
        for finding, code, hostname in rows:
            public = _public(finding, code, hostname, now, coverage, sighted)
            if want == "accepted" and public.status != "accepted":
                continue
            if want == "open" and public.status not in ("open", "reopened"):
                continue
            out.append(public)
            if len(out) == limit:
                break
        if len(rows) < batch:
            break
        cursor = rows[-1][0].id
    return out


def _filtered(query, filters: FindingFilter, now: datetime):
    if filters.unit_ids is not None:
        query = query.where(Finding.unit_id.in_(filters.unit_ids))
    if filters.host_id is not None:
        query = query.where(Finding.host_id == filters.host_id)
    if filters.kind:
        query = query.where(Finding.kind == filters.kind)
    if filters.finding_class:
        query = query.where(Finding.finding_class == filters.finding_class)
    if filters.rule:
        query = query.where(Finding.rule == filters.rule)
    if filters.status in ("open", "accepted"):
        query = query.where(Finding.status.in_(("open", "reopened")))
    elif filters.status:
        query = query.where(Finding.status == filters.status)
    if filters.overdue is True:
        query = query.where(Finding.status != "fixed", Finding.due_at < now)
    elif filters.overdue is False:
        query = query.where(or_(Finding.status == "fixed", Finding.due_at >= now))
    return query


def _coverage(session: Session, now: datetime) -> dict[str, Coverage]:
    """Exceptions in force: a failed-check finding is accepted by a check exception, others by finding ones."""
    return {"check": Coverage(session, target_kind="check", at=now),
            "finding": Coverage(session, target_kind="finding", at=now)}


def _sighted(session: Session, rows: list[Finding]) -> dict[tuple[str, str, str], datetime]:
    """The sightings of these findings' subjects: (identity, kind, producer) -> when."""
    identities = sorted({f.identity for f in rows if f.status != "fixed"})
    out: dict[tuple[str, str, str], datetime] = {}
    for i in range(0, len(identities), CHUNK):
        for identity, kind, producer, seen_at in session.connection().execute(select(
                SIGHTINGS.c.identity, SIGHTINGS.c.kind, SIGHTINGS.c.producer, SIGHTINGS.c.seen_at)
                .where(SIGHTINGS.c.identity.in_(identities[i:i + CHUNK]))):
            out[(identity, kind, producer)] = seen_at
    return out


def _last_seen(finding: Finding, sighted: dict[tuple[str, str, str], datetime]) -> datetime:
    """An open finding was seen whenever a producer that sees it last reported its subject in full."""
    last = finding.last_seen
    if finding.status != "fixed":
        for producer in _producers(finding):
            at = sighted.get((finding.identity, finding.kind, producer))
            if at is not None and at > last:
                last = at
    return last


def _public(finding: Finding, unit_code: str, hostname: str | None, now: datetime,
            coverage: dict[str, Coverage], sighted: dict[tuple[str, str, str], datetime]) -> FindingPublic:
    status = finding.status
    exception_id = None
    if status != "fixed":
        kind = "check" if finding.kind == "check" else "finding"
        covering = coverage[kind].covering(target=finding.rule, host_id=finding.host_id, unit_id=finding.unit_id)
        if covering is not None:
            status, exception_id = "accepted", covering.id
    # An accepted finding is not overdue (assurance model: exceptions).
    overdue = status in ("open", "reopened") and finding.due_at < now
    remediation = "fixed" if finding.status == "fixed" else finding.remediation_status
    data = finding.model_dump() | {"unit": unit_code, "hostname": hostname, "status": status, "overdue": overdue,
                                   "remediation_status": remediation,
                                   "exception_id": exception_id, "sources": _producers(finding),
                                   "last_seen": _last_seen(finding, sighted)}
    return FindingPublic.model_validate(data)


def present(session: Session, rows: list[tuple[Finding, str, str | None]], *, now: datetime) -> list[FindingPublic]:
    """(finding, unit code, hostname) rows as people see them: exceptions applied, last seen from sightings."""
    coverage = _coverage(session, now)
    sighted = _sighted(session, [r[0] for r in rows])
    return [_public(f, code, hostname, now, coverage, sighted) for f, code, hostname in rows]


def get(session: Session, *, scope: Scope, finding_id: int, now: datetime) -> tuple[FindingPublic, list[FindingEvent]]:
    row = session.exec(select(Finding, Unit.code, Host.hostname).join(Unit, Unit.id == Finding.unit_id)
                       .outerjoin(Host, Host.id == Finding.host_id)
                       .where(Finding.id == finding_id, scope.where(Finding.unit_id))).first()
    if row is None:
        raise NotFound(f"no finding {finding_id}")
    history = session.scalars(select(FindingEvent).where(FindingEvent.finding_id == finding_id)
                           .order_by(FindingEvent.at, FindingEvent.id)).all()
    return _public(row[0], row[1], row[2], now, _coverage(session, now), _sighted(session, [row[0]])), list(history)


def counts(session: Session, *, scope: Scope, filters: FindingFilter, now: datetime) -> dict[str, dict[str, int]]:
    """Open findings by class, and how many of them are overdue (stored status; exceptions not applied)."""
    overdue = func.sum(case((Finding.due_at < now, 1), else_=0))
    base = _filtered(select(Finding.finding_class, func.count(), overdue)
                     .where(scope.where(Finding.unit_id), Finding.status.in_(("open", "reopened"))),
                     FindingFilter(unit_ids=filters.unit_ids, host_id=filters.host_id, kind=filters.kind), now)
    out: dict[str, dict[str, int]] = {}
    for cls, total, overdue in session.execute(base.group_by(Finding.finding_class)):
        out[cls] = {"open": int(total), "overdue": int(overdue or 0)}
    return out


def worst_open_class(session: Session, *, identities: Iterable[str]) -> dict[str, list[str]]:
    """Open finding classes per subject identity (the scan scheduler picks rescan intervals from them)."""
    ids = list(identities)
    out: dict[str, list[str]] = {}
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(select(Finding.identity, Finding.finding_class).distinct().where(
            Finding.identity.in_(ids[i:i + CHUNK]), Finding.status.in_(("open", "reopened"))))
        for identity, cls in rows:
            out.setdefault(identity, []).append(cls)
    return out

