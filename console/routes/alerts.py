"""Console: the alert queue and one alert's page, with the triage workflow, comments and suppressions.

Every change goes through ``collector.alerts.triage`` / ``suppressions`` with the viewer as actor: the
service checks the role and unit scope and the session audits it; a refused change re-renders the page
with the reason and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session, select
from starlette.responses import Response

from collector.access import Action
from collector.alerts import context, queue, suppressions, triage
from collector.alerts import service as alerts
from collector.alerts.models import CLOSED_STATUSES, SEVERITIES, STATUSES, SUPPRESSION_KINDS, Alert
from collector.db import Database
from collector.deps import DbDep, SessionDep
from collector.errors import KhienError, NotFound
from collector.hosts.models import Host
from collector.units import service as units
from console.deps import CsrfCheckedViewer, Viewer, ViewerDep
from console.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
SUPPRESS_DAYS = (1, 7, 30, 90)
FILTER_FIELDS = ("unit", "host_id", "rule", "severity", "status", "since", "until", "q", "assignee", "sort")


def _local_day(value: str | None, *, end: bool = False) -> datetime | None:
    """A 'YYYY-MM-DD' from the form as the start (or end) of that day in Vietnam, in UTC; bad dates are ignored."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1) if end else day, time(0), VIETNAM)


def _filters(params: dict[str, str]) -> queue.AlertFilter:
    host = params.get("host_id", "")
    return queue.AlertFilter(
        unit=params.get("unit") or None, host_id=int(host) if host.isdigit() else None,
        rule_id=params.get("rule") or None, severity=params.get("severity") or None,
        status=params.get("status") or None, since=_local_day(params.get("since")),
        until=_local_day(params.get("until"), end=True), q=params.get("q") or None,
        assignee=params.get("assignee") or None)


def _labels(session: Session, rows: list[Alert]) -> tuple[dict[int, str], dict[int, str]]:
    """Host names and unit codes of the rows shown (two small lookups instead of a join per row)."""
    host_ids = {a.host_id for a in rows if a.host_id is not None}
    names = dict(session.exec(select(Host.id, Host.hostname).where(Host.id.in_(host_ids))).all()) if host_ids else {}
    codes = units.codes_by_id(session, ids={a.unit_id for a in rows}) if rows else {}
    return names, codes


@router.get("/alerts")
def alerts_page(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    """The queue in the viewer's scope: filter form, counts per severity, a page of alerts, bulk form."""
    params = {k: v.strip() for k, v in request.query_params.items() if k in (*FILTER_FIELDS, "cursor")}
    filters = _filters(params)
    sort = params.get("sort") or "newest"
    error = None
    try:
        result = queue.page(session, scope=viewer.scope, filters=filters, sort=sort,
                            cursor=params.get("cursor") or None, limit=PAGE_SIZE)
        counts = queue.severity_counts(session, scope=viewer.scope, filters=filters)
    except KhienError as exc:
        error, result, counts = exc, queue.AlertPage(items=[], next_cursor=None), {}
    names, codes = _labels(session, result.items)
    kept = {k: v for k, v in params.items() if k in FILTER_FIELDS and v}
    next_url = f"/alerts?{urlencode({**kept, 'cursor': result.next_cursor})}" if result.next_cursor else None
    return render(request, "alerts.html", {
        "viewer": viewer, "rows": result.items, "names": names, "codes": codes, "counts": counts,
        "params": params, "next_url": next_url, "first_url": f"/alerts?{urlencode(kept)}",
        "suppressed_url": f"/alerts?{urlencode({**kept, 'status': 'suppressed'})}",
        "error": error, "units": units.list_(session, scope=viewer.scope),
        "severities": SEVERITIES, "status_options": ("open", "closed", *STATUSES), "sorts": queue.SORTS,
        "bulk_statuses": ("acknowledged", "in_progress", *CLOSED_STATUSES),
        "can_triage": viewer.actor.can(Action.triage_alerts), "closed": CLOSED_STATUSES, "cap": queue.COUNT_CAP,
    }, status_code=error.status_code if error else 200)


def _alert_page(request: Request, viewer: Viewer, session: Session, alert_id: int, *,
                error: KhienError | None = None) -> Response:
    try:
        alert = alerts.get(session, scope=viewer.scope, alert_id=alert_id)
    except NotFound:
        return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)
    ruleset = request.app.state.detection.ruleset
    host = context.host_context(session, scope=viewer.scope, alert=alert)
    related = context.related_alerts(session, scope=viewer.scope, alert=alert)
    return render(request, "alert.html", {
        "viewer": viewer, "alert": alert, "rule": ruleset.rules.get(alert.rule_id), "host": host,
        "events": context.triggering_events(session, scope=viewer.scope, alert=alert),
        "related": related, "comments": triage.list_comments(session, scope=viewer.scope, alert_id=alert.id),
        "suppressions": suppressions.list_(session, scope=viewer.scope, rule_id=alert.rule_id),
        "next_statuses": triage.allowed_next(alert.status), "closed": CLOSED_STATUSES,
        "can_triage": viewer.actor.can(Action.triage_alerts), "kinds": SUPPRESSION_KINDS,
        "can_suppress": viewer.actor.can(Action.suppress_alerts), "suppress_days": SUPPRESS_DAYS,
        "error": error,
    }, status_code=error.status_code if error else 200)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: int, viewer: ViewerDep, session: SessionDep) -> Response:
    """One alert: the rule's texts, triggering events, host context, related alerts, comments, actions."""
    return _alert_page(request, viewer, session, alert_id)


