"""People-facing check results: ``GET /api/v1/hosts/{id}/checks`` (unit-scoped, ``as_of`` for history)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from collector.compliance import service as compliance
from collector.deps import CallerScope, SessionDep
from collector.types import utcnow

router = APIRouter(prefix="/api/v1/hosts", tags=["compliance"])


@router.get("/{host_id}/checks")
def host_checks(host_id: int, session: SessionDep, scope: CallerScope, as_of: datetime | None = None) -> dict:
    results = compliance.results_of(session, scope=scope, host_id=host_id, at=utcnow(), as_of=as_of)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {"items": results, "counts": counts}
