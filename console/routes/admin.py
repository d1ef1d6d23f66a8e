"""Console: users and their API tokens (administrators), and the audit log (administrators, auditors).

Every permission is checked by the services (collector.users, collector.audit); these routes only turn
a refusal into a page: Forbidden → 403, an unknown or out-of-scope row → 404, bad input → the form
again with the reason, nothing changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from collector.access import Action
from collector.audit import service as audit
from collector.audit.models import AuditEntry
from collector.deps import DbDep, SessionDep
from collector.errors import Conflict, Forbidden, InvalidInput, KhienError, NotFound
from collector.types import utcnow
from collector.units import service as units
from collector.users import service as users
from console import i18n
from console.deps import CsrfCheckedViewer, Viewer, ViewerDep
from console.templating import render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=4096)]
AUDIT_PAGE = 100
# Token lifetimes offered in the console (days); a token that never expires is a command-line choice.
TOKEN_DAYS = (7, 30, 90, 365)
DEFAULT_TOKEN_DAYS = 90
# The outcome shown after a redirect (?done=…): a fixed set, so the query string cannot inject text.
DONE = frozenset({"created", "deactivated", "reactivated", "password", "unlocked", "totp_reset", "revoked"})


def _refused(request: Request, viewer: Viewer, exc: KhienError) -> Response:
    """A refusal as a page: 403 for a role without the right, 404 for what is unknown or out of scope."""
    if isinstance(exc, Forbidden):
        return render(request, "admin_forbidden.html", {"viewer": viewer}, status_code=403)
    return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)


def _reason(exc: KhienError) -> str:
    """Which of the page's translated explanations fits a service's refusal."""
    text = str(exc)
    for prefix, code in (("invalid username", "username"), ("unknown role", "role"), ("password too short",
                         "password"), ("a unit_officer needs", "unit_needed"), ("user already exists", "exists"),
                         ("unknown unit", "unit"), ("you cannot deactivate", "self"),
                         ("the account is deactivated", "inactive"), ("the expiry", "expiry")):
        if text.startswith(prefix):
            return code
    return "other"


# --- users -----------------------------------------------------------------------------------------

@router.get("/admin/users")
def users_page(request: Request, viewer: ViewerDep, session: SessionDep, done: str | None = None) -> Response:
    try:
        return _users_page(request, viewer, session, done=done if done in DONE else None)
    except (Forbidden, NotFound) as exc:
        return _refused(request, viewer, exc)


def _users_page(request: Request, viewer: Viewer, session: SessionDep, *, done: str | None = None,
                error: str | None = None, form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    rows = users.list_users(session, actor=viewer.actor)
    now = utcnow()
    return render(request, "admin_users.html", {
        "viewer": viewer, "active": "users", "rows": rows, "now": now, "done": done, "error": error,
        "form": form or {}, "units": units.list_(session, scope=viewer.scope), "roles": list(users.Role),
        "min_password": users.MIN_PASSWORD_LENGTH}, status_code=status_code)


@router.post("/admin/users")
def create_user(request: Request, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                username: FormText = "", password: FormText = "", role: FormText = "",
                unit: FormText = "") -> Response:
    try:
        with db.transaction(actor=viewer.actor) as writing:
            users.add_user(writing, actor=viewer.actor, username=username.strip(), password=password, role=role,
                           unit_code=unit or None)
    except Forbidden as exc:
        return _refused(request, viewer, exc)
    except (InvalidInput, Conflict, NotFound) as exc:
        return _users_page(request, viewer, session, error=_reason(exc), status_code=exc.status_code,
                           form={"username": username, "role": role, "unit": unit})
    return RedirectResponse("/admin/users?done=created", status_code=303)


def _change(request: Request, viewer: Viewer, db: DbDep, session: SessionDep, done: str, change) -> Response:
    """Run one change to a user as the viewer; back to the list with the outcome, or the reason it was refused."""
    try:
        with db.transaction(actor=viewer.actor) as writing:
            change(writing)
    except (Forbidden, NotFound) as exc:
        return _refused(request, viewer, exc)
    except (InvalidInput, Conflict) as exc:
        return _users_page(request, viewer, session, error=_reason(exc), status_code=exc.status_code)
    return RedirectResponse(f"/admin/users?done={done}", status_code=303)


@router.post("/admin/users/{user_id}/deactivate")
def deactivate(request: Request, user_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep) -> Response:
    return _change(request, viewer, db, session, "deactivated",
                   lambda s: users.set_active(s, actor=viewer.actor, user_id=user_id, active=False))


@router.post("/admin/users/{user_id}/reactivate")
def reactivate(request: Request, user_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep) -> Response:
    return _change(request, viewer, db, session, "reactivated",
                   lambda s: users.set_active(s, actor=viewer.actor, user_id=user_id, active=True))


@router.post("/admin/users/{user_id}/password")
def new_password(request: Request, user_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                 password: FormText = "") -> Response:
    return _change(request, viewer, db, session, "password",
                   lambda s: users.reset_password(s, actor=viewer.actor, user_id=user_id, password=password))


@router.post("/admin/users/{user_id}/unlock")
def unlock(request: Request, user_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep) -> Response:
    return _change(request, viewer, db, session, "unlocked",
                   lambda s: users.unlock(s, actor=viewer.actor, user_id=user_id))


@router.post("/admin/users/{user_id}/totp-reset")
def totp_reset(request: Request, user_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep) -> Response:
    return _change(request, viewer, db, session, "totp_reset",
                   lambda s: users.reset_totp(s, actor=viewer.actor, user_id=user_id))


# --- API tokens ------------------------------------------------------------------------------------

@router.get("/admin/users/{user_id}/tokens")
def tokens_page(request: Request, user_id: int, viewer: ViewerDep, session: SessionDep,
                done: str | None = None) -> Response:
    try:
        return _tokens_page(request, viewer, session, user_id, done=done if done in DONE else None)
    except (Forbidden, NotFound) as exc:
        return _refused(request, viewer, exc)


def _tokens_page(request: Request, viewer: Viewer, session: SessionDep, user_id: int, *, done: str | None = None,
                 new_token: str | None = None, error: str | None = None, status_code: int = 200) -> Response:
    user = users.get_user(session, actor=viewer.actor, user_id=user_id)
    tokens = users.list_api_tokens(session, actor=viewer.actor, user_id=user_id)
    return render(request, "admin_tokens.html", {
        "viewer": viewer, "active": "users", "user": user, "tokens": tokens, "now": utcnow(), "done": done,
        "new_token": new_token, "error": error, "token_days": TOKEN_DAYS, "default_days": DEFAULT_TOKEN_DAYS},
        status_code=status_code)


@router.post("/admin/users/{user_id}/tokens")
def create_token(request: Request, user_id: int, viewer: CsrfCheckedViewer, db: DbDep, session: SessionDep,
                 days: FormText = "") -> Response:
    """Issue a token and show it on this one answer only (not a redirect: it is never stored to show later)."""
    try:
        lifetime = int(days)
        if lifetime not in TOKEN_DAYS:
            raise ValueError(days)
    except ValueError:
        try:
            return _tokens_page(request, viewer, session, user_id, error="expiry", status_code=422)
        except (Forbidden, NotFound) as exc:
            return _refused(request, viewer, exc)
    try:
        with db.transaction(actor=viewer.actor) as writing:
            token = users.issue_api_token(writing, actor=viewer.actor, user_id=user_id,
                                          expires_in=timedelta(days=lifetime))
        return _tokens_page(request, viewer, session, user_id, new_token=token)
    except (Forbidden, NotFound) as exc:
        return _refused(request, viewer, exc)
    except (InvalidInput, Conflict) as exc:
        return _tokens_page(request, viewer, session, user_id, error=_reason(exc), status_code=exc.status_code)


@router.post("/admin/users/{user_id}/tokens/{token_id}/revoke")
def revoke_token(request: Request, user_id: int, token_id: int, viewer: CsrfCheckedViewer, db: DbDep) -> Response:
    try:
        with db.transaction(actor=viewer.actor) as writing:
            users.revoke_api_token(writing, actor=viewer.actor, user_id=user_id, token_id=token_id)
    except (Forbidden, NotFound) as exc:
        return _refused(request, viewer, exc)
    return RedirectResponse(f"/admin/users/{user_id}/tokens?done=revoked", status_code=303)


# --- the audit log ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditFilters:
    """The page's filters as typed (shown back in the form) and as the service wants them."""

    who: str = ""
    action: str = ""
    table: str = ""
    unit: str = ""
    since: str = ""
    until: str = ""

    def query(self, **extra: Any) -> str:
        pairs = [(k, v) for k, v in (("who", self.who), ("action", self.action), ("table", self.table),
                                     ("unit", self.unit), ("since", self.since), ("until", self.until)) if v]
        return urlencode(pairs + [(k, v) for k, v in extra.items() if v is not None])


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old: str | None
    new: str | None


