"""People-facing findings API: ``GET /api/v1/findings`` (filters, keyset pages) and ``/{id}`` with history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from collector.deps import CallerScope, SessionDep
from collector.errors import InvalidInput
from collector.findings import service as findings
from collector.findings.models import KINDS, STATUSES
from collector.types import utcnow
from collector.units import service as units
from rules.sla import CLASSES

router = APIRouter(prefix="/api/v1/findings", tags=["findings"])


def _filters(session, *, unit: str | None, host_id: int | None, kind: str | None, finding_class: str | None,
             status: str | None, overdue: bool | None, rule: str | None) -> findings.FindingFilter:
    choices = ((kind, KINDS, "kind"), (finding_class, CLASSES, "class"), (status, STATUSES, "status"))
    for value, allowed, name in choices:
        if value is not None and value not in allowed:
            raise InvalidInput(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")
    unit_ids = None
    if unit is not None:
        unit_ids = units.subtree_ids(session, unit_id=units.get_by_code(session, code=unit).id)
    return findings.FindingFilter(unit_ids=unit_ids, host_id=host_id, kind=kind, finding_class=finding_class,
                                  status=status, overdue=overdue, rule=rule)


@router.get("")
def list_findings(session: SessionDep, scope: CallerScope, unit: str | None = None, host_id: int | None = None,
                  kind: str | None = None, finding_class: Annotated[str | None, Query(alias="class")] = None,
                  status: str | None = None, overdue: bool | None = None, rule: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100, before_id: int | None = None) -> dict:
    """Findings in the caller's units (a unit filter includes its sub-units), newest first.

    ``status=open`` includes reopened ones; ``accepted`` are open findings covered by an active exception.
    """
    filters = _filters(session, unit=unit, host_id=host_id, kind=kind, finding_class=finding_class, status=status,
                       overdue=overdue, rule=rule)
    now = utcnow()
    items = findings.list_(session, scope=scope, filters=filters, now=now, limit=limit, before_id=before_id)
    return {"items": items, "counts": findings.counts(session, scope=scope, filters=filters, now=now),
            "next_before_id": items[-1].id if len(items) == limit else None}


@router.get("/{finding_id}")
def get_finding(finding_id: int, session: SessionDep, scope: CallerScope) -> dict:
    finding, history = findings.get(session, scope=scope, finding_id=finding_id, now=utcnow())
    return {"finding": finding, "history": [h.model_dump() for h in history]}
