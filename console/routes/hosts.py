"""Host pages (read-only): the host list, one host's page, and its change events.

Everything is scoped by the viewer's units; a host of another unit answers exactly like a missing
one. Bad filter values or tampered page links never fail the page: they are ignored and named in a
notice, so a pasted link still shows something sensible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from collector.alerts import service as alerts
from collector.compliance import service as compliance
from collector.deps import SessionDep, SettingsDep
from collector.errors import NotFound
from collector.findings import service as findings
from collector.findings.service import FindingFilter
from collector.hosts import service as hosts
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from console import host_views as views
from console import i18n
from console.deps import ViewerDep
from console.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100  # hosts per list page (read at call time, so tests can shrink it)
CHANGES_ON_HOST_PAGE = 20
CHANGES_PAGE_SIZE = 100
ALERTS_ON_HOST_PAGE = 50
OPEN_FINDINGS_SHOWN = 200
FIXED_FINDINGS_SHOWN = 20
# The change events the collector derives from inventory diffs (collector.hosts.inventory).
CHANGE_EVENT_TYPES = [
    "port.opened", "port.closed",
    "package.installed", "package.removed", "package.upgraded",
    "account.added", "account.removed",
    "service.enabled", "service.disabled",
]


# ---- the list ------------------------------------------------------------------------------------------

def _list_filter(unit: str | None, q: str | None, stale: str | None, level: str | None, facing: str | None,
                 sort: str | None) -> tuple[views.HostFilter, list[str]]:
    """The filter from query parameters, and the names of the ones that were invalid (and ignored)."""
    bad: list[str] = []
    text = (q or "").strip() or None
    if text is not None and len(text) > views.MAX_TEXT:
        bad.append("q")
        text = None
    if level and level not in views.LEVEL_CHOICES:
        bad.append("level")
        level = None
    if facing and facing not in views.FACING_CHOICES:
        bad.append("facing")
        facing = None
    if sort and sort not in views.SORTS:
        bad.append("sort")
        sort = None
    return views.HostFilter(
        unit_code=(unit or "").strip() or None, text=text, stale_only=stale in ("1", "on", "yes", "true"),
        level=level or None, internet_facing={"yes": True, "no": False}.get(facing or ""),
        sort=sort or "hostname"), bad


def _query_of(filters: views.HostFilter) -> list[tuple[str, str]]:
    """The filter as query parameters, for the pager's links (sort included, cursor not)."""
    facing = {True: "yes", False: "no"}.get(filters.internet_facing)  # type: ignore[call-overload]
    params = [("unit", filters.unit_code), ("q", filters.text), ("stale", "1" if filters.stale_only else None),
              ("level", filters.level), ("facing", facing),
              ("sort", filters.sort if filters.sort != "hostname" else None)]
    return [(k, v) for k, v in params if v]


@router.get("/hosts")
def hosts_page(request: Request, viewer: ViewerDep, session: SessionDep, settings: SettingsDep,
               unit: str | None = None, q: str | None = None, stale: str | None = None, level: str | None = None,
               facing: str | None = None, sort: str | None = None, after: str | None = None,
               before: str | None = None) -> Response:
    """Hosts in the viewer's scope, filtered and sorted, a keyset page at a time."""
    filters, bad = _list_filter(unit, q, stale, level, facing, sort)
    now, stale_after = utcnow(), timedelta(seconds=settings.stale_after_s)
    try:
        page = views.host_page(session, scope=viewer.scope, filters=filters, now=now, stale_after=stale_after,
                               limit=PAGE_SIZE, after=after or None, before=before or None)
    except views.BadCursor:
        bad.append("page")
        page = views.host_page(session, scope=viewer.scope, filters=filters, now=now, stale_after=stale_after,
                               limit=PAGE_SIZE)
    in_scope = units.list_(session, scope=viewer.scope)
    return render(request, "hosts.html", {
        "viewer": viewer, "page": page, "filters": filters, "bad": bad, "query": _query_of(filters),
        "unit": filters.unit_code, "units": in_scope, "synthetic_units": {u.code for u in in_scope if u.synthetic},
        "first_page": not (after or before) or "page" in bad,
    })


# ---- one host ------------------------------------------------------------------------------------------

