"""Authorization under attack: the agent API's credentials, an agent writing for another host, expired
people's credentials, and a unit officer reaching for another unit's objects with well-formed requests.

What tests/console/test_role_matrix.py already proves is not repeated: every route × every role
(anonymous callers refused everywhere; the D1 officer gets 404 reading any of D2's objects; writes
without the role's action, or with an empty body on another unit's object, change nothing). This file
adds the agent side, expired credentials, and writes with *valid* bodies — each one first shown to
succeed on the officer's own unit, so the 404 on the other unit comes from the scope, not validation.
Enrollment tokens (wrong, expired, used up, revoked) are tests/collector/test_enroll.py's.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from collector.agents.models import Agent
from collector.audit.models import AuditEntry
from collector.events.models import Event
from collector.hosts.models import Host
from collector.ingest.models import IngestBatch
from collector.types import utcnow
from collector.users.models import ApiToken, ConsoleSession
from tests.collector import helpers as ch
from tests.console import helpers as h
from tests.console.scores_helpers import PDF
from tests.hostile.seed import Province, add_objects

AGENT_ROUTES = [("GET", "/api/v1/agent/config"), ("POST", "/api/v1/agent/batches")]


def count(db, model, *where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def enroll(client, db, unit: str, machine_id: str, hostname: str) -> dict:
    answer = client.post("/api/v1/agent/enroll", json={"token": ch.enroll_token(db, unit),
                                                       **ch.identity(machine_id, hostname=hostname)})
    assert answer.status_code == 201, answer.text
    return answer.json()


def credential(agent: dict) -> str:
    return f"{agent['agent_id']}.{agent['secret']}"


def send(client, agent_credential: str | None, method: str, path: str, body: dict | None = None,
         authorization: str | None = None):
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"} if method == "POST" else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif agent_credential is not None:
        headers["Authorization"] = f"Bearer {agent_credential}"
    content = ch.gz(body or ch.batch([ch.heartbeat()])) if method == "POST" else None
    return client.request(method, path, headers=headers, content=content)


# --- the agent API --------------------------------------------------------------------------------

def test_the_agent_api_refuses_missing_wrong_and_revoked_credentials(client, db):
    first = enroll(client, db, "D1", "a" * 32, "web01")
    again = enroll(client, db, "D1", "a" * 32, "web01")  # a re-installed agent: the first credential is revoked
    other = enroll(client, db, "D2", "b" * 32, "db02")
    refused = {
        None: 401,
        "Bearer": 401,  # the scheme with nothing after it
        f"Basic {credential(again)}": 401,  # another scheme
        "Bearer not-a-credential": 401,
        f"Bearer {again['agent_id']}.": 401,  # no secret
        f"Bearer {again['agent_id']}.{'x' * 43}": 401,  # a wrong secret
        f"Bearer {uuid.uuid4()}.{again['secret']}": 401,  # an unknown agent
        f"Bearer {other['agent_id']}.{again['secret']}": 401,  # another agent's id with this one's secret
        f"Bearer {credential(first)}": 403,  # revoked
    }
    events_before, batches_before = count(db, Event), count(db, IngestBatch)
    for method, path in AGENT_ROUTES:
        for authorization, status in refused.items():
            answer = send(client, None, method, path, authorization=authorization or "")
            assert answer.status_code == status, (method, path, authorization, answer.text)
            assert answer.json()["detail"]
    assert (count(db, Event), count(db, IngestBatch)) == (events_before, batches_before)
    for method, path in AGENT_ROUTES:  # the live credential still works: the refusals were about credentials
        assert send(client, credential(again), method, path).status_code in (200, 202)


def test_an_agent_cannot_write_for_another_host(client, db):
    mine = enroll(client, db, "D1", "a" * 32, "web01")
    theirs = enroll(client, db, "D2", "b" * 32, "db02")
    with db.session() as s:
        their_host = s.get(Host, theirs["host_id"])
        their_seen, their_hashes = their_host.last_seen, dict(their_host.inventory_hashes or {})
    me = credential(mine)

    # Inventory that says it is the other machine: refused whole, nothing stored.
    impostor = ch.inventory({"identity": [ch.identity("b" * 32, hostname="db02")], "packages": [ch.PKG]})
    events_before = count(db, Event)
    assert send(client, me, "POST", "/api/v1/agent/batches", ch.batch([impostor])).status_code == 403
    assert count(db, Event) == events_before and count(db, IngestBatch, IngestBatch.agent_id == mine["agent_id"]) == 0

    # Naming another host or agent in the envelope or an item: not a field of the wire format.
    for hostile in (ch.batch([ch.heartbeat()], agent_id=theirs["agent_id"]),
                    ch.batch([ch.heartbeat()], host_id=theirs["host_id"]),
                    ch.batch([{**ch.heartbeat(), "host_id": theirs["host_id"]}]),
                    ch.batch([{**ch.heartbeat(), "unit": "D2"}])):
        answer = send(client, me, "POST", "/api/v1/agent/batches", hostile)
        assert answer.status_code == 422, answer.text
    assert count(db, Event) == events_before

    # Events whose text names the other host (a forwarded log line) are stored as the sender's, in its unit.
    failure = {"type": "auth.failure", "ts": ch.now_iso(), "data": {
        "action": "failed_password", "outcome": "failure", "user": "root", "host": "db02",
        "source_ip": "203.0.113.7", "raw": "Nov 22 03:05:50 db02 sshd[1]: Failed password for root"}}
    answer = send(client, me, "POST", "/api/v1/agent/batches", ch.batch([failure, ch.heartbeat()]))
    assert answer.status_code == 202, answer.text
    with db.session() as s:
        stored = s.exec(select(Event.host_id, Event.unit_id).where(Event.type == "auth.failure")).all()
        mine_host = s.get(Host, mine["host_id"])
        their_host = s.get(Host, theirs["host_id"])
        their_agent = s.get(Agent, theirs["agent_id"])
    assert stored == [(mine["host_id"], mine_host.unit_id)]
    assert their_host.unit_id != mine_host.unit_id
    assert (their_host.last_seen, dict(their_host.inventory_hashes or {})) == (their_seen, their_hashes)
    assert their_agent.last_heartbeat is None and their_agent.last_seen_at is None


# --- expired people's credentials ----------------------------------------------------------------

def test_an_expired_api_token_is_refused(client, db):
    token = ch.api_token(db, "admin")
    assert client.get("/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with db.transaction() as s:
        s.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    answer = client.get("/api/v1/hosts", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    audit_before = count(db, AuditEntry)
    write = client.post("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}, json={
        "unit": "D1", "title": "Sự cố", "severity": "normal", "detected_at": ch.now_iso()})
    assert write.status_code == 401 and count(db, AuditEntry) == audit_before


@pytest.mark.parametrize("how", ["expired", "idle"])
def test_an_expired_console_session_is_refused(client, db, how):
    h.logged_in(client, "admin")
    assert client.get("/hosts", follow_redirects=False).status_code == 200
    assert client.get("/api/v1/hosts").status_code == 200  # the cookie works on the JSON API too
    past = utcnow() - timedelta(days=1)
    with db.transaction() as s:
        s.execute(update(ConsoleSession).values(expires_at=past) if how == "expired" else
                  update(ConsoleSession).values(last_seen_at=past, created_at=past))
    page = client.get("/hosts", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/api/v1/hosts").status_code == 401


# --- a unit officer and another unit's objects, with well-formed requests -------------------------

@pytest.fixture
def province(db, world, settings) -> Province:
    return add_objects(db, world, data_dir=settings.data_dir)


def officer_writes(mine: dict, now: str) -> list[tuple[str, str, dict]]:
    """(path, kind, payload) of every write a unit officer may make on an object named in the request."""
    pdf = {"file": ("bien-ban.pdf", PDF, "application/pdf")}
    # Bytes the seed has not attached yet: the same file again is "nothing new" (no row, no audit entry).
    new_pdf = {"file": ("bien-ban-moi.pdf", PDF + b"\n% bien ban bo sung\n", "application/pdf")}
    return [
        (f"/api/v1/findings/{mine['finding_id']}/comments", "json", {"body": "Đã lên kế hoạch vá"}),
        (f"/api/v1/findings/{mine['finding_id']}/remediation", "json", {"status": "in_progress"}),
        (f"/api/v1/findings/{mine['finding_id']}/evidence", "file", pdf),
        ("/api/v1/exceptions/requests", "json", {
            "finding_id": mine["free_finding_id"], "justification": "Chờ bản vá của hãng",
            "compensating_control": "Chặn cổng ở tường lửa", "expires_in_days": 30}),
        (f"/api/v1/incidents/{mine['incident_id']}/reported", "json", {"stage": "initial", "at": now}),
        ("/api/v1/incidents", "json", {"unit": mine["unit"], "title": "Sự cố mới", "severity": "normal",
                                       "detected_at": now}),
        ("/api/v1/attestations", "json", {"unit": mine["unit"], "item": "drill", "period": utcnow().year}),
        (f"/api/v1/attestations/{mine['attestation_id']}/files", "file", new_pdf),
        (f"/api/v1/attestations/{mine['attestation_id']}/withdraw", "json", {}),
    ]


def post(client, token: str, path: str, kind: str, payload: dict):
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "file":
        return client.post(path, headers=headers, files=payload)
    return client.post(path, headers=headers, json=payload)


def test_a_unit_officer_writing_to_another_units_objects_gets_404_and_changes_nothing(client, db, province):
    """officer2 (D2) aims D2's well-formed writes at D1's objects: 404, and D1 is as it was."""
    token = ch.api_token(db, "officer2")
    now = ch.now_iso()
    theirs, mine = province.objects["D1"], province.objects["D2"]
    aimed_at_d1 = officer_writes(theirs, now)
    own = officer_writes(mine, now)
    for (path, kind, payload), (own_path, _, own_payload) in zip(aimed_at_d1, own, strict=True):
        audit_before = count(db, AuditEntry)
        answer = post(client, token, path, kind, payload)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
        assert "web01" not in answer.text  # nothing about the other unit leaks (its host, say)
        assert count(db, AuditEntry) == audit_before, path  # every change is audited: none happened
        # The same request on the officer's own unit goes through: the 404 was the scope, not the body.
        answer = post(client, token, own_path, kind, own_payload)
        assert answer.status_code in (200, 201), (own_path, answer.status_code, answer.text)


def test_every_write_an_officer_makes_is_audited(client, db, province):
    token = ch.api_token(db, "officer2")
    unaudited = []
    for path, kind, payload in officer_writes(province.objects["D2"], ch.now_iso()):
        audit_before = count(db, AuditEntry)
        assert post(client, token, path, kind, payload).status_code in (200, 201), path
        if count(db, AuditEntry) == audit_before:
            unaudited.append(path)
    assert unaudited == []


def test_an_appeal_for_another_unit_is_404(client, db, province):
    token = ch.api_token(db, "officer2")
    audit_before = count(db, AuditEntry)
    answer = client.post("/api/v1/scores/appeals", headers={"Authorization": f"Bearer {token}"}, json={
        "unit": "D1", "period": f"{utcnow().year}-01", "indicator": "A1", "reason": "Số liệu sai"})
    assert answer.status_code == 404, answer.text
    assert count(db, AuditEntry) == audit_before
