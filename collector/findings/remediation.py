"""Remediation: people's work on a finding — status, assignee, comments and evidence files.

A finding is its own remediation item: owned by the finding's unit, due at the finding's SLA deadline.
People move it open → in progress → fixed pending verification (or risk accepted, once an exception
covers it); only the engine marks it *fixed*, when agent or scan data proves it gone, and that proof
is what the item page shows. Every change is made through the ORM in a session carrying the actor,
so the audit log records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from collector.access import Action, Actor
from collector.attestations.evidence import Staged, stored_file
from collector.errors import Conflict, InvalidInput, NotFound
from collector.exceptions.service import Coverage
from collector.findings.models import (
    MAX_COMMENT,
    REMEDIATION_STATUSES,
    Finding,
    RemediationComment,
    RemediationEvidence,
)
from collector.scope import Scope
from collector.users import service as users

MAX_FILES = 50
# Where people may move an item from each status. "risk_accepted" also needs an exception in force.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "fixed_pending_verification", "risk_accepted"}),
    "in_progress": frozenset({"open", "fixed_pending_verification", "risk_accepted"}),
    "fixed_pending_verification": frozenset({"open", "in_progress"}),  # the scan still sees it: back to work
    "risk_accepted": frozenset({"open", "in_progress"}),  # the exception lapsed or was revoked
}


@dataclass(frozen=True, slots=True)
class Change:
    """What to change on an item: ``None`` leaves a field as it is; an empty assignee unassigns."""

    status: str | None = None
    assignee: str | None = None


def scoped(session: Session, *, scope: Scope, finding_id: int) -> Finding:
    """The finding if it is in ``scope``; otherwise NotFound, exactly as for one that does not exist."""
    row = session.exec(select(Finding).where(Finding.id == finding_id, scope.where(Finding.unit_id))).first()
    if row is None:
        raise NotFound(f"no finding {finding_id}")
    return row


def _workable(session: Session, *, actor: Actor, finding_id: int) -> Finding:
    actor.require(Action.remediate)
    row = scoped(session, scope=actor.scope, finding_id=finding_id)
    actor.require(Action.remediate, unit_id=row.unit_id)
    return row


def update(session: Session, *, actor: Actor, finding_id: int, change: Change, now: datetime) -> Finding:
    """Move an item's status and/or (re)assign it; everything is checked before anything changes."""
    if change.status is None and change.assignee is None:
        raise InvalidInput("give a status, an assignee, or both")
    row = _workable(session, actor=actor, finding_id=finding_id)
    if row.status == "fixed":
        raise Conflict(f"finding {row.id} was proven fixed by {(row.fixed_proof or {}).get('by', 'a producer')}; "
                       "it reopens by itself if it comes back")
    new_status = row.remediation_status
    if change.status is not None and change.status != row.remediation_status:
        _check_transition(session, row=row, to=change.status, now=now)
        new_status = change.status
    new_assignee = row.assignee
    if change.assignee is not None:
        new_assignee = _assignee(session, row=row, username=change.assignee.strip())
    # Set together after every check: one audited change, and nothing half-applied on a refusal.
    row.remediation_status, row.assignee = new_status, new_assignee
    session.add(row)
    session.flush()
    return row


def _check_transition(session: Session, *, row: Finding, to: str, now: datetime) -> None:
    if to not in REMEDIATION_STATUSES:
        raise InvalidInput(f"unknown remediation status {to!r}; choose from {', '.join(REMEDIATION_STATUSES)} "
                           "(fixed is set by the engine when data proves it)")
    if to not in TRANSITIONS[row.remediation_status]:
        raise Conflict(f"a finding {row.remediation_status} cannot move to {to}")
    if to == "risk_accepted" and covering_exception(session, finding=row, now=now) is None:
        raise Conflict("no approved exception covers this finding: request one first")


def covering_exception(session: Session, *, finding: Finding, now: datetime):
    """The approved exception in force that covers this finding now, or None."""
    kind = "check" if finding.kind == "check" else "finding"
    return Coverage(session, target_kind=kind, at=now).covering(target=finding.rule, host_id=finding.host_id,
                                                                unit_id=finding.unit_id)


