"""Console: unit and province dashboards, the annual ranking, attestations (evidence), appeals,
score adjustments and publication, and incidents — pages over the scoring and attestation services.

Every read goes through the viewer's unit scope (a unit outside it answers 404, like one that does
not exist); every form is CSRF-checked, checks the viewer's permission for the action (and the unit)
before the service is called, writes in ``db.transaction(actor=viewer.actor)`` so the audit log has
it, and redirects (303) when it worked. A refused or invalid form changes nothing and says why.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.responses import Response

from collector import uploads
from collector.access import Action
from collector.attestations import evidence
from collector.attestations import service as attestations
from collector.attestations.models import ITEMS, ITEMS_BY_ID, RATINGS, STATUSES
from collector.db import Database
from collector.deps import DbDep, SessionDep, SettingsDep
from collector.errors import Conflict, Forbidden, InvalidInput, KhienError, NotFound, PayloadTooLarge
from collector.incidents import service as incidents
from collector.incidents.models import SEVERITIES, IncidentCreate
from collector.scope import Scope
from collector.scoring import explain as explaining
from collector.scoring import goals, ranking, review
from collector.scoring import service as scoring
from collector.scoring.activity import local_day
from collector.scoring.models import ScoreSnapshot
from collector.types import utcnow
from collector.units import service as units
from collector.units.models import Unit
from console import i18n
from console.charts import Bar, bar_chart, line_chart
from console.deps import CSRF_FIELD, CsrfCheckedViewer, CsrfRejected, Viewer, ViewerDep, tokens_match
from console.templating import render
from rules.scoring.model import INDICATORS, ScoringModel, builtin_model

router = APIRouter(include_in_schema=False)

TREND_DAYS = 180
SNAPSHOT_PERIODS = 3  # the latest frozen months shown (and open to appeal) on a unit's dashboard
OVERDUE_LISTED = 15
Text = Annotated[str, Form(max_length=8000)]


# ---- shared helpers -----------------------------------------------------------------------------------

def _yesterday() -> date:
    """The latest day whose values can be stored: the daily job stores yesterday (Asia/Ho_Chi_Minh)."""
    return local_day(utcnow()) - timedelta(days=1)


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)


def _refused(request: Request, viewer: Viewer, exc: KhienError, *, back: str) -> Response:
    """A refused or invalid form: what went wrong, the service's own words, and the way back."""
    return render(request, "dashboard_refused.html", {"viewer": viewer, "status": exc.status_code,
                                                      "detail": str(exc), "back": back},
                  status_code=exc.status_code)


def _attempt(request: Request, viewer: Viewer, back: str, change: Callable[[], str]) -> Response:
    """Run a form's change; its redirect target on success, else the refusal page (nothing changed)."""
    try:
        target = change()
    except NotFound:
        return _not_found(request, viewer)
    except (Forbidden, InvalidInput, Conflict) as exc:
        return _refused(request, viewer, exc, back=back)
    return RedirectResponse(target, status_code=303)


def _snapshot_years(session: Session, scope: Scope) -> list[int]:
    """Years with at least one frozen month for a unit in scope, newest first."""
    periods = session.scalars(select(ScoreSnapshot.period).where(scope.where(ScoreSnapshot.unit_id)).distinct())
    return sorted({int(p[:4]) for p in periods}, reverse=True)


def _scoped(report: ranking.Ranking, scope: Scope) -> ranking.Ranking:
    """The ranking limited to the units the viewer may see (ranks stay those of the whole group)."""
    if scope.all_units:
        return report
    groups = {g: [r for r in ranked if scope.allows(r.unit_id)] for g, ranked in report.groups.items()}
    return dataclasses.replace(report, groups={g: r for g, r in groups.items() if r},
                               rollups={u: r for u, r in report.rollups.items() if scope.allows(u)})


def _grouped(report: ranking.Ranking) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for rec in ranking.records(report):
        groups.setdefault(rec["group"], []).append(rec)
    return groups


