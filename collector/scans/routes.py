"""People-facing scan results: ``GET /api/v1/scans`` and ``/{id}`` (hosts and ports seen), unit-scoped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import select

from collector.deps import CallerScope, SessionDep
from collector.scans import service as scans
from collector.scans.models import ScanHost, ScanPort

router = APIRouter(prefix="/api/v1/scans", tags=["scans"])


@router.get("")
def list_scans(session: SessionDep, scope: CallerScope, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    return {"items": [r.model_dump() for r in scans.list_runs(session, scope=scope, limit=limit)]}


@router.get("/{run_id}")
def get_scan(run_id: int, session: SessionDep, scope: CallerScope) -> dict:
    run = scans.get_run(session, scope=scope, run_id=run_id)
    hosts = session.exec(select(ScanHost).where(ScanHost.run_id == run.id).order_by(ScanHost.id)).all()
    ports: dict[int, list[dict]] = {}
    for p in session.exec(select(ScanPort).where(ScanPort.run_id == run.id).order_by(ScanPort.id)).all():
        ports.setdefault(p.scan_host_id, []).append(p.model_dump(exclude={"run_id", "scan_host_id"}))
    return {"run": run.model_dump(),
            "hosts": [h.model_dump() | {"ports": ports.get(h.id, [])} for h in hosts]}
