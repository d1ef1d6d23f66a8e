"""People-facing host API: ``GET /api/v1/hosts`` and ``GET /api/v1/hosts/{id}`` (unit-scoped)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Query

from collector.deps import CallerScope, SessionDep, SettingsDep
from collector.events import service as events
from collector.events.models import EventPublic
from collector.hosts import service as hosts

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])
SINGLE_ROW_SECTIONS = ("identity", "os", "hardware")


@router.get("")
def list_hosts(session: SessionDep, scope: CallerScope, settings: SettingsDep,
               unit: str | None = None, limit: int = Query(500, ge=1, le=1000),
               offset: int = Query(0, ge=0)) -> dict:
    stale = timedelta(seconds=settings.stale_after_s)
    rows = hosts.list_(session, scope=scope, unit_code=unit, limit=limit, offset=offset)
    return {"items": [hosts.to_public(h, unit_code=code, stale_after=stale) for h, code in rows]}


@router.get("/{host_id}")
def get_host(host_id: int, session: SessionDep, scope: CallerScope, settings: SettingsDep,
             as_of: datetime | None = None) -> dict:
    host, code = hosts.get(session, scope=scope, host_id=host_id)
    public = hosts.to_public(host, unit_code=code, stale_after=timedelta(seconds=settings.stale_after_s))
    inventory = hosts.inventory_of(session, scope=scope, host_id=host_id, as_of=as_of)
    for name in SINGLE_ROW_SECTIONS:  # one row each: an object (or null) reads better than a list
        inventory[name] = inventory[name][0] if inventory.get(name) else None
    recent = events.list_(session, scope=scope, host_id=host_id, limit=50)
    return public.model_dump(mode="json") | inventory | {
        "recent_events": [EventPublic.model_validate(e, from_attributes=True) for e in recent]}
