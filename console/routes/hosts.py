"""Host pages: the list of hosts in the viewer's scope and one host's inventory and recent changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from collector.deps import SessionDep, SettingsDep
from collector.errors import NotFound
from collector.events import service as events
from collector.hosts import service as hosts
from collector.hosts.models import Host
from collector.types import utcnow
from collector.units import service as units
from console.deps import ViewerDep
from console.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 500
RECENT_CHANGES = 50
# The change events the collector derives from inventory diffs (collector.hosts.inventory).
CHANGE_EVENT_TYPES = [
    "port.opened", "port.closed",
    "package.installed", "package.removed", "package.upgraded",
    "account.added", "account.removed",
    "service.enabled", "service.disabled",
]


@dataclass(frozen=True, slots=True)
class HostLine:
    host: Host
    unit_code: str
    stale: bool


@router.get("/hosts")
def hosts_page(request: Request, viewer: ViewerDep, session: SessionDep, settings: SettingsDep,
               unit: str | None = None, page: int = Query(1, ge=1, le=10_000)) -> Response:
    """Hosts in the viewer's scope (optionally one unit), a page at a time, stale ones marked."""
    unit_code = unit or None
    # One extra row tells whether a next page exists without a COUNT over every host.
    rows = hosts.list_(session, scope=viewer.scope, unit_code=unit_code, limit=PAGE_SIZE + 1,
                       offset=(page - 1) * PAGE_SIZE)
    stale_after, now = timedelta(seconds=settings.stale_after_s), utcnow()
    lines = [HostLine(host, code, hosts.is_stale(host, stale_after=stale_after, now=now))
             for host, code in rows[:PAGE_SIZE]]
    in_scope = units.list_(session, scope=viewer.scope)
    return render(request, "hosts.html", {
        "viewer": viewer, "lines": lines, "unit": unit_code, "page": page,
        "has_next": len(rows) > PAGE_SIZE, "units": in_scope,
        "synthetic_units": {u.code for u in in_scope if u.synthetic},
    })


@router.get("/hosts/{host_id}")
def host_page(request: Request, host_id: int, viewer: ViewerDep, session: SessionDep,
              settings: SettingsDep) -> Response:
    """One host: summary, every inventory section and its recent changes; 404 outside the scope."""
    try:
        host, unit_code = hosts.get(session, scope=viewer.scope, host_id=host_id)
    except NotFound:
        return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)
    sections = hosts.inventory_of(session, scope=viewer.scope, host_id=host.id)
    sections["listening_ports"].sort(key=_port_order)
    changes = events.list_(session, scope=viewer.scope, host_id=host.id, types=CHANGE_EVENT_TYPES,
                           limit=RECENT_CHANGES)
    stale = hosts.is_stale(host, stale_after=timedelta(seconds=settings.stale_after_s))
    return render(request, "host.html", {
        "viewer": viewer, "host": host, "unit_code": unit_code, "stale": stale,
        "sections": sections, "changes": changes,
        "synthetic": units.get_by_code(session, code=unit_code).synthetic,
    })


def _port_order(row: dict[str, Any]) -> tuple[str, int, str]:
    # Rows are agent data: a port that is not a number sorts last instead of breaking the page.
    port = row.get("port")
    number = port if isinstance(port, int) and not isinstance(port, bool) else 1 << 20
    return (str(row.get("proto") or ""), number, str(row.get("address") or ""))
