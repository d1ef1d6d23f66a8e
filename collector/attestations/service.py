"""Attestations: a unit submits an item for a year with evidence files; an administrator rates it.

Ratings expire with their period: ``values`` answers for one calendar year only. Re-submitting an
item after it was rated starts a new row, so the history of submissions and ratings is kept and
the latest rating counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlmodel import Session, select

from collector.access import Action, roles_with
from collector.attestations.evidence import Staged, stage, stored_file
from collector.attestations.models import (
    ITEM_IDS,
    MAX_TEXT,
    RATINGS,
    STATUSES,
    Attestation,
    EvidenceFile,
)
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.scope import Scope
from collector.units import service as units

SUBMITTER_ROLES = roles_with(Action.submit_evidence)
REVIEWER_ROLES = roles_with(Action.review_evidence)
MAX_FILES = 50
FIRST_PERIOD = 2015  # the Law on Network Information Security (86/2015) is the earliest basis


class Actor(Protocol):
    username: str
    role: str


@dataclass(frozen=True, slots=True)
class Operator:
    """Someone acting outside the HTTP API (the ``khien`` command): a name to record and a role."""

    username: str
    role: str = "admin"


def submit(session: Session, *, scope: Scope, user: Actor, unit_code: str, item: str, period: int,
           note: str | None, now: datetime) -> Attestation:
    """Open an attestation for a unit, item and year; refused while another one awaits review."""
    _require(user.role, SUBMITTER_ROLES, "only administrators and unit officers submit attestations")
    if item not in ITEM_IDS:
        raise InvalidInput(f"unknown item {item!r}; choose from {', '.join(ITEM_IDS)}")
    if not FIRST_PERIOD <= period <= now.year:
        raise InvalidInput(f"period must be a year from {FIRST_PERIOD} to {now.year}")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_TEXT:
        raise InvalidInput(f"note is longer than {MAX_TEXT} characters")
    unit = units.get_visible(session, scope=scope, code=unit_code)
    pending = session.exec(select(Attestation.id).where(
        Attestation.unit_id == unit.id, Attestation.item == item, Attestation.period == period,
        Attestation.status == "submitted")).first()
    if pending is not None:
        raise Conflict(f"attestation {pending} for {item} {period} is already awaiting review; "
                       "add files to it or withdraw it first")
    row = Attestation(unit_id=unit.id, item=item, period=period, note=note, status="submitted",
                      submitted_by=user.username, submitted_at=now)
    session.add(row)
    session.flush()
    return row


def attach(session: Session, *, data_dir: Path, max_bytes: int, attestation_id: int, filename: str,
           stream: BinaryIO, user: Actor, scope: Scope, now: datetime) -> EvidenceFile:
    """Check, scan and store one evidence file for an attestation awaiting review."""
    _attachable(session, attestation_id=attestation_id, user=user, scope=scope)
    staged = stage(data_dir=data_dir, max_bytes=max_bytes, filename=filename, stream=stream)
    return attach_staged(session, attestation_id=attestation_id, staged=staged, user=user, scope=scope, now=now)


def attach_staged(session: Session, *, attestation_id: int, staged: Staged, user: Actor, scope: Scope,
                  now: datetime) -> EvidenceFile:
    """Record a file already checked by ``evidence.stage`` (files checked before a transaction opens)."""
    try:
        row = _attachable(session, attestation_id=attestation_id, user=user, scope=scope)
        same = session.exec(select(EvidenceFile).where(EvidenceFile.attestation_id == row.id,
                                                       EvidenceFile.sha256 == staged.sha256)).first()
        if same is not None:  # the same bytes again: nothing new to record
            staged.discard()
            return same
        count = len(session.exec(select(EvidenceFile.id).where(EvidenceFile.attestation_id == row.id)).all())
        if count >= MAX_FILES:
            raise Conflict(f"attestation {row.id} already has {MAX_FILES} files")
    except BaseException:
        staged.discard()
        raise
    # Stored before the row is written: a row never points at a missing file. If the transaction then
    # fails, the stored file is an unreferenced blob, which is harmless and reused by the next upload.
    stored_path = staged.store()
    file = EvidenceFile(attestation_id=row.id, unit_id=row.unit_id, filename=staged.filename,
                        content_type=staged.content_type, size=staged.size, sha256=staged.sha256,
                        stored_path=stored_path, uploaded_by=user.username, uploaded_at=now)
    session.add(file)
    session.flush()
    return file


def _attachable(session: Session, *, attestation_id: int, user: Actor, scope: Scope) -> Attestation:
    _require(user.role, SUBMITTER_ROLES, "only administrators and unit officers add evidence")
    row = get(session, scope=scope, attestation_id=attestation_id)
    if row.status != "submitted":
        raise Conflict(f"attestation {row.id} is {row.status}; evidence is added before the review "
                       "(submit the item again for a new review)")
    return row


def review(session: Session, *, attestation_id: int, rating: str, comment: str | None, reviewer: str,
           reviewer_role: str, now: datetime) -> Attestation:
    """Rate an attestation Đạt / Đạt một phần / Chưa đạt (administrators; a comment unless Đạt)."""
    _require(reviewer_role, REVIEWER_ROLES, "only administrators and analysts review attestations")
    if rating not in RATINGS:
        raise InvalidInput(f"unknown rating {rating!r}; choose from {', '.join(RATINGS)}")
    comment = (comment or "").strip() or None
    if rating != "dat" and comment is None:
        raise InvalidInput("a rating other than dat needs a comment saying what is missing")
    if comment is not None and len(comment) > MAX_TEXT:
        raise InvalidInput(f"comment is longer than {MAX_TEXT} characters")
    row = get(session, scope=Scope.everything(), attestation_id=attestation_id)
    if row.status != "submitted":
        raise Conflict(f"attestation {row.id} is {row.status}, not awaiting review")
    if session.exec(select(EvidenceFile.id).where(EvidenceFile.attestation_id == row.id)).first() is None:
        raise InvalidInput(f"attestation {row.id} has no evidence file: nothing to review")
    row.status, row.rating, row.rating_value = "rated", rating, RATINGS[rating]
    row.review_comment, row.reviewed_by, row.reviewed_at = comment, reviewer, now
    session.add(row)
    session.flush()
    return row


def withdraw(session: Session, *, attestation_id: int, user: Actor, scope: Scope, now: datetime) -> Attestation:
    """Take back an attestation awaiting review; a rated one stays (it is what the score used)."""
    _require(user.role, SUBMITTER_ROLES, "only administrators and unit officers withdraw attestations")
    row = get(session, scope=scope, attestation_id=attestation_id)
    if row.status != "submitted":
        raise Conflict(f"attestation {row.id} is {row.status}; only one awaiting review can be withdrawn")
    row.status, row.withdrawn_by, row.withdrawn_at = "withdrawn", user.username, now
    session.add(row)
    session.flush()
    return row


def get(session: Session, *, scope: Scope, attestation_id: int) -> Attestation:
    row = session.exec(select(Attestation).where(Attestation.id == attestation_id,
                                                 scope.where(Attestation.unit_id))).first()
    if row is None:
        raise NotFound(f"attestation {attestation_id} not found")
    return row


def list_(session: Session, *, scope: Scope, unit_id: int | None = None, period: int | None = None,
          item: str | None = None, status: str | None = None, limit: int = 1000) -> list[Attestation]:
    """Attestations in the caller's units, newest first."""
    if item is not None and item not in ITEM_IDS:
        raise InvalidInput(f"unknown item {item!r}; choose from {', '.join(ITEM_IDS)}")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    query = select(Attestation).where(scope.where(Attestation.unit_id))
    if unit_id is not None:
        query = query.where(Attestation.unit_id == unit_id)
    if period is not None:
        query = query.where(Attestation.period == period)
    if item is not None:
        query = query.where(Attestation.item == item)
    if status is not None:
        query = query.where(Attestation.status == status)
    return list(session.exec(query.order_by(Attestation.id.desc()).limit(limit)))


