"""People-facing findings API: ``GET /api/v1/findings`` (filters, keyset pages) and ``/{id}`` with history;
remediation: ``POST /{id}/remediation`` (status, assignee), ``/{id}/comments``, ``/{id}/evidence``, and the
views ``GET /views/{overdue|due_soon|age|by_unit}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from sqlmodel import SQLModel

from collector import uploads
from collector.deps import CallerScope, CurrentActor, DbDep, SessionDep, SettingsDep
from collector.errors import InvalidInput
from collector.findings import remediation
from collector.findings import service as findings
from collector.findings import views as remediation_views
from collector.findings.models import KINDS, MAX_COMMENT, STATUSES, RemediationEvidencePublic
from collector.types import utcnow
from collector.units import service as units
from rules.sla import CLASSES

router = APIRouter(prefix="/api/v1/findings", tags=["findings"])


def _filters(session, *, unit: str | None, host_id: int | None, kind: str | None, finding_class: str | None,
             status: str | None, overdue: bool | None, rule: str | None) -> findings.FindingFilter:
    choices = ((kind, KINDS, "kind"), (finding_class, CLASSES, "class"), (status, STATUSES, "status"))
    for value, allowed, name in choices:
        if value is not None and value not in allowed:
            raise InvalidInput(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")
    unit_ids = None
    if unit is not None:
        unit_ids = units.subtree_ids(session, unit_id=units.get_by_code(session, code=unit).id)
    return findings.FindingFilter(unit_ids=unit_ids, host_id=host_id, kind=kind, finding_class=finding_class,
                                  status=status, overdue=overdue, rule=rule)


@router.get("")
def list_findings(session: SessionDep, scope: CallerScope, unit: str | None = None, host_id: int | None = None,
                  kind: str | None = None, finding_class: Annotated[str | None, Query(alias="class")] = None,
                  status: str | None = None, overdue: bool | None = None, rule: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100, before_id: int | None = None) -> dict:
    """Findings in the caller's units (a unit filter includes its sub-units), newest first.

    ``status=open`` includes reopened ones; ``accepted`` are open findings covered by an active exception.
    """
    filters = _filters(session, unit=unit, host_id=host_id, kind=kind, finding_class=finding_class, status=status,
                       overdue=overdue, rule=rule)
    now = utcnow()
    items = findings.list_(session, scope=scope, filters=filters, now=now, limit=limit, before_id=before_id)
    return {"items": items, "counts": findings.counts(session, scope=scope, filters=filters, now=now),
            "next_before_id": items[-1].id if len(items) == limit else None}


@router.get("/views/{view}")
def remediation_view(view: str, session: SessionDep, scope: CallerScope, unit: str | None = None,
                     finding_class: Annotated[str | None, Query(alias="class")] = None,
                     remediation_status: str | None = None, bucket: str | None = None, after: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    """Open findings overdue, due in the next 7 days, by age bucket (counts, and one bucket's items), or
    counts by unit — in the caller's units, keyset-paginated with ``after`` = the last ``next_cursor``."""
    if view not in remediation_views.VIEWS:
        raise InvalidInput(f"unknown view {view!r}; choose from {', '.join(remediation_views.VIEWS)}")
    if finding_class is not None and finding_class not in CLASSES:
        raise InvalidInput(f"unknown class {finding_class!r}; choose from {', '.join(CLASSES)}")
    unit_ids = None
    if unit is not None:
        unit_ids = units.subtree_ids(session, unit_id=units.get_visible(session, scope=scope, code=unit).id)
    filters = remediation_views.ViewFilter(unit_ids=unit_ids, finding_class=finding_class,
                                           remediation_status=remediation_status)
    now = utcnow()
    if view == "by_unit":
        return {"units": remediation_views.by_unit(session, scope=scope, filters=filters, now=now)}
    out: dict = {}
    if view == "age":
        out["buckets"] = remediation_views.age_counts(session, scope=scope, filters=filters, now=now)
    page = remediation_views.items(session, scope=scope, filters=filters, view=view, now=now, limit=limit,
                                   after=after, bucket=bucket)
    return out | {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/{finding_id}")
def get_finding(finding_id: int, session: SessionDep, scope: CallerScope) -> dict:
    finding, history = findings.get(session, scope=scope, finding_id=finding_id, now=utcnow())
    return {"finding": finding, "history": [h.model_dump() for h in history],
            "comments": [c.model_dump() for c in remediation.comments(session, scope=scope, finding_id=finding_id)],
            "evidence": [RemediationEvidencePublic(**e.model_dump())
                         for e in remediation.evidence(session, scope=scope, finding_id=finding_id)]}


class RemediationIn(SQLModel):
    status: str | None = None
    assignee: str | None = None  # "" unassigns


class CommentIn(SQLModel):
    body: str


@router.post("/{finding_id}/remediation")
def update_remediation(finding_id: int, data: RemediationIn, db: DbDep, actor: CurrentActor) -> dict:
    now = utcnow()
    with db.transaction(actor=actor) as session:
        remediation.update(session, actor=actor, finding_id=finding_id,
                           change=remediation.Change(status=data.status, assignee=data.assignee), now=now)
        finding, _ = findings.get(session, scope=actor.scope, finding_id=finding_id, now=now)
    return {"finding": finding}


@router.post("/{finding_id}/comments", status_code=201)
def add_comment(finding_id: int, data: CommentIn, db: DbDep, actor: CurrentActor) -> dict:
    if len(data.body) > MAX_COMMENT:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT} characters")
    with db.transaction(actor=actor) as session:
        row = remediation.add_comment(session, actor=actor, finding_id=finding_id, body=data.body, now=utcnow())
        return row.model_dump()


@router.post("/{finding_id}/evidence", status_code=201, openapi_extra=uploads.UPLOAD_SCHEMA)
async def upload_evidence(finding_id: int, request: Request, db: DbDep, settings: SettingsDep, session: SessionDep,
                          actor: CurrentActor) -> RemediationEvidencePublic:
    """Upload one evidence file as multipart field ``file``; refused before it is read if not allowed or too big."""
    remediation.check_attachable(session, actor=actor, finding_id=finding_id)
    uploads.check_declared_size(request, max_bytes=settings.evidence_max_bytes)
    form = await uploads.read_form(request)
    try:
        staged = await uploads.stage_from(form, data_dir=settings.data_dir, max_bytes=settings.evidence_max_bytes)
        with db.transaction(actor=actor) as write:
            row = remediation.attach_staged(write, actor=actor, finding_id=finding_id, staged=staged, now=utcnow())
            return RemediationEvidencePublic(**row.model_dump())
    finally:
        await form.close()


@router.get("/{finding_id}/evidence/{file_id}", response_class=FileResponse, responses={200: {
    "description": "The file as uploaded, with the type detected from its content",
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def download_evidence(finding_id: int, file_id: int, session: SessionDep, scope: CallerScope,
                      settings: SettingsDep) -> FileResponse:
    row, path = remediation.evidence_file(session, scope=scope, finding_id=finding_id, file_id=file_id,
                                          data_dir=settings.data_dir)
    return uploads.evidence_response(path, filename=row.filename, content_type=row.content_type)
