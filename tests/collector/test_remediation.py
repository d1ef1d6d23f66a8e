"""Remediation items: status workflow, assignee, comments, evidence, the views and the JSON API, with the
role matrix and unit scoping (another unit's finding is a 404), and the audit entry of a change."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlmodel import select

from collector.attestations.evidence import RejectedFile, stage
from collector.audit.models import AuditEntry
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from collector.exceptions import service as exceptions
from collector.exceptions.models import RiskExceptionCreate
from collector.findings import remediation, views
from collector.findings import service as findings
from collector.findings.models import Finding, RemediationEvidence
from collector.findings.remediation import Change
from collector.findings.service import Observation, Subject
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from tests.collector import helpers as h
from tests.console import remediation_helpers as rh


def add_people(db) -> None:
    for name, role, unit in (("boss", "admin", None), ("ana", "analyst", None), ("off1", "unit_officer", "D1"),
                             ("off2", "unit_officer", "D2"), ("aud", "auditor", None)):
        h.add_user(db, name, role, unit)


@pytest.fixture
def people(db):
    h.seed_units(db)
    add_people(db)
    return db


def change(db, who: str, finding_id: int, **kwargs):
    actor = rh.actor(db, who)
    with db.transaction(actor=actor) as s:
        return remediation.update(s, actor=actor, finding_id=finding_id, change=Change(**kwargs), now=utcnow())


def test_status_workflow_and_what_only_the_engine_may_say(people):
    db = people
    fid = rh.add_finding(db, unit="D1")
    assert change(db, "off1", fid, status="in_progress").remediation_status == "in_progress"
    assert change(db, "off1", fid, status="fixed_pending_verification").remediation_status == \
        "fixed_pending_verification"
    with pytest.raises(Conflict):  # pending verification cannot jump to risk accepted
        change(db, "off1", fid, status="risk_accepted")
    assert change(db, "off1", fid, status="in_progress").remediation_status == "in_progress"
    with pytest.raises(InvalidInput, match="fixed is set by the engine"):
        change(db, "off1", fid, status="fixed")
    with pytest.raises(Conflict, match="request one first"):  # no exception covers it
        change(db, "off1", fid, status="risk_accepted")
    with pytest.raises(InvalidInput):
        change(db, "off1", fid)  # nothing to change
    fixed = rh.add_finding(db, unit="D1", fixed_by="agent")
    with pytest.raises(Conflict, match="proven fixed by agent"):
        change(db, "off1", fixed, status="in_progress")
    with db.session() as s:
        assert remediation.scoped(s, scope=Scope.everything(), finding_id=fid).remediation_status == "in_progress"


def test_risk_accepted_once_an_approved_exception_covers_it(people):
    db = people
    host = rh.add_host(db, unit="D1", hostname="web01")
    fid = rh.add_finding(db, unit="D1", host_id=host, rule="CVE-2026-7777")
    with db.transaction() as s:
        exceptions.create(s, data=RiskExceptionCreate(target_kind="finding", target="CVE-2026-7777", scope="host",
                                                      host_id=host, justification="isolated segment, no route",
                                                      compensating_control="ACL"),
                          approver="boss", approver_role="admin", now=utcnow())
    assert change(db, "off1", fid, status="risk_accepted").remediation_status == "risk_accepted"
    assert change(db, "off1", fid, status="open").remediation_status == "open"


@pytest.mark.parametrize(("who", "outcome"), [("boss", "ok"), ("ana", "ok"), ("off1", "ok"),
                                              ("off2", NotFound), ("aud", Forbidden)])
def test_who_may_remediate_a_d1_finding(people, who, outcome):
    db = people
    fid = rh.add_finding(db, unit="D1")
    actor = rh.actor(db, who)
    calls = [
        lambda s: remediation.update(s, actor=actor, finding_id=fid, change=Change(status="in_progress"),
                                     now=utcnow()),
        lambda s: remediation.add_comment(s, actor=actor, finding_id=fid, body="patched on staging", now=utcnow()),
        lambda s: remediation.check_attachable(s, actor=actor, finding_id=fid),
    ]
    for call in calls:
        if outcome == "ok":
            with db.transaction(actor=actor) as s:
                call(s)
        else:
            with pytest.raises(outcome), db.transaction(actor=actor) as s:
                call(s)
    with db.session() as s:
        row = remediation.scoped(s, scope=Scope.everything(), finding_id=fid)
        assert row.remediation_status == ("in_progress" if outcome == "ok" else "open")
        assert len(remediation.comments(s, scope=Scope.everything(), finding_id=fid)) == (outcome == "ok")


def test_another_units_finding_reads_as_missing(people):
    db = people
    fid = rh.add_finding(db, unit="D1")
    officer2 = rh.actor(db, "off2")
    with db.session() as s:
        for read in (remediation.comments, remediation.evidence):
            with pytest.raises(NotFound, match=f"no finding {fid}"):
                read(s, scope=officer2.scope, finding_id=fid)
        with pytest.raises(NotFound, match="no finding 999999"):
            remediation.comments(s, scope=officer2.scope, finding_id=999999)


def test_assignee_must_be_able_to_work_on_the_unit(people):
    db = people
    fid = rh.add_finding(db, unit="D1")
    assert change(db, "ana", fid, assignee="off1").assignee == "off1"
    for bad in ("off2", "aud", "nobody"):
        with pytest.raises(InvalidInput):
            change(db, "ana", fid, assignee=bad)
    assert change(db, "ana", fid, assignee="ana").assignee == "ana"
    assert change(db, "ana", fid, assignee="").assignee is None


def test_comments_are_checked_and_kept_as_written(people):
    db = people
    fid = rh.add_finding(db, unit="D1")
    officer = rh.actor(db, "off1")
    for body, error in (("   ", "cannot be empty"), ("x" * 4001, "at most 4000")):
        with pytest.raises(InvalidInput, match=error), db.transaction(actor=officer) as s:
            remediation.add_comment(s, actor=officer, finding_id=fid, body=body, now=utcnow())
    hostile = "<script>alert(1)</script> " + "y" * 3974
    with db.transaction(actor=officer) as s:
        remediation.add_comment(s, actor=officer, finding_id=fid, body=hostile, now=utcnow())
    with db.session() as s:
        [comment] = remediation.comments(s, scope=officer.scope, finding_id=fid)
    assert comment.body == hostile.strip() and comment.author == "off1" and len(comment.body) == 4000


def stored_files(tmp_path) -> list:
    root = tmp_path / "evidence"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_evidence_too_large_or_wrong_type_is_refused_and_nothing_is_stored(people, tmp_path):
    db = people
    fid = rh.add_finding(db, unit="D1")
    officer = rh.actor(db, "off1")
    with pytest.raises(PayloadTooLarge):
        stage(data_dir=tmp_path, max_bytes=len(rh.PDF) - 1, filename="proof.pdf", stream=io.BytesIO(rh.PDF))
    with pytest.raises(RejectedFile, match="ELF executable"):
        stage(data_dir=tmp_path, max_bytes=10_000, filename="proof.pdf", stream=io.BytesIO(rh.ELF))
    with pytest.raises(RejectedFile, match="HTML"):
        stage(data_dir=tmp_path, max_bytes=10_000, filename="x.txt", stream=io.BytesIO(b"<html><script>1</script>"))
    assert stored_files(tmp_path) == []
    staged = stage(data_dir=tmp_path, max_bytes=10_000, filename="../../etc/<b>ticket</b>.pdf",
                   stream=io.BytesIO(rh.PDF))
    with db.transaction(actor=officer) as s:
        row = remediation.attach_staged(s, actor=officer, finding_id=fid, staged=staged, now=utcnow())
    assert row.content_type == "application/pdf" and row.size == len(rh.PDF) and "/" not in row.filename
    assert [p.name for p in stored_files(tmp_path)] == [row.sha256]
    # Someone outside the unit: refused, the staged copy is dropped and no row is written.
    staged = stage(data_dir=tmp_path, max_bytes=10_000, filename="b.txt", stream=io.BytesIO(b"other unit"))
    officer2 = rh.actor(db, "off2")
    with pytest.raises(NotFound), db.transaction(actor=officer2) as s:
        remediation.attach_staged(s, actor=officer2, finding_id=fid, staged=staged, now=utcnow())
    assert [p.name for p in stored_files(tmp_path)] == [row.sha256]
    with db.session() as s:
        assert len(s.exec(select(RemediationEvidence)).all()) == 1


def test_a_status_change_is_in_the_audit_log(people):
    db = people
    fid = rh.add_finding(db, unit="D1")
    change(db, "off1", fid, status="in_progress", assignee="off1")
    with db.session() as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.target_type == "findings",
                                                  AuditEntry.target_id == str(fid))).all()
        d1 = units.get_by_code(s, code="D1").id
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor, entry.role, entry.action, entry.unit_id) == ("off1", "unit_officer", "update", d1)
    assert entry.before == {"remediation_status": "open", "assignee": None}
    assert entry.after == {"remediation_status": "in_progress", "assignee": "off1"}


# ---- views ---------------------------------------------------------------------------------------

def test_age_buckets_and_unit_counts_hand_computed(people):
    db = people
    now = utcnow()
    ages = {0: "0-30", 30: "0-30", 31: "31-60", 60: "31-60", 61: "61-90", 90: "61-90", 91: "90+", 400: "90+"}
    for days in ages:
        # overdue when older than 60 days; due within the week when 31–60; later otherwise
        due = now - timedelta(days=1) if days > 60 else now + timedelta(days=3 if days > 30 else 30)
        rh.add_finding(db, unit="D1", first_seen=now - timedelta(days=days, minutes=1 if days else 0), due_at=due)
    rh.add_finding(db, unit="D1", first_seen=now - timedelta(days=100), fixed_by="agent")  # fixed: not counted
    rh.add_finding(db, unit="D2", first_seen=now - timedelta(days=100), due_at=now - timedelta(days=5))
    rh.add_finding(db, unit="P", first_seen=now - timedelta(days=5), finding_class="P0")
    every = views.ViewFilter()
    with db.session() as s:
        assert views.age_counts(s, scope=Scope.everything(), filters=every, now=now) == \
            {"0-30": 3, "31-60": 2, "61-90": 2, "90+": 3}
        officer1 = rh.actor(db, "off1")
        assert views.age_counts(s, scope=officer1.scope, filters=every, now=now) == \
            {"0-30": 2, "31-60": 2, "61-90": 2, "90+": 2}
        assert views.age_counts(s, scope=Scope.everything(), filters=views.ViewFilter(finding_class="P0"),
                                now=now) == {"0-30": 1, "31-60": 0, "61-90": 0, "90+": 0}
        counts = {u.code: (u.open, u.overdue, u.due_soon)
                  for u in views.by_unit(s, scope=Scope.everything(), filters=every, now=now)}
        assert counts == {"D1": (8, 4, 2), "D2": (1, 1, 0), "P": (1, 0, 0)}
        assert [u.code for u in views.by_unit(s, scope=Scope.everything(), filters=every, now=now)] == \
            ["D1", "D2", "P"]
        assert [u.code for u in views.by_unit(s, scope=officer1.scope, filters=every, now=now)] == ["D1"]
        assert views.totals(s, scope=officer1.scope, filters=every, now=now) == \
            {"open": 8, "overdue": 4, "due_soon": 2}
        page = views.items(s, scope=officer1.scope, filters=every, view="age", bucket="90+", now=now)
        assert [views.bucket_of(f.first_seen, now) for f in page.items] == ["90+", "90+"]
        assert page.items[0].first_seen < page.items[1].first_seen  # oldest first
        with pytest.raises(InvalidInput):
            views.items(s, scope=officer1.scope, filters=every, view="age", bucket="1-2", now=now)
        with pytest.raises(InvalidInput):
            views.ViewFilter(remediation_status="done")


def test_overdue_and_due_soon_pages_follow_the_keyset(people):
    db = people
    now = utcnow()
    overdue = [rh.add_finding(db, unit="D1", due_at=now - timedelta(days=d)) for d in (1, 9, 5, 5, 30)]
    soon = [rh.add_finding(db, unit="D1", due_at=now + timedelta(days=d)) for d in (6, 1)]
    rh.add_finding(db, unit="D1", due_at=now + timedelta(days=8))  # neither
    rh.add_finding(db, unit="D2", due_at=now - timedelta(days=50))  # another unit
    rh.add_finding(db, unit="D1", due_at=now - timedelta(days=3), fixed_by="scan")  # fixed
    scope = rh.actor(db, "off1").scope
    with db.session() as s:
        for limit in (1, 2, 3):  # page boundaries fall between and inside the two equal deadlines
            seen, cursor = [], None
            while True:
                page = views.items(s, scope=scope, filters=views.ViewFilter(), view="overdue", now=now, limit=limit,
                                   after=cursor)
                seen += [f.id for f in page.items]
                assert all(f.overdue for f in page.items) and len(page.items) <= limit
                cursor = page.next_cursor
                if cursor is None:
                    break
            # most overdue first; equal deadlines by id
            assert seen == [overdue[4], overdue[1], overdue[2], overdue[3], overdue[0]]
        due = views.items(s, scope=scope, filters=views.ViewFilter(), view="due_soon", now=now)
        assert [f.id for f in due.items] == [soon[1], soon[0]] and due.next_cursor is None
        with pytest.raises(InvalidInput):
            views.items(s, scope=scope, filters=views.ViewFilter(), view="overdue", now=now, after="garbage")


# ---- JSON API ------------------------------------------------------------------------------------

@pytest.fixture
def api(client, db):
    add_people(db)
    tokens = {name: h.api_token(db, name) for name in ("boss", "off1", "off2", "aud")}

    def call(method: str, who: str, url: str, **kwargs):
        return client.request(method, url, headers={"Authorization": f"Bearer {tokens[who]}"}, **kwargs)
    return call


def test_api_remediation_comments_and_views(api, db):
    fid = rh.add_finding(db, unit="D1", due_at=utcnow() - timedelta(days=2))
    resp = api("POST", "off1", f"/api/v1/findings/{fid}/remediation", json={"status": "in_progress",
                                                                             "assignee": "off1"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["finding"]["remediation_status"] == "in_progress"
    assert resp.json()["finding"]["assignee"] == "off1"
    assert api("POST", "off2", f"/api/v1/findings/{fid}/remediation", json={"status": "open"}).status_code == 404
    assert api("POST", "aud", f"/api/v1/findings/{fid}/remediation", json={"status": "open"}).status_code == 403
    assert api("POST", "off1", f"/api/v1/findings/{fid}/remediation", json={"status": "done"}).status_code == 422
    resp = api("POST", "off1", f"/api/v1/findings/{fid}/comments", json={"body": "<b>waiting</b> for window"})
    assert resp.status_code == 201, resp.text
    assert api("POST", "off1", f"/api/v1/findings/{fid}/comments", json={"body": "z" * 4001}).status_code == 422
    detail = api("GET", "off1", f"/api/v1/findings/{fid}").json()
    assert [c["body"] for c in detail["comments"]] == ["<b>waiting</b> for window"]
    body = api("GET", "off1", "/api/v1/findings/views/overdue").json()
    assert [f["id"] for f in body["items"]] == [fid] and body["next_cursor"] is None
    assert api("GET", "off2", "/api/v1/findings/views/overdue").json()["items"] == []
    assert api("GET", "boss", "/api/v1/findings/views/age").json()["buckets"] == \
        {"0-30": 1, "31-60": 0, "61-90": 0, "90+": 0}
    by_unit = api("GET", "boss", "/api/v1/findings/views/by_unit").json()["units"]
    assert [(u["code"], u["open"], u["overdue"]) for u in by_unit] == [("D1", 1, 1)]
    assert api("GET", "boss", "/api/v1/findings/views/nope").status_code == 422
    assert api("GET", "off2", "/api/v1/findings/views/overdue", params={"unit": "D1"}).status_code == 404


def test_api_evidence_upload_download_and_refusals(api, db, settings):
    fid = rh.add_finding(db, unit="D1")
    url = f"/api/v1/findings/{fid}/evidence"
    resp = api("POST", "off1", url, files={"file": ("ticket.pdf", rh.PDF, "application/pdf")})
    assert resp.status_code == 201, resp.text
    file_id = resp.json()["id"]
    got = api("GET", "off1", f"{url}/{file_id}")
    assert got.status_code == 200 and got.content == rh.PDF
    assert got.headers["content-disposition"].startswith("attachment")
    assert api("GET", "off2", f"{url}/{file_id}").status_code == 404
    assert api("POST", "off1", url, files={"file": ("a.pdf", rh.ELF, "application/pdf")}).status_code == 400
    assert api("POST", "off2", url, files={"file": ("a.pdf", rh.PDF, "application/pdf")}).status_code == 404
    assert api("POST", "aud", url, files={"file": ("a.pdf", rh.PDF, "application/pdf")}).status_code == 403
    big = b"%PDF-1.4\n" + b"0" * (settings.evidence_max_bytes + 1)
    assert api("POST", "off1", url, files={"file": ("big.pdf", big, "application/pdf")}).status_code == 413
    with db.session() as s:
        assert len(s.exec(select(RemediationEvidence)).all()) == 1
    assert len(stored_files(settings.data_dir)) == 1


def test_the_engine_fixes_and_a_reopened_finding_is_open_work_again(people):
    db = people
    with db.session() as s:
        subject = Subject.of_address(unit_id=units.get_by_code(s, code="D1").id, address="10.1.1.1")
    seen = Observation(rule="exposed-service:rdp", location="tcp/3389", title="RDP exposed",
                       finding_class="critical_misconfig")

    def report(observations, now):
        with db.transaction() as s:
            findings.reconcile(s, kind="exposure", producer="scan", observed={subject: observations}, now=now,
                               proof=lambda _subject, _row: {"scan": "run 7"})

    now = utcnow()
    report([seen], now)
    with db.session() as s:
        fid = s.exec(select(Finding.id)).one()
    change(db, "off1", fid, status="fixed_pending_verification")
    report([], now + timedelta(hours=1))  # the scan no longer sees it: the engine proves it fixed
    with db.session() as s:
        public, events = findings.get(s, scope=Scope.everything(), finding_id=fid, now=utcnow())
    assert public.remediation_status == "fixed" and public.fixed_proof["scan"] == "run 7"
    assert [e.action for e in events] == ["fixed"]
    report([seen], now + timedelta(hours=2))  # back within 90 days: reopened, work to redo
    with db.session() as s:
        assert remediation.scoped(s, scope=Scope.everything(), finding_id=fid).remediation_status == "open"
