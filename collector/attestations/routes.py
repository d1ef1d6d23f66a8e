"""People-facing attestations API: list/get in scope; submit, upload evidence, withdraw; review (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from collector import uploads
from collector.access import Action
from collector.attestations import evidence
from collector.attestations import service as attestations
from collector.attestations.models import (
    ITEMS_BY_ID,
    Attestation,
    AttestationCreate,
    AttestationDetail,
    AttestationPublic,
    EvidenceFilePublic,
    ReviewIn,
)
from collector.deps import CallerScope, CurrentActor, CurrentUser, DbDep, SessionDep, SettingsDep
from collector.errors import InvalidInput
from collector.types import utcnow
from collector.units import service as units

router = APIRouter(prefix="/api/v1/attestations", tags=["attestations"])


def _public(row: Attestation, codes: dict[int, str]) -> AttestationPublic:
    return AttestationPublic(**row.model_dump(), unit=codes.get(row.unit_id), indicator=ITEMS_BY_ID[row.item].indicator)


def _codes(session) -> dict[int, str]:
    return units.codes_by_id(session)


@router.get("")
def list_attestations(session: SessionDep, scope: CallerScope, unit: str | None = None, period: int | None = None,
                      item: str | None = None, status: str | None = None) -> dict:
    unit_id = units.get_by_code(session, code=unit).id if unit else None
    rows = attestations.list_(session, scope=scope, unit_id=unit_id, period=period, item=item, status=status)
    codes = _codes(session)
    return {"items": [_public(r, codes) for r in rows]}


@router.get("/{attestation_id}")
def get_attestation(attestation_id: int, session: SessionDep, scope: CallerScope) -> AttestationDetail:
    row = attestations.get(session, scope=scope, attestation_id=attestation_id)
    files = attestations.files(session, scope=scope, attestation_id=attestation_id)
    return AttestationDetail(**_public(row, _codes(session)).model_dump(),
                             files=[EvidenceFilePublic(**f.model_dump()) for f in files])


@router.post("", status_code=201)
def create_attestation(data: AttestationCreate, db: DbDep, user: CurrentUser,
                       actor: CurrentActor, scope: CallerScope) -> AttestationPublic:
    with db.transaction(actor=actor) as session:
        row = attestations.submit(session, scope=scope, user=user, unit_code=data.unit, item=data.item,
                                  period=data.period, note=data.note, now=utcnow())
        return _public(row, _codes(session))


@router.post("/{attestation_id}/files", status_code=201, openapi_extra=uploads.UPLOAD_SCHEMA)
async def upload_file(attestation_id: int, request: Request, db: DbDep, settings: SettingsDep, actor: CurrentActor,
                      scope: CallerScope) -> EvidenceFilePublic:
    """Upload one evidence file as multipart field ``file``; over the cap is refused before it is read."""
    cap = settings.evidence_max_bytes
    uploads.check_declared_size(request, max_bytes=cap)
    form = await uploads.read_form(request)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("file: a multipart file field named 'file' is required")

        def store() -> EvidenceFilePublic:
            # Checked and virus-scanned before the write transaction opens (the SQLite writer lock is held
            # only for the insert), then recorded in an audited transaction, like the console's upload.
            with db.session() as session:  # refused callers are turned away before their file is read
                row = attestations.get(session, scope=scope, attestation_id=attestation_id)
            actor.require(Action.submit_evidence, unit_id=row.unit_id)
            staged = evidence.stage(data_dir=settings.data_dir, max_bytes=cap, filename=upload.filename or "",
                                    stream=upload.file)
            with db.transaction(actor=actor) as session:
                row = attestations.attach_staged(session, attestation_id=attestation_id, staged=staged, user=actor,
                                                 scope=scope, now=utcnow())
                return EvidenceFilePublic(**row.model_dump())

        return await run_in_threadpool(store)
    finally:
        await form.close()


@router.get("/{attestation_id}/files/{file_id}", response_class=FileResponse, responses={200: {
    "description": "The file as uploaded, with the type detected from its content",
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def download_file(attestation_id: int, file_id: int, session: SessionDep, scope: CallerScope,
                  settings: SettingsDep) -> FileResponse:
    row, path = attestations.get_file(session, scope=scope, attestation_id=attestation_id, file_id=file_id,
                                      data_dir=settings.data_dir)
    # Evidence comes from other people: never let a browser guess a type or render it in our origin.
    return uploads.evidence_response(path, filename=row.filename, content_type=row.content_type)


@router.post("/{attestation_id}/review")
def review_attestation(attestation_id: int, data: ReviewIn, db: DbDep, user: CurrentUser,
                       actor: CurrentActor) -> AttestationPublic:
    with db.transaction(actor=actor) as session:
        row = attestations.review(session, attestation_id=attestation_id, rating=data.rating, comment=data.comment,
                                  reviewer=user.username, reviewer_role=user.role, now=utcnow())
        return _public(row, _codes(session))


@router.post("/{attestation_id}/withdraw")
def withdraw_attestation(attestation_id: int, db: DbDep, user: CurrentUser,
                         actor: CurrentActor, scope: CallerScope) -> AttestationPublic:
    with db.transaction(actor=actor) as session:
        row = attestations.withdraw(session, attestation_id=attestation_id, user=user, scope=scope, now=utcnow())
        return _public(row, _codes(session))
