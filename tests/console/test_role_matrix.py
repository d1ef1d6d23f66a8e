"""The role matrix: every route of the application × anonymous, admin, analyst, unit officer, auditor.

- Every route is classified below; a route added without a row here fails the first test, so new
  endpoints cannot escape the matrix.
- Anonymous callers are refused everywhere but the public routes, and change nothing.
- Reads: every role reads every page and API read with its own unit's objects — 200 where the role may
  read, 403 where it may not (administration, the audit log); the D1 unit officer gets exactly the
  "does not exist" answer for D2's objects.
- Writes: a role without the route's action, or the D1 officer on D2's objects, never succeeds and
  changes nothing — the audit log, which records every change a person makes, stays as it was.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from starlette.routing import Mount

from collector.access import Action, allowed
from collector.audit.models import AuditEntry
from collector.exceptions import service as exceptions
from collector.exceptions.models import ExceptionRequestCreate
from collector.incidents import service as incidents
from collector.incidents.models import IncidentCreate
from collector.scope import Scope
from collector.types import utcnow
from collector.users import service as users
from tests.console import alerts_helpers as ah
from tests.console import helpers as h
from tests.console import remediation_helpers as rh
from tests.console import scores_helpers as sh

A = Action
PUBLIC = {
    ("GET", "/openapi.json"), ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/login"), ("POST", "/login"),
    ("GET", "/login/totp"), ("POST", "/login/totp"), ("GET", "/public/ranking"), ("GET", "/public/ranking/{year}"),
}
AGENT = {("POST", "/api/v1/agent/enroll"), ("GET", "/api/v1/agent/config"), ("POST", "/api/v1/agent/batches")}
# Anyone logged in, on their own account.
SELF = {("GET", "/"), ("POST", "/logout"), ("GET", "/account"), ("POST", "/account/language"),
        ("GET", "/account/totp"), ("POST", "/account/totp")}
ADMIN_READS = {"/admin/users", "/admin/users/{user_id}/tokens"}  # /scores/admin: all read, admins act
AUDIT_READS = {"/api/v1/audit", "/api/v1/audit/export", "/audit", "/audit.csv"}
# Reads whose object the seed does not hold (a file, a scan run, a snapshot month): 404 is their answer.
ABSENT = {"/api/v1/findings/{finding_id}/evidence/{file_id}", "/remediation/{finding_id}/evidence/{file_id}",
          "/api/v1/attestations/{attestation_id}/files/{file_id}", "/attestations/{attestation_id}/files/{file_id}",
          "/api/v1/scans/{run_id}", "/api/v1/scores/snapshots/{period}", "/api/v1/scores/ranking/{year}",
          "/ranking/{year}.csv", "/ranking/{year}.xlsx", "/reports/{unit}/{year}.pdf", "/reports/{unit}/{year}",
          "/api/v1/scores/adjustments/{year}", "/api/v1/scores/{unit}/explain", "/api/v1/scores"}
# Pages that send the viewer on (the dashboard to an officer's own unit, the unit picker to its choice).
REDIRECTS = {"/dashboard", "/dashboard/go"}
QUERY = {"/dashboard/go": "?unit={unit}"}
WRITES: dict[tuple[str, str], Action] = {
    ("POST", "/api/v1/alerts/suppressions"): A.suppress_alerts,
    ("POST", "/api/v1/alerts/suppressions/{suppression_id}/expire"): A.suppress_alerts,
    ("POST", "/api/v1/alerts/bulk"): A.triage_alerts,
    ("POST", "/api/v1/alerts/{alert_id}/status"): A.triage_alerts,
    ("POST", "/api/v1/alerts/{alert_id}/assign"): A.triage_alerts,
    ("POST", "/api/v1/alerts/{alert_id}/comments"): A.triage_alerts,
    ("POST", "/api/v1/exceptions/requests"): A.request_exception,
    ("POST", "/api/v1/exceptions/{exception_id}/approve"): A.approve_exception,
    ("POST", "/api/v1/exceptions/{exception_id}/reject"): A.approve_exception,
    ("POST", "/api/v1/exceptions"): A.approve_exception,
    ("POST", "/api/v1/exceptions/{exception_id}/renew"): A.approve_exception,
    ("POST", "/api/v1/exceptions/{exception_id}/revoke"): A.approve_exception,
    ("POST", "/api/v1/findings/{finding_id}/remediation"): A.remediate,
    ("POST", "/api/v1/findings/{finding_id}/comments"): A.remediate,
    ("POST", "/api/v1/findings/{finding_id}/evidence"): A.remediate,
    ("POST", "/api/v1/scores/adjustments"): A.govern_scores,
    ("POST", "/api/v1/scores/adjustments/{adjustment_id}/revoke"): A.govern_scores,
    ("POST", "/api/v1/scores/appeals"): A.submit_evidence,
    ("POST", "/api/v1/scores/appeals/{appeal_id}/decide"): A.govern_scores,
    ("POST", "/api/v1/scores/ranking/{year}/publish"): A.govern_scores,
    ("DELETE", "/api/v1/scores/ranking/{year}/publish"): A.govern_scores,
    ("POST", "/api/v1/incidents"): A.record_incidents,
    ("POST", "/api/v1/incidents/{incident_id}/reported"): A.record_incidents,
    ("POST", "/api/v1/attestations"): A.submit_evidence,
    ("POST", "/api/v1/attestations/{attestation_id}/files"): A.submit_evidence,
    ("POST", "/api/v1/attestations/{attestation_id}/review"): A.review_evidence,
    ("POST", "/api/v1/attestations/{attestation_id}/withdraw"): A.submit_evidence,
    ("POST", "/alerts/{alert_id}/status"): A.triage_alerts,
    ("POST", "/alerts/{alert_id}/assign"): A.triage_alerts,
    ("POST", "/alerts/{alert_id}/comments"): A.triage_alerts,
    ("POST", "/alerts/{alert_id}/suppress"): A.suppress_alerts,
    ("POST", "/alerts/{alert_id}/suppressions/{suppression_id}/expire"): A.suppress_alerts,
    ("POST", "/alerts/bulk"): A.triage_alerts,
    ("POST", "/remediation/{finding_id}/status"): A.remediate,
    ("POST", "/remediation/{finding_id}/comments"): A.remediate,
    ("POST", "/remediation/{finding_id}/evidence"): A.remediate,
    ("POST", "/remediation/{finding_id}/exception"): A.request_exception,
    ("POST", "/exceptions/{exception_id}/approve"): A.approve_exception,
    ("POST", "/exceptions/{exception_id}/reject"): A.approve_exception,
    ("POST", "/attestations"): A.submit_evidence,
    ("POST", "/attestations/{attestation_id}/files"): A.submit_evidence,
    ("POST", "/attestations/{attestation_id}/review"): A.review_evidence,
    ("POST", "/attestations/{attestation_id}/withdraw"): A.submit_evidence,
    ("POST", "/appeals"): A.submit_evidence,
    ("POST", "/appeals/{appeal_id}/decide"): A.govern_scores,
    ("POST", "/scores/admin/adjustments"): A.govern_scores,
    ("POST", "/scores/admin/adjustments/{adjustment_id}/revoke"): A.govern_scores,
    ("POST", "/scores/admin/publish"): A.govern_scores,
    ("POST", "/incidents"): A.record_incidents,
    ("POST", "/incidents/{incident_id}/reported"): A.record_incidents,
    ("POST", "/admin/users"): A.manage_users,
    ("POST", "/admin/users/{user_id}/deactivate"): A.manage_users,
    ("POST", "/admin/users/{user_id}/reactivate"): A.manage_users,
    ("POST", "/admin/users/{user_id}/password"): A.manage_users,
    ("POST", "/admin/users/{user_id}/unlock"): A.manage_users,
    ("POST", "/admin/users/{user_id}/totp-reset"): A.manage_users,
    ("POST", "/admin/users/{user_id}/tokens"): A.manage_users,
    ("POST", "/admin/users/{user_id}/tokens/{token_id}/revoke"): A.manage_users,
}
ROLES = {"admin": "admin", "analyst": "analyst1", "unit_officer": "officer1", "auditor": "auditor1"}
PARAM = re.compile(r"\{(\w+)\}")


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path template) of every route, through FastAPI's included routers."""
    found: set[tuple[str, str]] = set()

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.120)
                walk(route.original_router.routes, prefix + (getattr(route.include_context, "prefix", "") or ""))
            elif isinstance(route, Mount):
                continue  # /static
            else:
                for method in getattr(route, "methods", None) or ():
                    if method != "HEAD":
                        found.add((method, prefix + route.path))
    walk(app.routes, "")
    return found


