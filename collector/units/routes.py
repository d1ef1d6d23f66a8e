"""People-facing unit API: ``GET /api/v1/units`` (unit-scoped)."""

from __future__ import annotations

from fastapi import APIRouter

from collector.deps import CallerScope, SessionDep
from collector.units import service as units
from collector.units.models import UnitPublic

router = APIRouter(prefix="/api/v1/units", tags=["units"])


@router.get("")
def list_units(session: SessionDep, scope: CallerScope) -> dict:
    return {"items": [UnitPublic.model_validate(u, from_attributes=True) for u in units.list_(session, scope=scope)]}
