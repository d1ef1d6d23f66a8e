"""Attestations (M1–M3): submit, upload evidence, review, scope, file checks and the values scoring reads."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from collector.attestations import service as attestations
from collector.attestations.models import ITEM_IDS, Attestation, EvidenceFile
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from tests.collector import helpers as h

CAP = 64 * 1024
YEAR = utcnow().year
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, evidence_max_bytes=CAP)


@pytest.fixture
def people(client, db) -> dict[str, dict[str, str]]:
    for name, role, unit in (("boss", "admin", None), ("off1", "unit_officer", "D1"),
                             ("off2", "unit_officer", "D2"), ("aud", "auditor", None)):
        h.add_user(db, name, role, unit)
    return {name: {"Authorization": f"Bearer {h.api_token(db, name)}"} for name in ("boss", "off1", "off2", "aud")}


def submit(client, who, item="level_approved", unit="D1", period=YEAR, note="quyết định phê duyệt"):
    return client.post("/api/v1/attestations", headers=who,
                       json={"unit": unit, "item": item, "period": period, "note": note})


def upload(client, who, attestation_id, name="quyet-dinh.pdf", content=PDF):
    return client.post(f"/api/v1/attestations/{attestation_id}/files", headers=who,
                       files={"file": (name, content, "application/octet-stream")})


def review(client, who, attestation_id, rating="dat", comment=None):
    return client.post(f"/api/v1/attestations/{attestation_id}/review", headers=who,
                       json={"rating": rating, "comment": comment})


def stored_blobs(tmp_path) -> list:
    root = tmp_path / "evidence"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def unit_id(db, code: str) -> int:
    with db.session() as s:
        return units.get_by_code(s, code=code).id


def evidence_rows(db) -> list[EvidenceFile]:
    with db.session() as s:
        return list(s.exec(select(EvidenceFile)))


def test_the_migration_creates_both_tables(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {"attestations", "evidence_files"} <= tables


def test_submit_attach_review_gives_the_values_scoring_reads(client, db, people, tmp_path):
    made = submit(client, people["off1"])
    assert made.status_code == 201, made.text
    a = made.json()
    assert (a["status"], a["unit"], a["indicator"], a["submitted_by"]) == ("submitted", "D1", "M1", "off1")
    file = upload(client, people["off1"], a["id"])
    assert file.status_code == 201, file.text
    assert file.json()["content_type"] == "application/pdf" and file.json()["size"] == len(PDF)
    rated = review(client, people["boss"], a["id"])
    assert rated.status_code == 200, rated.text
    assert (rated.json()["rating"], rated.json()["rating_value"], rated.json()["reviewed_by"]) == ("dat", 1.0, "boss")
    detail = client.get(f"/api/v1/attestations/{a['id']}", headers=people["off1"]).json()
    assert [f["filename"] for f in detail["files"]] == ["quyet-dinh.pdf"] and "stored_path" not in detail["files"][0]

    for item, rating in (("plan_implemented", "dat_mot_phan"), ("training", "chua_dat")):
        other = submit(client, people["off1"], item=item).json()
        assert upload(client, people["off1"], other["id"], content=PDF + item.encode()).status_code == 201
        assert review(client, people["boss"], other["id"], rating).status_code == 422  # a comment is required
        assert review(client, people["boss"], other["id"], rating, "thiếu biên bản").status_code == 200
    d1, d2 = unit_id(db, "D1"), unit_id(db, "D2")
    with db.session() as s:
        got = attestations.values(s, unit_ids={d1, d2}, period=YEAR)
    assert got == {d1: {"level_approved": 1.0, "plan_implemented": 0.5, "training": 0.0}, d2: {}}

    # Rated items cannot be changed; re-submitting starts a new row and its rating is the one that counts.
    assert review(client, people["boss"], a["id"], "chua_dat", "sai").status_code == 409
    assert upload(client, people["off1"], a["id"], content=PDF + b"late").status_code == 409
    again = submit(client, people["off1"]).json()
    assert again["id"] != a["id"]
    assert submit(client, people["off1"]).status_code == 409  # one awaiting review at a time
    assert upload(client, people["off1"], again["id"], content=PDF + b"v2").status_code == 201
    assert review(client, people["boss"], again["id"], "dat_mot_phan", "chỉ một hệ thống").status_code == 200
    with db.session() as s:
        assert attestations.values(s, unit_ids=[d1], period=YEAR)[d1]["level_approved"] == 0.5
        history = attestations.list_(s, scope=Scope.everything(), unit_id=d1, item="level_approved")
    assert [(r.status, r.rating) for r in history] == [("rated", "dat_mot_phan"), ("rated", "dat")]


def test_a_rating_expires_with_its_period(client, db, people):
    last_year = submit(client, people["off1"], item="drill", period=YEAR - 1).json()
    assert upload(client, people["off1"], last_year["id"]).status_code == 201
    assert review(client, people["boss"], last_year["id"]).status_code == 200
    d1 = unit_id(db, "D1")
    with db.session() as s:
        assert attestations.values(s, unit_ids=[d1], period=YEAR - 1) == {d1: {"drill": 1.0}}
        assert attestations.values(s, unit_ids=[d1], period=YEAR) == {d1: {}}
        assert attestations.values(s, unit_ids=[d1], period=YEAR + 1) == {d1: {}}
    assert submit(client, people["off1"], period=YEAR + 1).status_code == 422  # not a year that has begun
    assert submit(client, people["off1"], item="firewall").status_code == 422


def test_units_see_and_touch_only_their_own(client, db, people, tmp_path):
    a = submit(client, people["off1"]).json()
    assert upload(client, people["off1"], a["id"]).status_code == 201
    files = client.get(f"/api/v1/attestations/{a['id']}", headers=people["off1"]).json()["files"]
    other = people["off2"]
    assert client.get("/api/v1/attestations", headers=other).json()["items"] == []
    assert client.get(f"/api/v1/attestations/{a['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/attestations/{a['id']}/files/{files[0]['id']}", headers=other).status_code == 404
    assert upload(client, other, a["id"], content=PDF + b"x").status_code == 404
    assert client.post(f"/api/v1/attestations/{a['id']}/withdraw", headers=other).status_code == 404
    refused = submit(client, other, unit="D1")
    assert refused.status_code == 404 and "unknown unit code" in refused.json()["detail"]
    assert review(client, other, a["id"]).status_code == 403
    assert review(client, people["off1"], a["id"]).status_code == 403  # units do not rate themselves
    assert [i["id"] for i in client.get("/api/v1/attestations", headers=people["off1"]).json()["items"]] == [a["id"]]
    assert client.get("/api/v1/attestations?unit=D2", headers=people["off1"]).json()["items"] == []

    # The auditor reads everything and changes nothing.
    aud = people["aud"]
    assert [i["id"] for i in client.get("/api/v1/attestations", headers=aud).json()["items"]] == [a["id"]]
    assert submit(client, aud).status_code == 403
    assert upload(client, aud, a["id"], content=PDF + b"y").status_code == 403
    assert review(client, aud, a["id"]).status_code == 403
    assert client.post(f"/api/v1/attestations/{a['id']}/withdraw", headers=aud).status_code == 403
    assert len(evidence_rows(db)) == 1 and len(stored_blobs(tmp_path)) == 1
    assert client.get("/api/v1/attestations").status_code == 401


def test_review_needs_evidence_and_withdrawn_items_are_not_rated(client, db, people):
    a = submit(client, people["off1"], item="soc_coverage").json()
    refused = review(client, people["boss"], a["id"])
    assert refused.status_code == 422 and "no evidence" in refused.json()["detail"]
    assert review(client, people["boss"], a["id"], "excellent").status_code == 422
    withdrawn = client.post(f"/api/v1/attestations/{a['id']}/withdraw", headers=people["off1"])
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_by"] == "off1"
    assert review(client, people["boss"], a["id"]).status_code == 409
    assert submit(client, people["off1"], item="soc_coverage").status_code == 201
    listed = client.get("/api/v1/attestations?status=withdrawn&item=soc_coverage", headers=people["boss"]).json()
    assert [i["id"] for i in listed["items"]] == [a["id"]]
    assert client.get("/api/v1/attestations?status=bogus", headers=people["boss"]).status_code == 422


def test_too_large_files_are_refused_and_nothing_is_stored(client, db, people, tmp_path):
    a = submit(client, people["off1"]).json()
    just_over = PDF + b"0" * (CAP + 1 - len(PDF))
    resp = upload(client, people["off1"], a["id"], content=just_over)  # found while reading the stream
    assert resp.status_code == 413 and str(CAP) in resp.json()["detail"]
    far_over = PDF + b"0" * (4 * CAP)
    assert upload(client, people["off1"], a["id"], content=far_over).status_code == 413  # refused unread
    assert evidence_rows(db) == [] and stored_blobs(tmp_path) == []
    at_cap = PDF + b"0" * (CAP - len(PDF))
    assert upload(client, people["off1"], a["id"], content=at_cap).status_code == 201


@pytest.mark.parametrize("name, content, reason", [
    ("setup.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(100), "Windows executable"),
    ("report.pdf", b"\x7fELF\x02\x01\x01" + bytes(100), "ELF executable"),
    ("report.pdf", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "HTML"),
    ("report.pdf", b"just some words, not a PDF", "content is text/plain"),
    ("notes.txt", b"hello\x00world", "NUL bytes"),
    ("photo.png", PDF, "content is application/pdf"),
    ("bundle.zip", b"PK\x03\x04" + bytes(40), "office documents"),
    ("empty.pdf", b"", "empty"),
    ("latin1.txt", "bản báo cáo".encode("cp1258", errors="replace") + b"\xff\xfe", "not UTF-8"),
])
def test_disallowed_types_are_refused_with_the_reason(client, db, people, tmp_path, name, content, reason):
    a = submit(client, people["off1"]).json()
    resp = upload(client, people["off1"], a["id"], name=name, content=content)
    assert resp.status_code == 400, resp.text
    assert reason in resp.json()["detail"]
    assert evidence_rows(db) == [] and stored_blobs(tmp_path) == []


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for member, data in members.items():
            z.writestr(member, data)
    return buf.getvalue()


def test_office_documents_images_and_text_are_accepted_by_content(client, db, people):
    a = submit(client, people["off1"], item="training").json()
    docx = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    odt = _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office/>"})
    accepted = {
        "ke-hoach.docx": (docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "bao-cao.odt": (odt, "application/vnd.oasis.opendocument.text"),
        "anh.png": (PNG, "image/png"),
        "anh.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(20), "image/jpeg"),
        "danh-sach.csv": ("họ tên,đơn vị\nNguyễn Văn A,D1\n".encode(), "text/csv"),
    }
    for name, (content, expected) in accepted.items():
        resp = upload(client, people["off1"], a["id"], name=name, content=content)
        assert resp.status_code == 201 and resp.json()["content_type"] == expected, (name, resp.text)
    plain_zip = _zip({"readme.txt": b"hi"})
    resp = upload(client, people["off1"], a["id"], name="fake.docx", content=plain_zip)
    assert resp.status_code == 400 and "not an office document" in resp.json()["detail"]


def test_same_file_is_stored_once_and_downloads_unchanged(client, db, people, tmp_path):
    first = submit(client, people["off1"], item="drill").json()
    second = submit(client, people["off1"], item="training").json()
    f1 = upload(client, people["off1"], first["id"]).json()
    assert upload(client, people["off1"], first["id"]).json()["id"] == f1["id"]  # same bytes, same row
    f2 = upload(client, people["off1"], second["id"], name="copy.pdf").json()
    assert f2["id"] != f1["id"] and f2["sha256"] == f1["sha256"]
    blobs = stored_blobs(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in blobs] == [f"evidence/{f1['sha256'][:2]}/{f1['sha256']}"]
    assert not list((tmp_path / "evidence" / "tmp").iterdir())  # no temp file left behind

    got = client.get(f"/api/v1/attestations/{first['id']}/files/{f1['id']}", headers=people["aud"])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith("attachment")
    # A file id under another attestation's URL is not found.
    assert client.get(f"/api/v1/attestations/{second['id']}/files/{f1['id']}",
                      headers=people["boss"]).status_code == 404


def test_hostile_filenames_are_stored_safely_and_shown_sanitised(client, db, people, tmp_path):
    a = submit(client, people["off1"], item="rules_and_officer").json()
    passwd = upload(client, people["off1"], a["id"], name="../../etc/passwd", content=b"root:x:0:0::/root:/bin/sh\n")
    assert passwd.status_code == 201, passwd.text
    assert passwd.json()["filename"] == "passwd" and passwd.json()["content_type"] == "text/plain"
    script = upload(client, people["off1"], a["id"], name="<script>.pdf", content=PDF)
    assert script.status_code == 201 and script.json()["filename"] == "_script_.pdf"
    windows = upload(client, people["off1"], a["id"], name="..\\..\\Quyết định số 12.pdf", content=PDF + b"w")
    assert windows.json()["filename"] == "Quyết định số 12.pdf"
    assert not (tmp_path.parent / "etc").exists()
    for row in evidence_rows(db):
        assert (tmp_path / row.stored_path).resolve().parent.parent == (tmp_path / "evidence").resolve()
    got = client.get(f"/api/v1/attestations/{a['id']}/files/{script.json()['id']}", headers=people["off1"])
    assert "_script_.pdf" in got.headers["content-disposition"] and "<" not in got.headers["content-disposition"]


def test_the_virus_scan_hook_rejects_a_marked_file(client, db, people, tmp_path, monkeypatch):
    scanner = tmp_path / "scan.sh"
    scanner.write_text('#!/bin/sh\n! grep -q "X5O-MALWARE-MARKER" "$1"\n')
    monkeypatch.setenv("KHIEN_EVIDENCE_SCAN_COMMAND", f"/bin/sh {scanner} {{path}}")
    a = submit(client, people["off1"], item="independent_assessment").json()
    assert upload(client, people["off1"], a["id"]).status_code == 201
    marked = PDF + b"% X5O-MALWARE-MARKER\n"
    resp = upload(client, people["off1"], a["id"], name="infected.pdf", content=marked)
    assert resp.status_code == 422 and "rejected by the virus scanner" in resp.json()["detail"]
    assert len(evidence_rows(db)) == 1 and len(stored_blobs(tmp_path)) == 1

    monkeypatch.setenv("KHIEN_EVIDENCE_SCAN_COMMAND", str(tmp_path / "no-such-scanner"))
    resp = upload(client, people["off1"], a["id"], name="other.pdf", content=PDF + b"other")
    assert resp.status_code == 503 and len(evidence_rows(db)) == 1  # no scanner, no storing


def test_service_scope_and_roles(db, tmp_path):
    from collector.attestations.service import Operator
    from collector.errors import Forbidden, NotFound

    h.seed_units(db)
    d1, d2 = unit_id(db, "D1"), unit_id(db, "D2")
    officer = Operator(username="off1", role="unit_officer")
    with db.transaction() as s:
        row = attestations.submit(s, scope=Scope.units(frozenset({d1})), user=officer, unit_code="D1",
                                  item="national_connection", period=YEAR, note=None, now=utcnow())
        attestations.attach(s, data_dir=tmp_path, max_bytes=CAP, attestation_id=row.id, filename="ket-noi.pdf",
                            stream=io.BytesIO(PDF), user=officer, scope=Scope.units(frozenset({d1})), now=utcnow())
    with db.session() as s:
        assert attestations.list_(s, scope=Scope.units(frozenset({d2}))) == []
        with pytest.raises(NotFound):
            attestations.get(s, scope=Scope.units(frozenset({d2})), attestation_id=row.id)
        with pytest.raises(NotFound):
            attestations.submit(s, scope=Scope.units(frozenset({d2})), user=officer, unit_code="D1",
                                item="drill", period=YEAR, note=None, now=utcnow())
        for role in ("unit_officer", "auditor"):  # reviewers: admins and analysts (collector.access)
            with pytest.raises(Forbidden):
                attestations.review(s, attestation_id=row.id, rating="dat", comment=None, reviewer="x",
                                    reviewer_role=role, now=utcnow())
    with db.transaction() as s:
        rated = attestations.review(s, attestation_id=row.id, rating="dat", comment=None, reviewer="boss",
                                    reviewer_role="admin", now=utcnow())
        assert (rated.status, rated.rating_value) == ("rated", 1.0)
    with db.session() as s:
        assert s.get(Attestation, row.id).reviewed_at is not None
    # the items are exactly the components the scoring model reads from attestations (M1–M3, and A6 until
    # agents report backups)
    from rules.scoring.model import builtin_model

    model = builtin_model()
    assert set(ITEM_IDS) == {c for i in ("A6", "M1", "M2", "M3") for c in model.indicators[i].components}