def reads(app) -> list[str]:
    return sorted(p for m, p in app_routes(app) if m == "GET" and (m, p) not in PUBLIC | AGENT | SELF)


@pytest.fixture
def objects(db, world, settings) -> dict[str, dict[str, object]]:
    """One object of each kind in D1 and in D2, as path parameters."""
    ah.add_people(db)
    out = {}
    for unit, host in (("D1", world.web01), ("D2", world.db02)):
        officer = "officer1" if unit == "D1" else "officer2"
        finding = rh.add_finding(db, unit=unit, host_id=host)
        with db.transaction() as s:
            incident = incidents.record(s, scope=Scope.everything(), by="admin", by_role="admin", now=utcnow(),
                                        data=IncidentCreate(unit=unit, title="Sự cố", severity="normal",
                                                            detected_at=datetime(2026, 1, 5, tzinfo=UTC)))
            user_id = users.get_by_username(s, username=officer).id
        with db.transaction(actor=rh.actor(db, officer)) as s:
            exception = exceptions.request(s, actor=rh.actor(db, officer), now=utcnow(), data=ExceptionRequestCreate(
                finding_id=finding, justification="Chờ bản vá của hãng", compensating_control="Chặn cổng ở tường lửa",
                expires_in_days=30))
        out[unit] = {
            "host_id": host, "alert_id": ah.add_alert(db, host_id=host), "finding_id": finding,
            "attestation_id": sh.attestation(db, unit, data_dir=settings.data_dir), "incident_id": incident.id,
            "exception_id": exception.id, "user_id": user_id, "unit": unit, "unit_code": unit, "year": 2025,
            "period": "2025-01", "view": "overdue", "file_id": 999_999, "run_id": 999_999, "token_id": 999_999,
            "suppression_id": 999_999, "adjustment_id": 999_999, "appeal_id": 999_999}
    return out


