"""Who may do what: the roles' permissions in one table, and the ``Actor`` every changing service takes.

Reads are scoped by unit (``Scope``); changes also need the role's permission for the action. The
service layer checks both, so the JSON API, the console and the ``khien`` commands enforce the same
rules. An actor also carries where the request came from, for the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from collector.errors import Forbidden
from collector.scope import Scope


class Action(StrEnum):
    triage_alerts = "triage_alerts"  # status, assignment, comments, bulk changes of alerts
    suppress_alerts = "suppress_alerts"  # snooze / dedup rules for a rule on a host or unit
    remediate = "remediate"  # remediation items: status, assignee, comments, evidence
    request_exception = "request_exception"  # ask for a risk acceptance of a finding
    approve_exception = "approve_exception"  # approve, reject or revoke risk acceptances
    submit_evidence = "submit_evidence"  # attestations and appeals of a unit
    record_incidents = "record_incidents"  # incidents and their report times
    review_evidence = "review_evidence"  # rate attestations
    govern_scores = "govern_scores"  # adjustments, appeal decisions, freezing, publication
    manage_users = "manage_users"  # users, roles, API tokens, units
    view_audit = "view_audit"  # read and export the audit log


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "admin": frozenset(Action),
    # Analysts triage and remediate across every unit; they do not approve what they asked for.
    "analyst": frozenset({Action.triage_alerts, Action.suppress_alerts, Action.remediate,
                          Action.request_exception, Action.review_evidence, Action.record_incidents}),
    # A unit officer works on their own unit subtree: remediation, evidence, exceptions asked, appeals.
    "unit_officer": frozenset({Action.remediate, Action.request_exception, Action.submit_evidence,
                               Action.record_incidents}),
    # Auditors read everything and change nothing; the audit log is theirs to read.
    "auditor": frozenset({Action.view_audit}),
}


def allowed(role: str, action: Action) -> bool:
    return action in ROLE_ACTIONS.get(role, frozenset())


def roles_with(action: Action) -> frozenset[str]:
    """The roles that may take ``action`` (for services that check a role name)."""
    return frozenset(role for role, actions in ROLE_ACTIONS.items() if action in actions)


@dataclass(frozen=True, slots=True)
class Actor:
    """A person (or their API token) acting: who, with which role, on which units, from where."""

    username: str
    role: str
    scope: Scope
    user_id: int | None = None
    source_ip: str | None = None
    via: str = "api"  # api | console | cli

    def can(self, action: Action) -> bool:
        return allowed(self.role, action)

    def require(self, action: Action, *, unit_id: int | None = None) -> None:
        """Forbidden unless the role has ``action`` and (for a unit's row) the unit is in scope.

        Out-of-scope rows should normally be looked up through the scope first (and then look like
        rows that do not exist); this is the second lock on the door.
        """
        if not self.can(action):
            raise Forbidden(f"the {self.role} role may not {action.value.replace('_', ' ')}")
        if unit_id is not None and not self.scope.allows(unit_id):
            raise Forbidden("that unit is outside your scope")


def system_actor(name: str = "system") -> Actor:
    """The server itself (scheduled jobs): every unit, every action; audited under its name."""
    return Actor(username=name, role="admin", scope=Scope.everything(), via="system")
