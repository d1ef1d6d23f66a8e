"""Check results from facts snapshots, with history, levels, and exceptions applied when read."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from collector import pipeline
from collector.agents.models import Agent
from collector.compliance import service as compliance
from collector.compliance.models import CheckResultRow
from collector.errors import Conflict, Forbidden, InvalidInput
from collector.exceptions import service as exceptions
from collector.exceptions.models import RiskExceptionCreate
from collector.hosts import service as hosts
from collector.ingest.schema import parse_batch
from collector.scope import Scope
from collector.types import utcnow
from rules.checks import evaluate_host
from tests.collector import helpers as h

ROOT_LOGIN = "ssh_lnx_root_login_disabled"
OS = {"platform": "linux", "id": "debian", "id_like": None, "name": "Debian GNU/Linux", "version_id": "12"}


@pytest.fixture
def agent(client, db, enrolled) -> Agent:
    with db.session() as s:
        return s.get(Agent, enrolled["agent_id"])


def snapshot(permit_root: str, at) -> dict:
    kinds = {"sshd": {"available": True, "installed": True, "source": "sshd -T",
                      "settings": {"permitrootlogin": permit_root, "passwordauthentication": "no"}}}
    return {"type": "facts.snapshot", "ts": at.isoformat(), "data": {"kinds": kinds, "collected_in_ms": 5}}


def ingest(db, agent, items) -> None:
    pipeline.ingest_batch(db, agent=agent, batch=parse_batch(json.dumps(h.batch(items)).encode()))


def os_item() -> dict:
    return {"type": "inventory.snapshot", "ts": h.now_iso(), "data": {"sections": {"os": h.section([OS])}}}


def results(db, agent, **kwargs) -> dict[str, object]:
    with db.session() as s:
        rows = compliance.results_of(s, scope=Scope.everything(), host_id=agent.host_id, at=kwargs.pop("at", utcnow()),
                                     **kwargs)
    return {r.check_id: r for r in rows}


def test_results_are_stored_only_when_they_change_and_history_answers_as_of(db, agent):
    t0 = utcnow() - timedelta(days=2)
    ingest(db, agent, [os_item(), snapshot("yes", t0)])
    first = results(db, agent)
    assert first[ROOT_LOGIN].status == "fail" and "permitrootlogin" in first[ROOT_LOGIN].evidence
    with db.session() as s:
        rows_before = len(s.exec(select(CheckResultRow)).all())
    ingest(db, agent, [snapshot("yes", t0 + timedelta(hours=12))])  # nothing changed: nothing written
    with db.session() as s:
        assert len(s.exec(select(CheckResultRow)).all()) == rows_before
    ingest(db, agent, [snapshot("no", t0 + timedelta(days=1))])
    now = results(db, agent)
    assert now[ROOT_LOGIN].status == "pass"
    then = results(db, agent, as_of=t0 + timedelta(hours=1))
    assert then[ROOT_LOGIN].status == "fail" and then[ROOT_LOGIN].valid_to == t0 + timedelta(days=1)


def test_the_security_level_decides_which_checks_apply(db, agent):
    checkset = compliance.builtin_checks()
    facts = snapshot("yes", utcnow())["data"]["kinds"]
    at_level = {lvl: {r.check_id for r in evaluate_host(checkset, facts, os_family="debian", level=lvl)}
                for lvl in (1, 5)}
    assert at_level[1] < at_level[5]  # higher levels add requirements
    with db.transaction() as s:
        hosts.set_classification(s, host_id=agent.host_id, security_level=1)
    ingest(db, agent, [os_item(), snapshot("yes", utcnow() - timedelta(minutes=5))])
    assert set(results(db, agent)) == at_level[1] and {r.level for r in results(db, agent).values()} == {1}
    with db.transaction() as s:
        hosts.set_classification(s, host_id=agent.host_id, security_level=5)
    ingest(db, agent, [snapshot("yes", utcnow())])
    assert set(results(db, agent)) == at_level[5]


def create(db, agent, *, role="admin", days=30, **overrides):
    data = {"target_kind": "check", "target": ROOT_LOGIN, "scope": "host", "host_id": agent.host_id,
            "justification": "vendor appliance needs root until the 2027 upgrade",
            "compensating_control": "SSH reachable only from the admin VLAN", "expires_in_days": days} | overrides
    with db.transaction() as s:
        return exceptions.create(s, data=RiskExceptionCreate(**data), approver="boss", approver_role=role,
                                 now=utcnow(), known_checks=frozenset(compliance.builtin_checks().checks))


def test_an_exception_accepts_a_failure_until_it_expires_or_is_revoked(db, agent):
    ingest(db, agent, [os_item(), snapshot("yes", utcnow() - timedelta(minutes=1))])
    row = create(db, agent, days=30)
    accepted = results(db, agent)[ROOT_LOGIN]
    assert accepted.status == "accepted" and accepted.judged == "fail" and accepted.exception_id == row.id
    assert results(db, agent, at=utcnow() + timedelta(days=31))[ROOT_LOGIN].status == "fail"  # lapsed by itself
    with db.transaction() as s:
        exceptions.renew(s, exception_id=row.id, approver="boss", approver_role="admin", days=60, now=utcnow())
    with pytest.raises(Conflict), db.transaction() as s:
        exceptions.renew(s, exception_id=row.id, approver="boss", approver_role="admin", days=60, now=utcnow())
    with db.transaction() as s:
        exceptions.revoke(s, exception_id=row.id, by="boss", by_role="admin", reason="upgrade done", now=utcnow())
    assert results(db, agent)[ROOT_LOGIN].status == "fail"


def test_unit_exceptions_cover_sub_units_and_bad_requests_change_nothing(db, agent):
    ingest(db, agent, [os_item(), snapshot("yes", utcnow() - timedelta(minutes=1))])
    with pytest.raises(Forbidden):
        create(db, agent, role="unit_officer")
    with pytest.raises(InvalidInput, match="at most 90 days"):
        create(db, agent, days=120)
    with pytest.raises(InvalidInput, match="unknown check"):
        create(db, agent, target="no_such_check")
    with pytest.raises(InvalidInput):
        create(db, agent, scope="unit", host_id=None, unit=None)
    with db.session() as s:
        assert exceptions.list_(s, scope=Scope.everything(), now=utcnow()) == []
    create(db, agent, scope="unit", host_id=None, unit="P")  # the province: covers D1's host
    assert results(db, agent)[ROOT_LOGIN].status == "accepted"
    with db.session() as s:
        d2 = h_unit_id(s, "D2")
        assert [r.unit_id for r in exceptions.list_(s, scope=Scope.units(frozenset({d2})), now=utcnow())] == []


def h_unit_id(session, code: str) -> int:
    from collector.units import service as units

    return units.get_by_code(session, code=code).id


def test_the_api_scopes_checks_and_exceptions(client, db, agent):
    ingest(db, agent, [os_item(), snapshot("yes", utcnow() - timedelta(minutes=1))])
    h.add_user(db, "admin1", "admin")
    h.add_user(db, "d2officer", "unit_officer", "D2")
    admin = {"Authorization": f"Bearer {h.api_token(db, 'admin1')}"}
    officer = {"Authorization": f"Bearer {h.api_token(db, 'd2officer')}"}
    checks = client.get(f"/api/v1/hosts/{agent.host_id}/checks", headers=admin).json()
    assert any(i["check_id"] == ROOT_LOGIN and i["status"] == "fail" for i in checks["items"])
    assert client.get(f"/api/v1/hosts/{agent.host_id}/checks", headers=officer).status_code == 404
    body = {"target_kind": "check", "target": ROOT_LOGIN, "scope": "host", "host_id": agent.host_id,
            "justification": "vendor appliance needs root login", "compensating_control": "admin VLAN only",
            "expires_in_days": 30}
    assert client.post("/api/v1/exceptions", json=body, headers=officer).status_code == 403
    made = client.post("/api/v1/exceptions", json=body, headers=admin)
    assert made.status_code == 201 and made.json()["status"] == "active" and made.json()["approved_by"] == "admin1"
    assert client.get("/api/v1/exceptions", headers=officer).json()["items"] == []
    checks = client.get(f"/api/v1/hosts/{agent.host_id}/checks", headers=admin).json()
    assert checks["counts"].get("accepted") == 1
    revoked = client.post(f"/api/v1/exceptions/{made.json()['id']}/revoke", json={"reason": "fixed"}, headers=admin)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