def fill(path: str, values: dict[str, object]) -> str:
    return PARAM.sub(lambda m: str(values[m.group(1)]), path + QUERY.get(path, ""))


def audit_rows(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


def as_role(client, db, role: str) -> tuple[object, dict[str, str], str]:
    """The client logged in as the role's user, its API headers and a CSRF token for its forms."""
    client.cookies.clear()
    h.logged_in(client, ROLES[role])
    csrf = h.csrf_token(client.get("/hosts").text)
    with db.transaction() as s:
        token = users.create_api_token(s, username=ROLES[role], expires_in=None)
    return client, {"Authorization": f"Bearer {token}"}, csrf


def send(client, method: str, path: str, *, api: dict[str, str] | None = None, csrf: str | None = None):
    if path.startswith("/api/"):
        return client.request(method, path, headers=api or {}, json={}, follow_redirects=False)
    return client.request(method, path, data={"csrf_token": csrf} if csrf else {}, follow_redirects=False)


def test_every_route_is_in_the_matrix(client):
    unknown = {(m, p) for m, p in app_routes(client.app)
               if (m, p) not in PUBLIC | AGENT | SELF | set(WRITES) and m != "GET"}
    assert unknown == set(), "classify these routes in tests/console/test_role_matrix.py"
    assert {w for w in WRITES if w not in app_routes(client.app)} == set()  # no stale rows


def test_anonymous_callers_are_refused_everywhere_but_public_routes(client, db, objects):
    before = audit_rows(db)
    for method, path in sorted(app_routes(client.app) - PUBLIC - AGENT):
        answer = send(client, method, fill(path, objects["D1"]))
        if path.startswith("/api/"):
            assert answer.status_code == 401, (method, path, answer.status_code)
        else:
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), (method, path)
    assert audit_rows(db) == before


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_reads_what_it_may_and_nothing_else(client, db, objects, role):
    client, api, _csrf = as_role(client, db, role)
    for path in reads(client.app):
        answer = client.get(fill(path, objects["D1"]), headers=api, follow_redirects=False)
        if path in ADMIN_READS:
            expected = {200} if role == "admin" else {403}
        elif path in AUDIT_READS:
            expected = {200} if role in ("admin", "auditor") else {403}
        else:
            expected = {200, 404} if path in ABSENT else {200, 303} if path in REDIRECTS else {200}
        assert answer.status_code in expected, (role, path, answer.status_code)


def test_a_unit_officer_cannot_reach_another_units_objects(client, db, objects):
    client, api, csrf = as_role(client, db, "unit_officer")
    before = audit_rows(db)
    d2 = objects["D2"]
    for path in reads(client.app):
        names = set(PARAM.findall(path))
        if not names or path in ADMIN_READS | AUDIT_READS or names <= {"year", "view", "period"}:
            continue  # nothing of a unit's in the path
        answer = client.get(fill(path, d2), headers=api, follow_redirects=False)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "db02.d2.gov.vn" not in answer.text
    for (method, path), _action in sorted(WRITES.items()):
        if not set(PARAM.findall(path)) & {"alert_id", "finding_id", "attestation_id", "incident_id",
                                             "exception_id"}:
            continue
        answer = send(client, method, fill(path, d2), api=api, csrf=csrf)
        assert answer.status_code in (403, 404, 422), (method, path, answer.status_code)
    assert audit_rows(db) == before


@pytest.mark.parametrize("role", ["analyst", "unit_officer", "auditor"])
def test_a_role_without_the_action_changes_nothing(client, db, objects, role):
    client, api, csrf = as_role(client, db, role)
    before = audit_rows(db)
    refused = 0
    for (method, path), action in sorted(WRITES.items()):
        if allowed(role, action):
            continue
        answer = send(client, method, fill(path, objects["D1"]), api=api, csrf=csrf)
        assert answer.status_code in (403, 404, 422), (role, method, path, answer.status_code)
        refused += answer.status_code == 403
    assert audit_rows(db) == before, role
    assert refused > 0  # the refusals really came from the permission checks, not only from bad input