def end_of_local_day(day: date) -> datetime:
    """The last instant of a calendar day on Vietnam's clock: 'as of 2026-11-20' includes all of that day."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=i18n.VIETNAM_TIME) - timedelta(microseconds=1)


def _as_of(value: str | None) -> tuple[date | None, bool]:
    """The requested history date and whether the value was invalid."""
    if not value:
        return None, False
    try:
        return date.fromisoformat(value.strip()), False
    except ValueError:
        return None, True


def _not_found(request: Request, viewer: Any) -> Response:
    return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)


@dataclass(frozen=True, slots=True)
class FindingGroups:
    open: list[Any]
    accepted: list[Any]
    fixed: list[Any]


def _findings_of(session: SessionDep, *, scope: Scope, host_id: int, now: datetime) -> FindingGroups:
    """Open findings first (most overdue on top), then accepted ones, then the latest fixed ones."""
    def listed(status: str, limit: int) -> list[Any]:
        return findings.list_(session, scope=scope, filters=FindingFilter(host_id=host_id, status=status), now=now,
                              limit=limit)

    open_rows = sorted(listed("open", OPEN_FINDINGS_SHOWN), key=lambda f: (f.due_at, f.id))
    return FindingGroups(open=open_rows, accepted=listed("accepted", OPEN_FINDINGS_SHOWN),
                         fixed=listed("fixed", FIXED_FINDINGS_SHOWN))


@router.get("/hosts/{host_id}")
def host_page(request: Request, host_id: int, viewer: ViewerDep, session: SessionDep, settings: SettingsDep,
              as_of: str | None = None) -> Response:
    """One host: summary, inventory (now or as of a date), changes, checks, facts, findings, alerts,
    scans and agent health; 404 outside the scope."""
    try:
        host, unit_code = hosts.get(session, scope=viewer.scope, host_id=host_id)
    except NotFound:
        return _not_found(request, viewer)
    scope, now = viewer.scope, utcnow()
    day, bad_date = _as_of(as_of)
    until = end_of_local_day(day) if day is not None and end_of_local_day(day) < now else None
    sections = hosts.inventory_of(session, scope=scope, host_id=host.id, as_of=until)
    sections["listening_ports"].sort(key=_port_order)
    changes = views.change_page(session, scope=scope, host_id=host.id, types=CHANGE_EVENT_TYPES,
                                limit=CHANGES_ON_HOST_PAGE, until=until)
    results = compliance.results_of(session, scope=scope, host_id=host.id, at=now, as_of=until)
    lang = i18n.language_of(request)
    current_interfaces = sections["interfaces"] if until is None else \
        hosts.inventory_of(session, scope=scope, host_id=host.id)["interfaces"]
    addresses = views.host_addresses(current_interfaces)
    return render(request, "host.html", {
        "viewer": viewer, "host": host, "unit_code": unit_code,
        "stale": hosts.is_stale(host, stale_after=timedelta(seconds=settings.stale_after_s), now=now),
        "sections": sections, "changes": changes.events, "more_changes": changes.next_cursor is not None,
        "as_of": day if until is not None else None,
        "as_of_future": day is not None and until is None and day > i18n.to_vietnam_time(now).date(),
        "bad_date": bad_date, "as_of_value": as_of if bad_date else (day.isoformat() if day else ""),
        "checks": views.check_lines(results, checks=compliance.builtin_checks().checks, lang=lang),
        "facts": views.latest_facts(session, scope=scope, host_id=host.id, until=until),
        "findings": _findings_of(session, scope=scope, host_id=host.id, now=now),
        "alerts": alerts.list_(session, scope=scope, host_id=host.id, limit=ALERTS_ON_HOST_PAGE),
        "scans": views.latest_scans(session, scope=scope, host=host, addresses=addresses),
        "unmanaged": views.unmanaged_assets(session, scope=scope, unit_id=host.unit_id),
        "agents": views.agents_of(session, scope=scope, host_id=host.id),
        "synthetic": units.get_by_code(session, code=unit_code).synthetic,
    })


@router.get("/hosts/{host_id}/changes")
def host_changes_page(request: Request, host_id: int, viewer: ViewerDep, session: SessionDep,
                      type: str | None = None, before: str | None = None) -> Response:
    """A host's change events, newest first, filtered by type, a keyset page at a time."""
    try:
        host, unit_code = hosts.get(session, scope=viewer.scope, host_id=host_id)
    except NotFound:
        return _not_found(request, viewer)
    bad: list[str] = []
    kind = type or None
    if kind is not None and kind not in CHANGE_EVENT_TYPES:
        bad.append("type")
        kind = None
    types = [kind] if kind else CHANGE_EVENT_TYPES
    try:
        page = views.change_page(session, scope=viewer.scope, host_id=host.id, types=types,
                                 limit=CHANGES_PAGE_SIZE, before=before or None)
    except views.BadCursor:
        bad.append("page")
        page = views.change_page(session, scope=viewer.scope, host_id=host.id, types=types, limit=CHANGES_PAGE_SIZE)
    return render(request, "host_changes.html", {
        "viewer": viewer, "host": host, "unit_code": unit_code, "changes": page.events,
        "next_cursor": page.next_cursor, "change_type": kind, "change_types": CHANGE_EVENT_TYPES, "bad": bad,
        "first_page": not before or "page" in bad,
    })


def _port_order(row: dict[str, Any]) -> tuple[str, int, str]:
    # Rows are agent data: a port that is not a number sorts last instead of breaking the page.
    port = row.get("port")
    number = port if isinstance(port, int) and not isinstance(port, bool) else 1 << 20
    return (str(row.get("proto") or ""), number, str(row.get("address") or ""))