def _vietnam_day_start(text: str, *, days_after: int = 0) -> datetime | None:
    """A YYYY-MM-DD date typed in the form as the start of that day on Vietnam's clock (UTC-aware)."""
    if not text:
        return None
    day = date.fromisoformat(text) + timedelta(days=days_after)  # ValueError on anything else
    return datetime.combine(day, time(0), tzinfo=i18n.VIETNAM_TIME)


def _service_filters(session: SessionDep, viewer: Viewer, filters: AuditFilters) -> dict[str, Any]:
    """The service's keyword filters; InvalidInput for a date that is not a date, NotFound for a unit."""
    try:
        since = _vietnam_day_start(filters.since)
        until = _vietnam_day_start(filters.until, days_after=1)  # the "until" day is included
    except ValueError:
        raise InvalidInput("dates are YYYY-MM-DD") from None
    unit_id = units.get_visible(session, scope=viewer.scope, code=filters.unit).id if filters.unit else None
    return {"who": filters.who or None, "action": filters.action or None, "target_type": filters.table or None,
            "unit_id": unit_id, "since": since, "until": until}


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes_of(entry: AuditEntry) -> list[Change]:
    """before/after as one line per field: old → new (escaped by the template like everything else)."""
    before, after = entry.before or {}, entry.after or {}
    return [Change(key, _shown(before.get(key)), _shown(after.get(key))) for key in sorted({*before, *after})]