def _change(request: Request, viewer: Viewer, db: Database, session: Session, alert_id: int,
            change: Callable[[Session], object]) -> Response:
    """Run ``change`` in a transaction audited as the viewer; 303 back to the alert on success, the page
    with the reason when refused."""
    try:
        with db.transaction(actor=viewer.actor) as tx:
            change(tx)
    except NotFound:
        return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)
    except KhienError as exc:
        return _alert_page(request, viewer, session, alert_id, error=exc)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/status")
def change_status(request: Request, alert_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                  status: Annotated[str, Form()], comment: Annotated[str, Form()] = "") -> Response:
    return _change(request, viewer, db, session, alert_id, lambda tx: triage.set_status(
        tx, actor=viewer.actor, alert_id=alert_id, status=status, comment=comment))


@router.post("/alerts/{alert_id}/assign")
def assign(request: Request, alert_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
           assignee: Annotated[str, Form()] = "") -> Response:
    return _change(request, viewer, db, session, alert_id, lambda tx: triage.assign(
        tx, actor=viewer.actor, alert_id=alert_id, assignee=assignee))


@router.post("/alerts/{alert_id}/comments")
def comment(request: Request, alert_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
            body: Annotated[str, Form()] = "") -> Response:
    return _change(request, viewer, db, session, alert_id, lambda tx: triage.add_comment(
        tx, actor=viewer.actor, alert_id=alert_id, body=body))


@router.post("/alerts/{alert_id}/suppress")
def suppress(request: Request, alert_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
             reason: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "snooze",
             scope: Annotated[str, Form()] = "host", days: Annotated[int, Form(ge=1, le=90)] = 7) -> Response:
    def create(tx: Session) -> None:
        alert = alerts.get(tx, scope=viewer.actor.scope, alert_id=alert_id)
        on_host = scope == "host" and alert.host_id is not None
        unit = None if on_host else units.codes_by_id(tx, ids={alert.unit_id})[alert.unit_id]
        suppressions.create(tx, actor=viewer.actor, data=suppressions.SuppressionCreate(
            rule_id=alert.rule_id, kind=kind, reason=reason, host_id=alert.host_id if on_host else None,
            unit=unit, expires_at=datetime.now(VIETNAM) + timedelta(days=days)))
    return _change(request, viewer, db, session, alert_id, create)


@router.post("/alerts/{alert_id}/suppressions/{suppression_id}/expire")
def expire(request: Request, alert_id: int, suppression_id: int, viewer: CsrfCheckedViewer, db: DbDep,
           session: SessionDep) -> Response:
    return _change(request, viewer, db, session, alert_id, lambda tx: suppressions.expire(
        tx, actor=viewer.actor, suppression_id=suppression_id))


@router.post("/alerts/bulk")
async def bulk(request: Request, viewer: CsrfCheckedViewer, db: DbDep) -> Response:
    """The same status or assignee for every ticked alert; all or nothing."""
    form = await request.form()
    ids = [int(v) for v in form.getlist("alert_id") if isinstance(v, str) and v.isdigit()]
    action = str(form.get("action") or "")
    status = str(form.get("status") or "") or None
    assignee = str(form.get("assignee") or "")
    back = str(form.get("back") or "")
    back = back if back.startswith("/alerts") and not back.startswith("//") else "/alerts"
    try:
        with db.transaction(actor=viewer.actor) as tx:
            triage.bulk(tx, actor=viewer.actor, alert_ids=ids, comment=str(form.get("comment") or ""),
                        status=status if action == "status" else None,
                        assignee=assignee if action == "assign" and assignee else None,
                        unassign=action == "assign" and not assignee)
    except KhienError as exc:
        return _bulk_refused(request, viewer, exc)
    return RedirectResponse(back, status_code=303)


def _bulk_refused(request: Request, viewer: Viewer, exc: KhienError) -> Response:
    return render(request, "alerts_refused.html", {"viewer": viewer, "error": exc}, status_code=exc.status_code)
