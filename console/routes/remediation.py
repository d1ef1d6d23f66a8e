"""Console: remediation items (views, item page with status, assignee, comments, evidence and an exception
request) and risk exceptions (requests awaiting a decision, approved, expired; administrators decide).

Pages are thin: every check (role, unit scope, workflow) is the services' job. A refused form shows the
page again with a translated reason and changes nothing; a successful one redirects (303).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from sqlmodel import Session, select
from starlette.responses import RedirectResponse, Response

from collector import uploads
from collector.access import Action
from collector.attestations.evidence import RejectedFile, ScannerUnavailable
from collector.audit.models import AuditEntry
from collector.db import Database
from collector.deps import DbDep, SessionDep, SettingsDep
from collector.errors import Conflict, Forbidden, InvalidInput, KhienError, NotFound, PayloadTooLarge
from collector.exceptions import service as exceptions
from collector.exceptions.models import MAX_DAYS, ExceptionRequestCreate, RiskException
from collector.findings import remediation, views
from collector.findings import service as findings
from collector.findings.models import REMEDIATION_STATUSES
from collector.types import utcnow
from collector.units import service as units
from console.deps import CSRF_FIELD, CsrfCheckedViewer, CsrfRejected, Viewer, ViewerDep, tokens_match
from console.templating import render
from rules.sla import CLASSES

router = APIRouter(include_in_schema=False)

TABS = ("overdue", "due_soon", "age", "by_unit")
PAGE_SIZE = 50
EXCEPTION_TABS = ("pending", "active", "expired", "rejected")
# Which computed statuses each exceptions tab lists.
EXCEPTION_TAB_STATUSES = {"pending": {"requested"}, "active": {"active"}, "expired": {"expired", "revoked"},
                          "rejected": {"rejected"}}
HISTORY_FIELDS = ("remediation_status", "assignee")


def _error_kind(exc: KhienError) -> str:
    """The reason a template names (translated there) for a refused form."""
    for cls, kind in ((PayloadTooLarge, "too_large"), (RejectedFile, "file_type"), (ScannerUnavailable, "scanner"),
                      (Forbidden, "forbidden"), (Conflict, "conflict"), (InvalidInput, "invalid")):
        if isinstance(exc, cls):
            return kind
    return "invalid"


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)


# ---- views ---------------------------------------------------------------------------------------

@router.get("/remediation")
def remediation_page(request: Request, viewer: ViewerDep, session: SessionDep, tab: str = "overdue",
                     unit: str | None = None, finding_class: str | None = Query(None, alias="class"),
                     status: str | None = None, bucket: str | None = None, after: str | None = None) -> Response:
    """Open remediation items in the viewer's units: overdue, due soon, by age bucket, or counts by unit."""
    tab = tab if tab in TABS else "overdue"
    in_scope = units.list_(session, scope=viewer.scope)
    unit_code = unit if unit and any(u.code == unit for u in in_scope) else None
    unit_ids = None
    if unit_code:
        unit_ids = units.subtree_ids(session, unit_id=units.get_visible(session, scope=viewer.scope, code=unit_code).id)
    cls = finding_class if finding_class in CLASSES else None
    wanted = status if status in REMEDIATION_STATUSES else None
    filters = views.ViewFilter(unit_ids=unit_ids, finding_class=cls, remediation_status=wanted)
    now = utcnow()
    context: dict[str, Any] = {
        "viewer": viewer, "tab": tab, "units": in_scope, "unit": unit_code, "finding_class": cls, "status": wanted,
        "bucket": bucket, "classes": CLASSES, "statuses": REMEDIATION_STATUSES, "buckets": views.BUCKETS,
        "totals": views.totals(session, scope=viewer.scope, filters=filters, now=now), "page": None,
        "by_unit": None, "ages": None, "first_page": not after,
    }
    if tab == "by_unit":
        context["by_unit"] = views.by_unit(session, scope=viewer.scope, filters=filters, now=now)
    else:
        if tab == "age":
            ages = context["ages"] = views.age_counts(session, scope=viewer.scope, filters=filters, now=now)
            if bucket not in views.BUCKETS:  # none chosen: the oldest bucket that has items
                bucket = next((b for b in reversed(views.BUCKETS) if ages[b]), views.BUCKETS[0])
            context["bucket"] = bucket
        try:
            context["page"] = views.items(session, scope=viewer.scope, filters=filters, view=tab, now=now,
                                          limit=PAGE_SIZE, after=after, bucket=bucket)
        except InvalidInput:  # a mangled cursor: start again from the first page
            context["page"] = views.items(session, scope=viewer.scope, filters=filters, view=tab, now=now,
                                          limit=PAGE_SIZE, bucket=bucket)
            context["first_page"] = True
    params = {"tab": tab, "unit": unit_code, "class": cls, "status": wanted,
              "bucket": bucket if tab == "age" else None}
    context["query"] = urlencode({k: v for k, v in params.items() if v})
    return render(request, "remediation.html", context)