@router.get("/audit")
def audit_page(request: Request, viewer: ViewerDep, session: SessionDep, who: str = "", action: str = "",
               table: str = "", unit: str = "", since: str = "", until: str = "",
               before_id: int | None = None) -> Response:
    """Newest first, a page at a time ("older" continues below the last id shown)."""
    filters = AuditFilters(who=who.strip(), action=action.strip(), table=table.strip(), unit=unit.strip(),
                           since=since.strip(), until=until.strip())
    context: dict[str, Any] = {"viewer": viewer, "active": "audit", "filters": filters, "entries": [],
                               "older": None, "error": None}
    try:
        viewer.actor.require(Action.view_audit)
        context["units"] = units.list_(session, scope=viewer.scope)
        rows = audit.list_(session, actor=viewer.actor, limit=AUDIT_PAGE, before_id=before_id,
                           **_service_filters(session, viewer, filters))
    except Forbidden as exc:
        return _refused(request, viewer, exc)
    except (InvalidInput, NotFound) as exc:
        context["error"] = "unit" if isinstance(exc, NotFound) else "dates"
        return render(request, "audit.html", context, status_code=422)
    codes = {u.id: u.code for u in context["units"]}
    context["entries"] = [(e, codes.get(e.unit_id) if e.unit_id is not None else None, changes_of(e)) for e in rows]
    if len(rows) == AUDIT_PAGE:
        context["older"] = f"/audit?{filters.query(before_id=rows[-1].id)}"
    context["csv"] = f"/audit.csv?{filters.query()}"
    return render(request, "audit.html", context)


@router.get("/audit.csv")
def audit_csv(request: Request, viewer: ViewerDep, session: SessionDep, db: DbDep, who: str = "", action: str = "",
              table: str = "", unit: str = "", since: str = "", until: str = "") -> Response:
    """The filtered log as CSV (the export is itself logged); khien-audit-YYYYMMDD.csv, Vietnam's date."""
    filters = AuditFilters(who=who.strip(), action=action.strip(), table=table.strip(), unit=unit.strip(),
                           since=since.strip(), until=until.strip())
    try:
        viewer.actor.require(Action.view_audit)  # before the filters: a refusal must not depend on them
        wanted = _service_filters(session, viewer, filters)
        rows = audit.list_(session, actor=viewer.actor, limit=audit.EXPORT_LIMIT, **wanted)
        with db.transaction() as writing:
            audit.log(writing, actor=viewer.actor, action="export", target_type="audit_log", after={
                "rows": len(rows), "filters": {k: v for k, v in (
                    ("who", filters.who), ("action", filters.action), ("table", filters.table),
                    ("unit", filters.unit), ("since", filters.since), ("until", filters.until)) if v}})
    except Forbidden as exc:
        return _refused(request, viewer, exc)
    except (InvalidInput, NotFound):
        return RedirectResponse(f"/audit?{filters.query()}", status_code=303)
    today = i18n.to_vietnam_time(utcnow()).strftime("%Y%m%d")
    return Response(audit.to_csv(rows), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="khien-audit-{today}.csv"', "Cache-Control": "no-store"})