def _assignee(session: Session, *, row: Finding, username: str) -> str | None:
    """An active user who may remediate in the finding's unit; "" unassigns."""
    if not username:
        return None
    user = users.get_by_username(session, username=username)
    if user is None or not user.is_active:
        raise InvalidInput(f"no active user {username!r}")
    person = Actor(username=user.username, role=user.role, scope=users.scope_for(session, user=user))
    if not person.can(Action.remediate) or not person.scope.allows(row.unit_id):
        raise InvalidInput(f"{username} cannot work on this unit's remediation")
    return user.username


def add_comment(session: Session, *, actor: Actor, finding_id: int, body: str, now: datetime) -> RemediationComment:
    text = (body or "").strip()
    if not text:
        raise InvalidInput("a comment cannot be empty")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT} characters")
    row = _workable(session, actor=actor, finding_id=finding_id)
    comment = RemediationComment(finding_id=row.id, unit_id=row.unit_id, author=actor.username, body=text,
                                 created_at=now)
    session.add(comment)
    session.flush()
    return comment


def comments(session: Session, *, scope: Scope, finding_id: int) -> list[RemediationComment]:
    scoped(session, scope=scope, finding_id=finding_id)
    return list(session.exec(select(RemediationComment).where(RemediationComment.finding_id == finding_id)
                             .order_by(RemediationComment.id)))


def check_attachable(session: Session, *, actor: Actor, finding_id: int) -> Finding:
    """Whether ``actor`` may add evidence to this item: checked before the upload is read at all."""
    row = _workable(session, actor=actor, finding_id=finding_id)
    count = len(session.exec(select(RemediationEvidence.id).where(RemediationEvidence.finding_id == row.id)).all())
    if count >= MAX_FILES:
        raise Conflict(f"finding {row.id} already has {MAX_FILES} evidence files")
    return row


def attach_staged(session: Session, *, actor: Actor, finding_id: int, staged: Staged,
                  now: datetime) -> RemediationEvidence:
    """Record a file already checked by ``collector.attestations.evidence.stage`` (size cap, type by content)."""
    try:
        row = check_attachable(session, actor=actor, finding_id=finding_id)
        same = session.exec(select(RemediationEvidence).where(RemediationEvidence.finding_id == row.id,
                                                              RemediationEvidence.sha256 == staged.sha256)).first()
        if same is not None:  # the same bytes again: nothing new to record
            staged.discard()
            return same
    except BaseException:
        staged.discard()
        raise
    # Stored before the row: a row never points at a missing file; an orphan blob is harmless.
    stored_path = staged.store()
    file = RemediationEvidence(finding_id=row.id, unit_id=row.unit_id, filename=staged.filename,
                               content_type=staged.content_type, size=staged.size, sha256=staged.sha256,
                               stored_path=stored_path, uploaded_by=actor.username, uploaded_at=now)
    session.add(file)
    session.flush()
    return file


def evidence(session: Session, *, scope: Scope, finding_id: int) -> list[RemediationEvidence]:
    scoped(session, scope=scope, finding_id=finding_id)
    return list(session.exec(select(RemediationEvidence).where(RemediationEvidence.finding_id == finding_id)
                             .order_by(RemediationEvidence.id)))


def evidence_file(session: Session, *, scope: Scope, finding_id: int, file_id: int,
                  data_dir: Path) -> tuple[RemediationEvidence, Path]:
    """An evidence file's row and where its bytes are, for download (NotFound outside the scope)."""
    row = session.exec(select(RemediationEvidence).where(RemediationEvidence.id == file_id,
                                                         RemediationEvidence.finding_id == finding_id,
                                                         scope.where(RemediationEvidence.unit_id))).first()
    if row is None:
        raise NotFound(f"evidence file {file_id} not found")
    return row, stored_file(data_dir=data_dir, stored_path=row.stored_path, file_id=file_id)