# ---- the item page -------------------------------------------------------------------------------

def _item_context(session: Session, viewer: Viewer, finding_id: int) -> dict[str, Any]:
    now = utcnow()
    finding, events = findings.get(session, scope=viewer.scope, finding_id=finding_id, now=now)
    row = remediation.scoped(session, scope=viewer.scope, finding_id=finding_id)
    related = session.exec(select(RiskException).where(RiskException.finding_id == finding_id)
                           .order_by(RiskException.id.desc())).all()
    pending = any(r.status == "requested" for r in related)
    can_work = viewer.actor.can(Action.remediate) and finding.status != "fixed"
    return {
        "viewer": viewer, "finding": finding, "events": events, "now": now,
        "bucket": views.bucket_of(finding.first_seen, now),
        "comments": remediation.comments(session, scope=viewer.scope, finding_id=finding_id),
        "files": remediation.evidence(session, scope=viewer.scope, finding_id=finding_id),
        "history": _remediation_history(session, finding_id),
        "exceptions": [(r, r.status_at(now)) for r in related],
        "next_statuses": _next_statuses(row.remediation_status, accepted=finding.status == "accepted")
        if can_work else [],
        "can_work": can_work,
        "can_request": (viewer.actor.can(Action.request_exception) and finding.status in ("open", "reopened")
                        and not pending),
        "max_days": MAX_DAYS, "error": None, "detail": None,
    }


def _next_statuses(current: str, *, accepted: bool) -> list[str]:
    """The statuses the form offers, in workflow order; "risk accepted" only once an exception covers it."""
    allowed = remediation.TRANSITIONS[current]
    return [s for s in REMEDIATION_STATUSES if s in allowed and (s != "risk_accepted" or accepted)]


def _remediation_history(session: Session, finding_id: int) -> list[dict[str, Any]]:
    """Who changed the status or the assignee, when: the audit log's entries for this finding."""
    rows = session.exec(select(AuditEntry).where(AuditEntry.target_type == "findings",
                                                 AuditEntry.target_id == str(finding_id))
                        .order_by(AuditEntry.at, AuditEntry.id)).all()
    out = []
    for entry in rows:
        before, after = entry.before or {}, entry.after or {}
        changes = [(field, before.get(field), after.get(field)) for field in HISTORY_FIELDS if field in after]
        if changes:
            out.append({"at": entry.at, "actor": entry.actor, "changes": changes})
    return out


def _item_page(request: Request, session: Session, viewer: Viewer, finding_id: int, *,
               error: KhienError | None = None) -> Response:
    try:
        context = _item_context(session, viewer, finding_id)
    except NotFound:
        return _not_found(request, viewer)
    if error is not None:
        context["error"], context["detail"] = _error_kind(error), str(error)
    return render(request, "remediation_item.html", context, status_code=error.status_code if error else 200)


@router.get("/remediation/{finding_id}")
def item_page(request: Request, finding_id: int, viewer: ViewerDep, session: SessionDep) -> Response:
    return _item_page(request, session, viewer, finding_id)


