"""Exception requests: units and analysts ask, administrators approve or reject with a comment; only an
approved, unexpired exception forgives a finding — in the findings API and in the A2 score."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.exceptions import service as exceptions
from collector.exceptions.models import ExceptionRequestCreate, RiskException
from collector.findings import service as findings
from collector.findings.models import Finding
from collector.scope import Scope
from collector.scoring import service as scoring
from collector.types import utcnow
from tests.collector import helpers as h
from tests.collector.test_scoring import D, World, populate, t
from tests.console import remediation_helpers as rh

WHY = {"justification": "legacy payroll system until the migration", "compensating_control": "VLAN isolation"}


def add_people(db) -> None:
    for name, role, unit in (("boss", "admin", None), ("boss2", "admin", None), ("ana", "analyst", None),
                             ("off1", "unit_officer", "D1"), ("off2", "unit_officer", "D2"),
                             ("aud", "auditor", None)):
        h.add_user(db, name, role, unit)


@pytest.fixture
def people(db):
    h.seed_units(db)
    add_people(db)
    return db


def ask(db, who: str, now=None, **data) -> RiskException:
    actor = rh.actor(db, who)
    with db.transaction(actor=actor) as s:
        return exceptions.request(s, actor=actor, data=ExceptionRequestCreate(**(WHY | data)), now=now or utcnow())


def decide(db, who: str, exception_id: int, verdict: str, comment: str | None = None, now=None, **extra):
    actor = rh.actor(db, who)
    with db.transaction(actor=actor) as s:
        decision = exceptions.approve if verdict == "approve" else exceptions.reject
        return decision(s, actor=actor, exception_id=exception_id, comment=comment, now=now or utcnow(), **extra)


def status_of(db, finding_id: int) -> str:
    with db.session() as s:
        return findings.get(s, scope=Scope.everything(), finding_id=finding_id, now=utcnow())[0].status


def test_request_then_approve_forgives_the_finding(people):
    db = people
    host = rh.add_host(db, unit="D1", hostname="payroll")
    fid = rh.add_finding(db, unit="D1", host_id=host, rule="CVE-2026-4242", due_at=utcnow() - timedelta(days=1))
    row = ask(db, "off1", finding_id=fid, expires_in_days=30)
    assert (row.status, row.target, row.scope, row.host_id, row.requested_by) == \
        ("requested", "CVE-2026-4242", "host", host, "off1")
    assert status_of(db, fid) == "open"  # a request forgives nothing
    with pytest.raises(Conflict, match="already awaiting"):
        ask(db, "ana", finding_id=fid)
    with pytest.raises(Forbidden):
        decide(db, "ana", row.id, "approve")  # analysts ask, they do not approve
    with pytest.raises(InvalidInput):
        decide(db, "boss", row.id, "approve", days=31)  # never longer than asked
    now = utcnow()
    approved = decide(db, "boss", row.id, "approve", comment="ok until migration", now=now)
    assert approved.status_at(now) == "active" and approved.expires_at == now + timedelta(days=30)
    assert (approved.approved_by, approved.decided_by, approved.decision_comment) == ("boss", "boss",
                                                                                      "ok until migration")
    with db.session() as s:
        f = findings.get(s, scope=Scope.everything(), finding_id=fid, now=now)[0]
        assert (f.status, f.exception_id, f.overdue, f.remediation_status) == ("accepted", row.id, False,
                                                                             "risk_accepted")
        # after expiry it counts no more
        assert findings.get(s, scope=Scope.everything(), finding_id=fid,
                            now=now + timedelta(days=31))[0].status == "open"
    with pytest.raises(Conflict):
        decide(db, "boss", row.id, "reject", comment="too late")


def test_rejected_and_requested_never_forgive(people):
    db = people
    host = rh.add_host(db, unit="D1", hostname="payroll")
    fid = rh.add_finding(db, unit="D1", host_id=host, rule="CVE-2026-5151")
    row = ask(db, "off1", finding_id=fid)
    with pytest.raises(InvalidInput, match="needs a comment"):
        decide(db, "boss", row.id, "reject")
    rejected = decide(db, "boss", row.id, "reject", comment="patch exists: apply it")
    assert rejected.status_at(utcnow()) == "rejected" and rejected.expires_at == rejected.created_at
    ask(db, "off1", finding_id=fid)  # asking again is allowed once the last was decided
    assert status_of(db, fid) == "open"
    with db.session() as s:
        assert exceptions.Coverage(s, target_kind="finding", at=utcnow()).rows == []
        assert [r.status_at(utcnow()) for r in exceptions.list_(s, scope=Scope.everything(), now=utcnow())] == \
            ["requested", "rejected"]
    # renew and revoke are for approved exceptions only
    with pytest.raises(Conflict), db.transaction() as s:
        exceptions.renew(s, exception_id=row.id, approver="boss", approver_role="admin", days=10, now=utcnow())


def test_scope_ninety_day_cap_and_four_eyes(people):
    db = people
    d1 = rh.add_finding(db, unit="D1", rule="CVE-2026-6000")
    with pytest.raises(NotFound):
        ask(db, "off2", finding_id=d1)  # another unit's finding looks missing
    with pytest.raises(Forbidden):
        ask(db, "aud", finding_id=d1)  # auditors read only
    with pytest.raises(ValueError):  # pydantic: at most 90 days
        ExceptionRequestCreate(finding_id=d1, expires_in_days=91, **WHY)
    with pytest.raises(Forbidden):
        ask(db, "off1", target_kind="finding", target="CVE-2026-6000", scope="all")
    with pytest.raises(NotFound):
        ask(db, "off1", target_kind="finding", target="CVE-2026-6000", scope="unit", unit="D2")
    with pytest.raises(Conflict):
        ask(db, "off1", finding_id=rh.add_finding(db, unit="D1", fixed_by="agent"))
    mine = ask(db, "boss", target_kind="finding", target="CVE-2026-6000", scope="unit", unit="D1")
    with pytest.raises(Forbidden, match="another administrator"):
        decide(db, "boss", mine.id, "approve")
    approved = decide(db, "boss2", mine.id, "approve")
    assert approved.expires_at - approved.created_at == timedelta(days=90)
    assert status_of(db, d1) == "accepted"


def test_a2_counts_only_approved_exceptions(db):
    """The scoring world of test_scoring: its exception is swapped for a request, then approved."""
    world = populate(World(db))
    with db.transaction() as s:
        for row in s.exec(select(RiskException)).all():
            s.delete(row)
    add_people(db)
    with db.session() as s:
        fid = s.exec(select(Finding.id).where(Finding.rule == "CVE-2026-11111")).one()

    def a2():
        with db.session() as s:
            return scoring.compute(s, day=D)[world.d1].measures["A2"]

    row = ask(db, "off1", finding_id=fid, now=t(1))
    assert a2().value == pytest.approx(a2().value_without_exceptions)  # requested: not counted
    decide(db, "boss", row.id, "reject", comment="no", now=t(2))
    assert a2().value == pytest.approx(6.25)  # rejected: not counted
    row = ask(db, "off1", finding_id=fid, now=t(2))
    decide(db, "boss", row.id, "approve", now=t(3))
    assert a2().value == pytest.approx(68.75)  # approved and in force on D: forgiven, as in test_scoring


def test_http_request_approve_reject(client, db):
    add_people(db)
    tokens = {name: h.api_token(db, name) for name in ("boss", "ana", "off1", "off2", "aud")}

    def post(who: str, url: str, body: dict):
        return client.post(url, json=body, headers={"Authorization": f"Bearer {tokens[who]}"})

    fid = rh.add_finding(db, unit="D1", rule="CVE-2026-8080")
    assert post("aud", "/api/v1/exceptions/requests", WHY | {"finding_id": fid}).status_code == 403
    assert post("off2", "/api/v1/exceptions/requests", WHY | {"finding_id": fid}).status_code == 404
    assert post("off1", "/api/v1/exceptions/requests", WHY | {"finding_id": fid, "expires_in_days": 120}).status_code \
        == 422
    resp = post("off1", "/api/v1/exceptions/requests", WHY | {"finding_id": fid, "expires_in_days": 14})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["status"], body["requested_days"], body["approved_by"]) == ("requested", 14, "")
    assert post("ana", f"/api/v1/exceptions/{body['id']}/approve", {}).status_code == 403
    assert post("boss", f"/api/v1/exceptions/{body['id']}/reject", {}).status_code == 422  # no comment
    approved = post("boss", f"/api/v1/exceptions/{body['id']}/approve", {"comment": "until the patch"})
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    assert post("boss", f"/api/v1/exceptions/{body['id']}/reject", {"comment": "x"}).status_code == 409
    listed = client.get("/api/v1/exceptions", headers={"Authorization": f"Bearer {tokens['off2']}"}).json()
    assert listed["items"] == []  # D1's exception is not D2's to see
    second = post("ana", "/api/v1/exceptions/requests",
                  WHY | {"target_kind": "check", "target": "no-such-check", "scope": "unit", "unit": "D1"})
    assert second.status_code == 422