def _parse_local_time(text: str, what: str) -> datetime | None:
    """A ``datetime-local`` form value, read on Vietnam's clock (the console shows every time in it)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what}: not a date and time ({text!r})") from None
    return value.replace(tzinfo=i18n.VIETNAM_TIME) if value.tzinfo is None else value


def _int_or_none(text: str | None, what: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, not {text!r}") from None


def _float_or_none(text: str | None, what: str) -> float | None:
    text = (text or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a number, not {text!r}") from None


# ---- dashboards -------------------------------------------------------------------------------------

@router.get("/dashboard")
def dashboard(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    """A unit officer goes straight to their unit; everyone else gets the province view and a picker."""
    if viewer.user.role == "unit_officer" and viewer.user.unit_id is not None:
        code = units.codes_by_id(session, ids={viewer.user.unit_id}).get(viewer.user.unit_id)
        if code is not None:
            return RedirectResponse(f"/dashboard/{quote(code, safe='')}", status_code=303)
    return province_dashboard(request, viewer, session)


@router.get("/dashboard/go")
def dashboard_go(request: Request, viewer: ViewerDep, session: SessionDep, unit: str = "") -> Response:
    """The province dashboard's unit picker (a plain GET form, no script) lands on that unit's page."""
    try:
        target = units.get_visible(session, scope=viewer.scope, code=unit)
    except NotFound:
        return _not_found(request, viewer)
    return RedirectResponse(f"/dashboard/{quote(target.code, safe='')}", status_code=303)


@router.get("/dashboard/province")
def province_dashboard(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    """Ranking per peer group (latest year with snapshots), grade distribution, the tree's roll-up, goals."""
    lang = i18n.language_of(request)
    model = builtin_model()
    report = None
    for year in _snapshot_years(session, Scope.everything())[:1]:
        report = _scoped(ranking.annual_cached(session, year=year, now=utcnow()), viewer.scope)
    groups = _grouped(report) if report else {}
    grades = Counter(rec["grade"] for recs in groups.values() for rec in recs)
    bars = [Bar(f"{band.grade} · {band.label[lang]}", grades.get(band.grade, 0), f"bar-{band.grade}")
            for band in model.bands]
    bars.append(Bar(model.not_enough_data_label[lang], grades.get(None, 0), "bar-none"))
    distribution = bar_chart(bars, title=i18n.translations(lang).gettext("Distribution of grades"))
    progress = goals.goal_progress(session, scope=viewer.scope, today=_yesterday())
    return render(request, "dashboard_province.html", {
        "viewer": viewer, "active": "dashboard", "report": report, "groups": groups, "model": model,
        "rollups": ranking.rollup_records(report) if report else [], "indicators": INDICATORS,
        "distribution": distribution, "bars": bars, "goals": progress["goals"],
        "units": units.list_(session, scope=viewer.scope), "can_govern": viewer.actor.can(Action.govern_scores)})