def files(session: Session, *, scope: Scope, attestation_id: int) -> list[EvidenceFile]:
    """An attestation's evidence files (NotFound outside the caller's units)."""
    get(session, scope=scope, attestation_id=attestation_id)
    return list(session.exec(select(EvidenceFile).where(EvidenceFile.attestation_id == attestation_id)
                             .order_by(EvidenceFile.id)))


def get_file(session: Session, *, scope: Scope, attestation_id: int, file_id: int,
             data_dir: Path) -> tuple[EvidenceFile, Path]:
    """An evidence file's row and where its bytes are, for download."""
    row = session.exec(select(EvidenceFile).where(EvidenceFile.id == file_id,
                                                  EvidenceFile.attestation_id == attestation_id,
                                                  scope.where(EvidenceFile.unit_id))).first()
    if row is None:
        raise NotFound(f"evidence file {file_id} not found")
    return row, stored_file(data_dir=data_dir, stored_path=row.stored_path, file_id=file_id)


def values(session: Session, *, unit_ids: list[int] | set[int] | frozenset[int], period: int,
           reviewed_before: datetime | None = None) -> dict[int, dict[str, float]]:
    """The latest rated value of each item per unit for one year; an item not rated is absent.

    ``reviewed_before`` reads the ratings as they stood at that instant, so a month's score
    recomputed later from the stored history is the one that was frozen.
    """
    out: dict[int, dict[str, float]] = {unit_id: {} for unit_id in unit_ids}
    if not out:
        return out
    query = (select(Attestation.unit_id, Attestation.item, Attestation.rating_value)
             .where(Attestation.unit_id.in_(out), Attestation.period == period, Attestation.status == "rated"))
    if reviewed_before is not None:
        query = query.where(Attestation.reviewed_at < reviewed_before)
    rows = session.exec(query.order_by(Attestation.reviewed_at, Attestation.id)).all()
    for unit_id, item, value in rows:  # ascending: the latest rating overwrites earlier ones
        out[unit_id][item] = float(value)
    return out


def _require(role: str, allowed: frozenset[str], message: str) -> None:
    if role not in allowed:
        raise Forbidden(message)