def _done(finding_id: int, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/remediation/{finding_id}#{anchor}", status_code=303)


def _change(request: Request, viewer: Viewer, db: Database, session: Session, finding_id: int, anchor: str,
            change: Callable[[Session], object]) -> Response:
    """Run ``change`` in a transaction audited as the viewer; 303 back to the item's ``anchor`` on success,
    the item page with the reason when refused."""
    try:
        with db.transaction(actor=viewer.actor) as write:
            change(write)
    except NotFound:
        return _not_found(request, viewer)
    except KhienError as exc:
        return _item_page(request, session, viewer, finding_id, error=exc)
    return _done(finding_id, anchor)


@router.post("/remediation/{finding_id}/status")
def change_status(request: Request, finding_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                  status: str = Form(""), assignee: str | None = Form(None)) -> Response:
    change = remediation.Change(status=status or None, assignee=assignee)
    return _change(request, viewer, db, session, finding_id, "status", lambda write: remediation.update(
        write, actor=viewer.actor, finding_id=finding_id, change=change, now=utcnow()))


@router.post("/remediation/{finding_id}/comments")
def add_comment(request: Request, finding_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                body: str = Form("")) -> Response:
    return _change(request, viewer, db, session, finding_id, "comments", lambda write: remediation.add_comment(
        write, actor=viewer.actor, finding_id=finding_id, body=body, now=utcnow()))


@router.post("/remediation/{finding_id}/evidence")
async def upload_evidence(request: Request, finding_id: int, viewer: ViewerDep, db: DbDep, session: SessionDep,
                          settings: SettingsDep) -> Response:
    """One evidence file (multipart). The CSRF token is checked here, after the size check, so an
    oversized body is refused before it is read."""
    try:
        remediation.check_attachable(session, actor=viewer.actor, finding_id=finding_id)
        uploads.check_declared_size(request, max_bytes=settings.evidence_max_bytes)
    except NotFound:
        return _not_found(request, viewer)
    except KhienError as exc:
        return _item_page(request, session, viewer, finding_id, error=exc)
    form = await uploads.read_form(request)
    try:
        if not tokens_match(form.get(CSRF_FIELD), viewer.csrf_token):
            raise CsrfRejected
        try:
            staged = await uploads.stage_from(form, data_dir=settings.data_dir,
                                              max_bytes=settings.evidence_max_bytes)
            with db.transaction(actor=viewer.actor) as write:
                remediation.attach_staged(write, actor=viewer.actor, finding_id=finding_id, staged=staged,
                                          now=utcnow())
        except KhienError as exc:
            return _item_page(request, session, viewer, finding_id, error=exc)
    finally:
        await form.close()
    return _done(finding_id, "evidence")


@router.get("/remediation/{finding_id}/evidence/{file_id}")
def download_evidence(request: Request, finding_id: int, file_id: int, viewer: ViewerDep, session: SessionDep,
                      settings: SettingsDep) -> Response:
    try:
        row, path = remediation.evidence_file(session, scope=viewer.scope, finding_id=finding_id, file_id=file_id,
                                              data_dir=settings.data_dir)
    except NotFound:
        return _not_found(request, viewer)
    return uploads.evidence_response(path, filename=row.filename, content_type=row.content_type)


@router.post("/remediation/{finding_id}/exception")
def request_exception(request: Request, finding_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                      justification: str = Form(""), compensating_control: str = Form(""),
                      expires_in_days: str = Form("")) -> Response:
    def ask(write: Session) -> None:
        try:
            data = ExceptionRequestCreate(finding_id=finding_id, justification=justification,
                                          compensating_control=compensating_control,
                                          expires_in_days=int(expires_in_days or MAX_DAYS))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError; so is int("x")
            raise InvalidInput(f"check the justification (10+ characters), the control and 1–{MAX_DAYS} days: "
                               f"{exc.__class__.__name__}") from None
        exceptions.request(write, actor=viewer.actor, data=data, now=utcnow())
    return _change(request, viewer, db, session, finding_id, "exceptions", ask)


# ---- exceptions ----------------------------------------------------------------------------------

def _exceptions_page(request: Request, session: Session, viewer: Viewer, tab: str, *,
                     error: KhienError | None = None) -> Response:
    tab = tab if tab in EXCEPTION_TABS else "pending"
    now = utcnow()
    rows = [(r, r.status_at(now)) for r in exceptions.list_(session, scope=viewer.scope, now=now)]
    counts = {name: sum(1 for _, s in rows if s in wanted) for name, wanted in EXCEPTION_TAB_STATUSES.items()}
    shown = [(r, s) for r, s in rows if s in EXCEPTION_TAB_STATUSES[tab]]
    codes = units.codes_by_id(session)
    return render(request, "exceptions.html", {
        "viewer": viewer, "tab": tab, "rows": shown, "counts": counts, "codes": codes, "now": now,
        "can_decide": viewer.actor.can(Action.approve_exception), "max_days": MAX_DAYS,
        "error": _error_kind(error) if error else None, "detail": str(error) if error else None,
    }, status_code=error.status_code if error else 200)


@router.get("/exceptions")
def exceptions_page(request: Request, viewer: ViewerDep, session: SessionDep, tab: str = "pending") -> Response:
    """Requests awaiting a decision, exceptions in force, expired or revoked ones, and rejected requests."""
    return _exceptions_page(request, session, viewer, tab)


def _decide(request: Request, session: Session, viewer: Viewer, db, exception_id: int, verdict: str,
            comment: str, days: str) -> Response:
    try:
        try:
            wanted_days = int(days) if days.strip() else None
        except ValueError:
            raise InvalidInput("days must be a whole number") from None
        with db.transaction(actor=viewer.actor) as write:
            if verdict == "approve":
                exceptions.approve(write, actor=viewer.actor, exception_id=exception_id, comment=comment,
                                   days=wanted_days, now=utcnow())
            else:
                exceptions.reject(write, actor=viewer.actor, exception_id=exception_id, comment=comment, now=utcnow())
    except NotFound:
        return _not_found(request, viewer)
    except KhienError as exc:
        return _exceptions_page(request, session, viewer, "pending", error=exc)
    return RedirectResponse("/exceptions?tab=" + ("active" if verdict == "approve" else "rejected"), status_code=303)


@router.post("/exceptions/{exception_id}/approve")
def approve(request: Request, exception_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
            comment: str = Form(""), days: str = Form("")) -> Response:
    return _decide(request, session, viewer, db, exception_id, "approve", comment, days)


@router.post("/exceptions/{exception_id}/reject")
def reject(request: Request, exception_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
           comment: str = Form("")) -> Response:
    return _decide(request, session, viewer, db, exception_id, "reject", comment, "")
