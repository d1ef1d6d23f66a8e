"""Compliance: judge a host's facts with the policy checks, keep results with history, read them back.

Facts arrive as ``facts.snapshot`` items; the ingest transaction judges them at once (a few ms per
host, twice a day) so results and the facts they came from are stored together. Only a changed
result opens a new row; the previous one gets ``valid_to``, so "what was true on date D" is one query.
Exceptions are applied when reading: a failed check covered by an active exception reads as
``accepted``, and stops doing so the moment the exception expires.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session, select

from collector.compliance.models import MAX_EVIDENCE, CheckResultPublic, CheckResultRow
from collector.exceptions.service import Coverage
from collector.hosts import service as hosts
from collector.hosts.models import Host
from collector.scope import Scope
from rules.checks import DEFAULT_POLICY, UNKNOWN_LEVEL, CheckSet, evaluate_host, load_checks, os_family


@lru_cache(maxsize=1)
def builtin_checks() -> CheckSet:
    """The shipped checks and policies, loaded once per process (loading validates every file)."""
    return load_checks()


def judge(session: Session, *, host: Host, kinds: dict[str, Any], at: datetime,
          checkset: CheckSet | None = None, policy_id: str = DEFAULT_POLICY) -> dict[str, int]:
    """Evaluate the facts and store what changed; returns how many results opened and closed."""
    checkset = checkset or builtin_checks()
    level = host.security_level or UNKNOWN_LEVEL
    os_row = hosts.current_os(session, host_id=host.id)
    results = evaluate_host(checkset, kinds, os_family=os_family(os_row), level=level, policy_id=policy_id,
                            os_release=os_row)
    current = {r.check_id: r for r in session.exec(select(CheckResultRow).where(
        CheckResultRow.host_id == host.id, CheckResultRow.policy_id == policy_id,
        CheckResultRow.valid_to.is_(None)))}
    opened = closed = 0
    for result in results:
        evidence = (result.evidence or "")[:MAX_EVIDENCE]
        old = current.pop(result.check_id, None)
        if old is not None and (old.status, old.evidence, old.level) == (result.status, evidence, level):
            continue
        if old is not None:
            old.valid_to = at
            session.add(old)
            closed += 1
        session.add(CheckResultRow(unit_id=host.unit_id, host_id=host.id, policy_id=policy_id,
                                   check_id=result.check_id, status=result.status, severity=result.severity,
                                   critical=result.critical, level=level, evidence=evidence,
                                   requirements=list(result.requirements), valid_from=at))
        opened += 1
    for gone in current.values():  # no longer applicable at this level (or removed from the policy)
        gone.valid_to = at
        session.add(gone)
        closed += 1
    return {"opened": opened, "closed": closed}


def results_of(session: Session, *, scope: Scope, host_id: int, at: datetime, as_of: datetime | None = None,
               policy_id: str = DEFAULT_POLICY) -> list[CheckResultPublic]:
    """A host's results now (or as of a date), with exceptions in force at that time applied."""
    host, _code = hosts.get(session, scope=scope, host_id=host_id)
    when = as_of or at
    query = select(CheckResultRow).where(CheckResultRow.host_id == host.id, CheckResultRow.policy_id == policy_id)
    if as_of is None:
        query = query.where(CheckResultRow.valid_to.is_(None))
    else:
        query = query.where(CheckResultRow.valid_from <= as_of,
                            (CheckResultRow.valid_to.is_(None)) | (CheckResultRow.valid_to > as_of))
    coverage = Coverage(session, target_kind="check", at=when)
    out = []
    for row in session.exec(query.order_by(CheckResultRow.check_id)):
        covered = coverage.covering(target=row.check_id, host_id=host.id, unit_id=host.unit_id) \
            if row.status == "fail" else None
        out.append(CheckResultPublic(
            check_id=row.check_id, policy_id=row.policy_id, status="accepted" if covered else row.status,
            judged=row.status, severity=row.severity, critical=row.critical, level=row.level,
            evidence=row.evidence, requirements=row.requirements, valid_from=row.valid_from,
            valid_to=row.valid_to, exception_id=covered.id if covered else None))
    return out
