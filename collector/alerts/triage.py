"""The triage workflow: status changes with their times, assignment, comments and bulk changes.

Allowed moves (anything else is refused with Conflict and changes nothing):

    new          → acknowledged, in_progress, resolved, false_positive, duplicate
    acknowledged → in_progress, resolved, false_positive, duplicate
    in_progress  → acknowledged, resolved, false_positive, duplicate
    suppressed   → acknowledged, in_progress, resolved, false_positive, duplicate
    resolved / false_positive / duplicate → acknowledged  (reopening: a comment saying why is required)

``acknowledged_at`` is the first time an alert left `new` (or `suppressed`), ``closed_at`` the first
time it was closed; neither is cleared by a reopen, so A8 for a past day does not move afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from collector.access import Action, Actor, allowed
from collector.alerts import service
from collector.alerts.models import (
    CLOSED_STATUSES,
    MAX_COMMENT_CHARS,
    STATUSES,
    SUPPRESSED,
    Alert,
    AlertComment,
)
from collector.errors import Conflict, InvalidInput, NotFound
from collector.scope import Scope
from collector.types import utcnow
from collector.users import service as users

_WORK = ("acknowledged", "in_progress", *CLOSED_STATUSES)
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset(_WORK),
    "acknowledged": frozenset({"in_progress", *CLOSED_STATUSES}),
    "in_progress": frozenset({"acknowledged", *CLOSED_STATUSES}),
    SUPPRESSED: frozenset(_WORK),
    **{closed: frozenset({"acknowledged"}) for closed in CLOSED_STATUSES},
}
MAX_BULK = 500


def allowed_next(status: str) -> tuple[str, ...]:
    """The statuses an alert in ``status`` may move to, in workflow order (for buttons)."""
    nxt = TRANSITIONS.get(status, frozenset())
    return tuple(s for s in STATUSES if s in nxt)


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT_CHARS} characters")
    return text or None


def _check_move(alert: Alert, status: str, comment: str | None) -> None:
    if status not in STATUSES or status == SUPPRESSED:
        raise InvalidInput(f"status must be one of {', '.join(_WORK)}")
    if status not in TRANSITIONS.get(alert.status, frozenset()):
        raise Conflict(f"alert {alert.id} cannot go from {alert.status} to {status}")
    if alert.status in CLOSED_STATUSES and comment is None:
        raise InvalidInput("reopening a closed alert needs a comment saying why")


def _move(session: Session, alert: Alert, status: str, *, actor: Actor, now: datetime) -> None:
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = now, actor.username
    if status in CLOSED_STATUSES and alert.closed_at is None:
        alert.closed_at, alert.closed_by = now, actor.username
    alert.status = status
    alert.updated_at = now
    session.add(alert)


def _comment(session: Session, alert: Alert, body: str, *, actor: Actor, now: datetime) -> AlertComment:
    row = AlertComment(alert_id=alert.id, unit_id=alert.unit_id, author=actor.username, body=body, created_at=now)
    session.add(row)
    return row


def _editable(session: Session, *, actor: Actor, alert_id: int) -> Alert:
    """The alert if the actor sees it (else NotFound) and may triage it (else Forbidden)."""
    alert = service.get(session, scope=actor.scope, alert_id=alert_id)
    actor.require(Action.triage_alerts, unit_id=alert.unit_id)
    return alert


def set_status(session: Session, *, actor: Actor, alert_id: int, status: str, comment: str | None = None,
               now: datetime | None = None) -> Alert:
    """Move one alert along the workflow (optionally with a comment)."""
    now = now or utcnow()
    alert = _editable(session, actor=actor, alert_id=alert_id)
    body = _clean_comment(comment)
    _check_move(alert, status, body)
    _move(session, alert, status, actor=actor, now=now)
    if body:
        _comment(session, alert, body, actor=actor, now=now)
    session.flush()
    return alert


def _assignee(session: Session, *, username: str | None, unit_id: int) -> str | None:
    name = (username or "").strip()
    if not name:
        return None
    user = users.get_by_username(session, username=name)
    # Only someone who can act on the alert is worth assigning it to.
    if (user is None or not user.is_active or not allowed(user.role, Action.triage_alerts)
            or not users.scope_for(session, user=user).allows(unit_id)):
        raise InvalidInput(f"{name!r} is not an active user who can triage this alert")
    return user.username


def assign(session: Session, *, actor: Actor, alert_id: int, assignee: str | None,
           now: datetime | None = None) -> Alert:
    """Give the alert to a user who can triage it; an empty name takes it back."""
    now = now or utcnow()
    alert = _editable(session, actor=actor, alert_id=alert_id)
    alert.assignee = _assignee(session, username=assignee, unit_id=alert.unit_id)
    alert.updated_at = now
    session.add(alert)
    session.flush()
    return alert


def add_comment(session: Session, *, actor: Actor, alert_id: int, body: str,
                now: datetime | None = None) -> AlertComment:
    """A comment on the alert, by the actor (1–4000 characters)."""
    now = now or utcnow()
    alert = _editable(session, actor=actor, alert_id=alert_id)
    text = _clean_comment(body)
    if text is None:
        raise InvalidInput("a comment cannot be empty")
    row = _comment(session, alert, text, actor=actor, now=now)
    session.flush()
    return row


def list_comments(session: Session, *, scope: Scope, alert_id: int) -> list[AlertComment]:
    """The alert's comments, oldest first (NotFound outside the scope)."""
    alert = service.get(session, scope=scope, alert_id=alert_id)
    return list(session.exec(select(AlertComment).where(AlertComment.alert_id == alert.id)
                             .order_by(AlertComment.id)))


def bulk(session: Session, *, actor: Actor, alert_ids: Sequence[int], status: str | None = None,
         assignee: str | None = None, unassign: bool = False, comment: str | None = None,
         now: datetime | None = None) -> list[Alert]:
    """The same change on many alerts, all or nothing: one refused alert refuses the whole batch.

    Each alert is changed through the ORM, so each gets its own audit entry.
    """
    now = now or utcnow()
    ids = sorted(set(alert_ids))
    if not ids:
        raise InvalidInput("select at least one alert")
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} alerts at once")
    if (status is None) == (assignee is None and not unassign):
        raise InvalidInput("give either a status or an assignee")
    found = {a.id: a for a in session.exec(select(Alert).where(Alert.id.in_(ids), actor.scope.where(Alert.unit_id)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"alerts not found: {', '.join(map(str, missing[:20]))}")
    alerts = [found[i] for i in ids]
    for alert in alerts:
        actor.require(Action.triage_alerts, unit_id=alert.unit_id)
    body = _clean_comment(comment)
    if status is not None:
        refused = []
        for alert in alerts:
            try:
                _check_move(alert, status, body)
            except Conflict:
                refused.append(alert)
        if refused:
            raise Conflict(f"{len(refused)} of the selected alerts cannot go to {status}: "
                           + ", ".join(f"{a.id} ({a.status})" for a in refused[:20]))
        for alert in alerts:
            _move(session, alert, status, actor=actor, now=now)
    else:
        names = {alert.unit_id: _assignee(session, username=assignee, unit_id=alert.unit_id) for alert in alerts}
        for alert in alerts:
            alert.assignee, alert.updated_at = names[alert.unit_id], now
            session.add(alert)
    if body:
        for alert in alerts:
            _comment(session, alert, body, actor=actor, now=now)
    session.flush()
    return alerts