@router.get("/dashboard/{unit_code}")
def unit_dashboard(unit_code: str, request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    """One unit: grade and score with the trend, the evidence behind lost points, coverage, overdue
    findings, goals, and the frozen months it may still appeal."""
    try:
        unit = units.get_visible(session, scope=viewer.scope, code=unit_code)
    except NotFound:
        return _not_found(request, viewer)
    lang = i18n.language_of(request)
    model = builtin_model()
    day = _yesterday()
    history = scoring.history(session, scope=viewer.scope, unit_code=unit.code,
                              start=day - timedelta(days=TREND_DAYS - 1), end=day, model=model)
    stored = {d["day"]: d["score"] for d in history["days"]}
    series = [((day - timedelta(days=n)), stored.get((day - timedelta(days=n)).isoformat()))
              for n in range(TREND_DAYS - 1, -1, -1)]
    gettext = i18n.translations(lang).gettext
    trend = line_chart([(f"{d:%d/%m}", v) for d, v in series], title=gettext("Score over the last 180 days"),
                       empty_text=gettext("No daily score stored yet"))
    latest = history["days"][-1] if history["days"] else None
    latest_band = model.grade_for(latest["score"]) if latest else None
    why = explaining.explain_cached(session, scope=viewer.scope, unit_code=unit.code, day=day, model=model)
    overdue = why["indicators"]["A2"]["overdue_findings"]
    still_open = [f for f in overdue if f["fixed_at"] is None]
    return render(request, "dashboard_unit.html", {
        "viewer": viewer, "active": "dashboard", "unit": unit, "model": model, "day": day,
        "trend": trend, "recent": [(d, v) for d, v in series if v is not None][-14:], "latest": latest,
        "latest_band": latest_band, "explain": why, "indicators": INDICATORS,
        "coverage": why["indicators"]["A1"],
        "overdue_counts": sorted(Counter(f["class"] for f in still_open).items()),
        "overdue_listed": still_open[:OVERDUE_LISTED], "overdue_total": len(still_open),
        "failed_checks": why["indicators"]["A3"]["failed_checks"],
        "goals": goals.goal_progress(session, scope=viewer.scope, today=day, unit_code=unit.code)["goals"],
        "snapshots": _unit_snapshots(session, unit=unit, today=local_day(utcnow()), model=model),
        "can_appeal": viewer.actor.can(Action.submit_evidence),
        "is_root": unit.parent_id is None})


def _unit_snapshots(session: Session, *, unit: Unit, today: date, model: ScoringModel) -> list[dict[str, Any]]:
    """The unit's latest frozen months: each indicator's value (as corrected by accepted appeals) and
    whether the appeal window is still open."""
    periods = list(session.scalars(select(ScoreSnapshot.period).where(ScoreSnapshot.unit_id == unit.id)
                                   .distinct().order_by(ScoreSnapshot.period.desc()).limit(SNAPSHOT_PERIODS)))
    fixes = review.corrections(session, periods=periods)
    out = []
    for period in periods:
        rows = {r.indicator: r for r in scoring.snapshot_rows(session, period=period, unit_id=unit.id)}
        closes = review.appeal_deadline(session, period=period, unit_id=unit.id, model=model)
        values = {i: fixes.get((period, unit.id, i), rows[i].value if i in rows else None) for i in INDICATORS}
        out.append({"period": period, "as_of": next(iter(rows.values())).as_of if rows else None,
                    "values": values, "corrected": {i for i in INDICATORS if (period, unit.id, i) in fixes},
                    "closes": closes, "open": today <= closes})
    return out


# ---- ranking ----------------------------------------------------------------------------------------

@router.get("/ranking")
def ranking_page(request: Request, viewer: ViewerDep, session: SessionDep,
                 year: int | None = Query(None, ge=2000, le=2100)) -> Response:
    years = _snapshot_years(session, Scope.everything())
    chosen = year if year is not None else (years[0] if years else None)
    report = None
    if chosen in years:
        report = _scoped(ranking.annual_cached(session, year=chosen, now=utcnow()), viewer.scope)
    return render(request, "ranking.html", {
        "viewer": viewer, "active": "ranking", "years": years, "year": chosen, "report": report,
        "groups": _grouped(report) if report else {}, "rollups": ranking.rollup_records(report) if report else [],
        "indicators": INDICATORS, "published": set(review.published_years(session)),
        "visible": {u.code for u in units.list_(session, scope=viewer.scope)},
        "can_govern": viewer.actor.can(Action.govern_scores)})


def _export(session: Session, viewer: Viewer, year: int) -> ranking.Ranking | None:
    try:
        return _scoped(ranking.annual_cached(session, year=year, now=utcnow()), viewer.scope)
    except NotFound:
        return None


@router.get("/ranking/{year}.csv")
def ranking_csv(year: int, request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    report = _export(session, viewer, year)
    if report is None:
        return _not_found(request, viewer)
    return Response(ranking.to_csv(report).encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="xep-hang-attt-{year}.csv"', "Cache-Control": "no-store"})


@router.get("/ranking/{year}.xlsx")
def ranking_xlsx(year: int, request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    report = _export(session, viewer, year)
    if report is None:
        return _not_found(request, viewer)
    return Response(ranking.to_xlsx(report),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", headers={
                        "Content-Disposition": f'attachment; filename="xep-hang-attt-{year}.xlsx"',
                        "Cache-Control": "no-store"})


# ---- attestations (evidence) ------------------------------------------------------------------------

@router.get("/attestations")
def attestations_page(request: Request, viewer: ViewerDep, session: SessionDep, unit: str = "", item: str = "",
                      period: str = "", status: str = "") -> Response:
    """Attestations in scope, by item and period, with their rating status; the submit form for units."""
    try:
        unit_id = units.get_visible(session, scope=viewer.scope, code=unit).id if unit else None
        rows = attestations.list_(session, scope=viewer.scope, unit_id=unit_id, item=item or None,
                                  status=status or None, period=_int_or_none(period, "period"), limit=500)
    except (NotFound, InvalidInput):
        return _not_found(request, viewer)
    return render(request, "attestations.html", {
        "viewer": viewer, "active": "evidence", "rows": rows, "codes": units.codes_by_id(session),
        "items": ITEMS, "items_by_id": ITEMS_BY_ID, "statuses": STATUSES, "model": builtin_model(),
        "filters": {"unit": unit, "item": item, "period": period, "status": status},
        "units": units.list_(session, scope=viewer.scope), "this_year": local_day(utcnow()).year,
        "can_submit": viewer.actor.can(Action.submit_evidence)})


@router.post("/attestations")
def submit_attestation(request: Request, viewer: CsrfCheckedViewer, db: DbDep, unit: Text = "", item: Text = "",
                       period: Text = "", note: Text = "") -> Response:
    def change() -> str:
        with db.transaction(actor=viewer.actor) as session:
            target = units.get_visible(session, scope=viewer.scope, code=unit)
            viewer.actor.require(Action.submit_evidence, unit_id=target.id)
            row = attestations.submit(session, scope=viewer.scope, user=viewer.actor, unit_code=unit, item=item,
                                      period=_int_or_none(period, "period") or 0, note=note, now=utcnow())
            return f"/attestations/{row.id}"
    return _attempt(request, viewer, "/attestations", change)


def _attestation_view(request: Request, viewer: Viewer, session: Session, settings_cap: int, attestation_id: int,
                      *, error: str | None = None, detail: str | None = None, status_code: int = 200) -> Response:
    try:
        row = attestations.get(session, scope=viewer.scope, attestation_id=attestation_id)
    except NotFound:
        return _not_found(request, viewer)
    files = attestations.files(session, scope=viewer.scope, attestation_id=row.id)
    return render(request, "attestation.html", {
        "viewer": viewer, "active": "evidence", "row": row, "files": files, "item": ITEMS_BY_ID[row.item],
        "unit_code": units.codes_by_id(session, ids={row.unit_id}).get(row.unit_id), "model": builtin_model(),
        "ratings": RATINGS, "max_bytes": settings_cap, "allowed": evidence.ALLOWED, "error": error,
        "detail": detail, "can_submit": viewer.actor.can(Action.submit_evidence),
        "can_review": viewer.actor.can(Action.review_evidence)}, status_code=status_code)


@router.get("/attestations/{attestation_id}")
def attestation_page(attestation_id: int, request: Request, viewer: ViewerDep, session: SessionDep,
                     settings: SettingsDep) -> Response:
    return _attestation_view(request, viewer, session, settings.evidence_max_bytes, attestation_id)


@router.get("/attestations/{attestation_id}/files/{file_id}")
def download_evidence(attestation_id: int, file_id: int, request: Request, viewer: ViewerDep, session: SessionDep,
                      settings: SettingsDep) -> Response:
    try:
        row, path = attestations.get_file(session, scope=viewer.scope, attestation_id=attestation_id,
                                          file_id=file_id, data_dir=settings.data_dir)
    except NotFound:
        return _not_found(request, viewer)
    # Evidence comes from other people: never let a browser guess a type or render it in our origin.
    return uploads.evidence_response(path, filename=row.filename, content_type=row.content_type,
                                     headers={"Cache-Control": "no-store"})


@router.post("/attestations/{attestation_id}/files")
async def upload_evidence(attestation_id: int, request: Request, viewer: ViewerDep, db: DbDep,
                          settings: SettingsDep) -> Response:
    """One evidence file (multipart field ``file``). The size is checked from Content-Length before the
    body is read, then again while it is copied; the CSRF token is checked here, once the form is parsed
    with limits, instead of by CsrfCheckedViewer, which would parse an unbounded body first."""
    cap = settings.evidence_max_bytes

    def page(error: str, detail: str | None, status_code: int) -> Response:
        with db.session() as session:
            return _attestation_view(request, viewer, session, cap, attestation_id, error=error, detail=detail,
                                     status_code=status_code)

    try:
        uploads.check_declared_size(request, max_bytes=cap)
    except PayloadTooLarge:
        return await run_in_threadpool(page, "too_large", None, 413)
    except KhienError:  # no Content-Length: a chunked body has no bound
        return await run_in_threadpool(page, "length", None, 411)
    form = await uploads.read_form(request)
    try:
        if not tokens_match(form.get(CSRF_FIELD), viewer.csrf_token):
            raise CsrfRejected
        upload = form.get("file")
        return await run_in_threadpool(_store_evidence, request, viewer, db, settings.data_dir, cap,
                                       attestation_id, upload if isinstance(upload, UploadFile) else None, page)
    finally:
        await form.close()


def _store_evidence(request: Request, viewer: Viewer, db: Database, data_dir, cap: int, attestation_id: int,
                    upload: UploadFile | None, page: Callable[[str, str | None, int], Response]) -> Response:
    try:
        with db.session() as session:  # read first: the file is checked and scanned without the write lock
            row = attestations.get(session, scope=viewer.scope, attestation_id=attestation_id)
        viewer.actor.require(Action.submit_evidence, unit_id=row.unit_id)
        if upload is None or not upload.filename:
            return page("missing", None, 422)
        staged = evidence.stage(data_dir=data_dir, max_bytes=cap, filename=upload.filename, stream=upload.file)
        with db.transaction(actor=viewer.actor) as session:
            attestations.attach_staged(session, attestation_id=row.id, staged=staged, user=viewer.actor,
                                       scope=viewer.scope, now=utcnow())
    except NotFound:
        return _not_found(request, viewer)
    except Forbidden as exc:
        return _refused(request, viewer, exc, back=f"/attestations/{attestation_id}")
    except PayloadTooLarge as exc:
        return page("too_large", str(exc), 413)
    except evidence.RejectedFile as exc:
        return page("type", str(exc), 400)
    except evidence.ScannerUnavailable as exc:
        return page("scanner", str(exc), 503)
    except (InvalidInput, Conflict) as exc:
        return page("other", str(exc), exc.status_code)
    return RedirectResponse(f"/attestations/{attestation_id}", status_code=303)


@router.post("/attestations/{attestation_id}/review")
def review_attestation(attestation_id: int, request: Request, viewer: CsrfCheckedViewer, db: DbDep,
                       rating: Text = "", comment: Text = "") -> Response:
    def change() -> str:
        with db.transaction(actor=viewer.actor) as session:
            row = attestations.get(session, scope=viewer.scope, attestation_id=attestation_id)
            viewer.actor.require(Action.review_evidence, unit_id=row.unit_id)
            # attestations.review still takes a role, not the Actor (reported to the lead).
            attestations.review(session, attestation_id=row.id, rating=rating, comment=comment,
                                reviewer=viewer.actor.username, reviewer_role=viewer.actor.role, now=utcnow())
        return f"/attestations/{attestation_id}"
    return _attempt(request, viewer, f"/attestations/{attestation_id}", change)


@router.post("/attestations/{attestation_id}/withdraw")
def withdraw_attestation(attestation_id: int, request: Request, viewer: CsrfCheckedViewer, db: DbDep) -> Response:
    def change() -> str:
        with db.transaction(actor=viewer.actor) as session:
            row = attestations.get(session, scope=viewer.scope, attestation_id=attestation_id)
            viewer.actor.require(Action.submit_evidence, unit_id=row.unit_id)
            attestations.withdraw(session, attestation_id=row.id, user=viewer.actor, scope=viewer.scope, now=utcnow())
        return f"/attestations/{attestation_id}"
    return _attempt(request, viewer, f"/attestations/{attestation_id}", change)


# ---- appeals ----------------------------------------------------------------------------------------

@router.get("/appeals")
def appeals_page(request: Request, viewer: ViewerDep, session: SessionDep, period: str = "",
                 status: str = "") -> Response:
    rows = review.appeals(session, scope=viewer.scope, period=period or None, status=status or None)
    return render(request, "appeals.html", {
        "viewer": viewer, "active": "dashboard", "rows": list(reversed(rows)), "codes": units.codes_by_id(session),
        "model": builtin_model(), "filters": {"period": period, "status": status},
        "can_decide": viewer.actor.can(Action.govern_scores)})


@router.post("/appeals")
def file_appeal(request: Request, viewer: CsrfCheckedViewer, db: DbDep, unit: Text = "", period: Text = "",
                indicator: Text = "", reason: Text = "") -> Response:
    back = f"/dashboard/{unit}" if unit else "/appeals"
    try:
        with db.transaction(actor=viewer.actor) as session:
            target = units.get_visible(session, scope=viewer.scope, code=unit)
            viewer.actor.require(Action.submit_evidence, unit_id=target.id)
            scoring.snapshot_day(period)  # a malformed period is refused before anything is looked up
            try:
                closes = review.appeal_deadline(session, period=period, unit_id=target.id)
            except NotFound:  # the unit itself is visible: say plainly that the month is not frozen
                raise InvalidInput(f"{period} has no frozen snapshot for {target.code}: nothing to appeal") from None
            if local_day(utcnow()) > closes:
                return render(request, "appeal_closed.html", {
                    "viewer": viewer, "period": period, "closes": closes, "back": back,
                    "days": builtin_model().appeal_working_days}, status_code=422)
            review.file_appeal(session, scope=viewer.scope, unit_code=target.code, period=period,
                               indicator=indicator, reason=reason, by=viewer.actor.username,
                               by_role=viewer.actor.role, now=utcnow())
    except NotFound:
        return _not_found(request, viewer)
    except (Forbidden, InvalidInput, Conflict) as exc:
        return _refused(request, viewer, exc, back=back)
    return RedirectResponse("/appeals", status_code=303)


@router.post("/appeals/{appeal_id}/decide")
def decide_appeal(appeal_id: int, request: Request, viewer: CsrfCheckedViewer, db: DbDep, outcome: Text = "",
                  decision: Text = "", corrected_value: Text = "") -> Response:
    def change() -> str:
        viewer.actor.require(Action.govern_scores)
        if outcome not in ("accept", "reject"):
            raise InvalidInput("choose accept or reject")
        with db.transaction(actor=viewer.actor) as session:
            review.decide_appeal(session, appeal_id=appeal_id, accept=outcome == "accept", decision=decision,
                                 corrected_value=_float_or_none(corrected_value, "corrected value"),
                                 by=viewer.actor.username, by_role=viewer.actor.role, now=utcnow())
        return "/appeals"
    return _attempt(request, viewer, "/appeals", change)


# ---- adjustments and publication --------------------------------------------------------------------

@router.get("/scores/admin")
def scores_admin(request: Request, viewer: ViewerDep, session: SessionDep,
                 year: int | None = Query(None, ge=2015, le=2100)) -> Response:
    """A year's adjustments and whether its ranking is public; the forms for those who govern scores."""
    chosen = year or local_day(utcnow()).year
    return render(request, "scores_admin.html", {
        "viewer": viewer, "active": "ranking", "year": chosen, "model": builtin_model(),
        "rows": review.adjustments(session, scope=viewer.scope, year=chosen), "codes": units.codes_by_id(session),
        "units": units.list_(session, scope=viewer.scope), "published": chosen in review.published_years(session),
        "has_snapshots": chosen in _snapshot_years(session, Scope.everything()),
        "can_govern": viewer.actor.can(Action.govern_scores)})


@router.post("/scores/admin/adjustments")
def add_adjustment(request: Request, viewer: CsrfCheckedViewer, db: DbDep, unit: Text = "", year: Text = "",
                   kind: Text = "", points: Text = "", reason: Text = "") -> Response:
    def change() -> str:
        viewer.actor.require(Action.govern_scores)
        number = _int_or_none(year, "year") or 0
        with db.transaction(actor=viewer.actor) as session:
            review.add_adjustment(session, unit_code=unit, year=number, kind=kind, reason=reason,
                                  points=_float_or_none(points, "points"), by=viewer.actor.username,
                                  by_role=viewer.actor.role, now=utcnow())
        return f"/scores/admin?year={number}"
    return _attempt(request, viewer, "/scores/admin", change)


@router.post("/scores/admin/adjustments/{adjustment_id}/revoke")
def revoke_adjustment(adjustment_id: int, request: Request, viewer: CsrfCheckedViewer, db: DbDep,
                      year: Text = "") -> Response:
    def change() -> str:
        viewer.actor.require(Action.govern_scores)
        with db.transaction(actor=viewer.actor) as session:
            review.revoke_adjustment(session, adjustment_id=adjustment_id, by=viewer.actor.username,
                                     by_role=viewer.actor.role, now=utcnow())
        return f"/scores/admin?year={_int_or_none(year, 'year') or ''}"
    return _attempt(request, viewer, "/scores/admin", change)


@router.post("/scores/admin/publish")
def publish_ranking(request: Request, viewer: CsrfCheckedViewer, db: DbDep, year: Text = "",
                    publish: Text = "") -> Response:
    def change() -> str:
        viewer.actor.require(Action.govern_scores)
        number = _int_or_none(year, "year") or 0
        with db.transaction(actor=viewer.actor) as session:
            if publish == "yes":
                review.publish(session, year=number, by=viewer.actor.username, by_role=viewer.actor.role,
                               now=utcnow())
            else:
                review.unpublish(session, year=number, by_role=viewer.actor.role)
        return f"/scores/admin?year={number}"
    return _attempt(request, viewer, "/scores/admin", change)


# ---- incidents --------------------------------------------------------------------------------------

@router.get("/incidents")
def incidents_page(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    model = builtin_model()
    params = model.indicators["A8"].params
    now = utcnow()
    rows = list(reversed(incidents.list_(session, scope=viewer.scope)))
    return render(request, "incidents.html", {
        "viewer": viewer, "active": "dashboard", "codes": units.codes_by_id(session), "severities": SEVERITIES,
        "rows": [(row, incidents.on_time(row, at=now, initial_hours=params["initial_report_hours"],
                                         full_hours=params["full_report_hours"])) for row in rows],
        "units": units.list_(session, scope=viewer.scope), "hours": params,
        "can_record": viewer.actor.can(Action.record_incidents)})


@router.post("/incidents")
def record_incident(request: Request, viewer: CsrfCheckedViewer, db: DbDep, unit: Text = "", title: Text = "",
                    severity: Text = "", detected_at: Text = "", initial_report_at: Text = "",
                    full_report_at: Text = "", caused_by_overdue: Text = "", summary: Text = "") -> Response:
    def change() -> str:
        try:
            data = IncidentCreate(unit=unit, title=title.strip(), severity=severity, summary=summary.strip(),
                                  detected_at=_parse_local_time(detected_at, "detected at"),
                                  initial_report_at=_parse_local_time(initial_report_at, "initial notice"),
                                  full_report_at=_parse_local_time(full_report_at, "full report"),
                                  caused_by_overdue=caused_by_overdue == "yes")
        except ValidationError as exc:
            raise InvalidInput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        with db.transaction(actor=viewer.actor) as session:
            target = units.get_visible(session, scope=viewer.scope, code=unit)
            viewer.actor.require(Action.record_incidents, unit_id=target.id)
            incidents.record(session, scope=viewer.scope, data=data, by=viewer.actor.username,
                             by_role=viewer.actor.role, now=utcnow())
        return "/incidents"
    return _attempt(request, viewer, "/incidents", change)


@router.post("/incidents/{incident_id}/reported")
def incident_reported(incident_id: int, request: Request, viewer: CsrfCheckedViewer, db: DbDep, stage: Text = "",
                      at: Text = "") -> Response:
    def change() -> str:
        when = _parse_local_time(at, "reported at")
        if when is None:
            raise InvalidInput("reported at: give the date and time of the report")
        with db.transaction(actor=viewer.actor) as session:
            row = incidents.get(session, scope=viewer.scope, incident_id=incident_id)
            viewer.actor.require(Action.record_incidents, unit_id=row.unit_id)
            incidents.reported(session, scope=viewer.scope, incident_id=row.id, stage=stage, at=when,
                               by_role=viewer.actor.role, now=utcnow())
        return "/incidents"
    return _attempt(request, viewer, "/incidents", change)
