"""Findings end to end through the HTTP API: inventory → match → finding with its SLA deadline → upgrade
→ fixed (with proof) → back within 90 days → reopened with the original first-seen date and deadline.
Also pending security updates, KEV / official warnings raising the class, distro states, exceptions,
unit scoping and agent re-installation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from collector.findings import service as findings
from collector.findings.models import Finding
from collector.findings.service import Observation, Subject
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from collector.vulns import matching
from collector.vulns import service as feeds
from rules.feeds import parse_feed
from tests.collector import helpers as h

OS = {"platform": "linux", "id": "debian", "version_id": "12", "codename": "bookworm", "name": "Debian GNU/Linux",
      "pretty_name": "Debian GNU/Linux 12 (bookworm)"}


def pkg(name: str, version: str, source: str | None = None) -> dict:
    return {"name": name, "version": version, "arch": "amd64", "source": source or name,
            "source_version": version, "manager": "dpkg"}


def tracker(tmp_path: Path, entries: dict, name: str = "tracker.json") -> Path:
    """A Debian security tracker JSON file: {package: {cve: (status, fixed_version, urgency, nodsa_reason)}}."""
    doc: dict = {}
    for package, cves in entries.items():
        for cve, (status, fixed, urgency, nodsa) in cves.items():
            release = {"status": status, "repositories": {"bookworm": fixed or "1.0-1"}, "urgency": urgency}
            if fixed is not None:
                release["fixed_version"] = fixed
            if nodsa is not None:
                release["nodsa"] = "Minor issue"
                release["nodsa_reason"] = nodsa
            doc.setdefault(package, {})[cve] = {"description": f"{cve} in {package}", "scope": "remote",
                                                "releases": {"bookworm": release}}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def import_and_match(db, path: Path) -> matching.MatchReport:
    parsed = parse_feed(path)
    with db.transaction() as s:
        feeds.import_feed(s, parsed=parsed, sha256=str(hash(path.read_bytes())), filename=path.name, now=utcnow())
    with db.transaction() as s:
        return matching.match(s, now=utcnow())


def send(client, enrolled, items) -> None:
    resp = client.post("/api/v1/agent/batches", content=h.gz(h.batch(items)), headers=enrolled["headers"])
    assert resp.status_code == 202, resp.text


@pytest.fixture
def admin(client, db):
    h.add_user(db, "admin1", "admin")
    token = h.api_token(db, "admin1")

    def get(url: str, **params):
        resp = client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        return resp.json()
    return get


def vuln_findings(db) -> list[Finding]:
    with db.session() as s:
        return list(s.exec(select(Finding).where(Finding.kind == "vulnerability").order_by(Finding.id)).all())


def test_vulnerable_package_finding_deadline_fix_and_reopen(client, db, enrolled, admin, tmp_path):
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("libssl3", "3.0.11-1~deb12u2", "openssl"),
                                                                   pkg("bash", "5.2.15-2+b2")]})])
    report = import_and_match(db, tracker(tmp_path, {
        "openssl": {"CVE-2024-5535": ("resolved", "3.0.11-1~deb12u10", "high", None)},
        "bash": {"CVE-2022-3715": ("resolved", "5.2.15-2+b1", "low", None)},  # installed +b2 ≥ fixed +b1
    }))
    assert report.hosts == 1 and report.findings["opened"] == 1, report.as_dict()
    body = admin("/api/v1/findings", kind="vulnerability")
    [f] = body["items"]
    # +deb12u2 < +deb12u10 (dpkg order, not string order); binary libssl3 matched through its source.
    assert (f["rule"], f["location"], f["fixed_version"], f["fix_available"]) == \
        ("CVE-2024-5535", "openssl", "3.0.11-1~deb12u10", True)
    assert f["finding_class"] == "P2" and f["status"] == "open"  # tracker urgency high, no CVSS
    assert f["evidence"]["binaries"] == [{"name": "libssl3", "version": "3.0.11-1~deb12u2"}]
    # Level not declared → treated as level 3 → "internet-facing or L3" column: 30 days for P2.
    first_seen = datetime.fromisoformat(f["first_seen"])
    assert datetime.fromisoformat(f["due_at"]) - first_seen == timedelta(days=30)
    assert body["counts"] == {"P2": {"open": 1, "overdue": 0}}

    # The upgrade arrives in the next inventory: matched incrementally at ingest, fixed with proof.
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("libssl3", "3.0.11-1~deb12u10", "openssl"),
                                                                   pkg("bash", "5.2.15-2+b2")]})])
    fixed = admin(f"/api/v1/findings/{f['id']}")
    assert fixed["finding"]["status"] == "fixed"
    proof = fixed["finding"]["fixed_proof"]
    assert proof["proof"] == "fixed version installed" and proof["installed"][0]["version"] == "3.0.11-1~deb12u10"
    assert [e["action"] for e in fixed["history"]] == ["fixed"]

    # Downgraded again (a restore from an old image): reopened, same first-seen date and deadline.
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("libssl3", "3.0.11-1~deb12u2", "openssl"),
                                                                   pkg("bash", "5.2.15-2+b2")]})])
    again = admin(f"/api/v1/findings/{f['id']}")["finding"]
    assert again["status"] == "reopened" and again["reopened_count"] == 1
    assert (again["first_seen"], again["due_at"]) == (f["first_seen"], f["due_at"])
    assert admin("/api/v1/findings", status="open")["items"][0]["id"] == f["id"]


def test_kev_and_official_warning_raise_to_p0_and_start_the_clock_early(client, db, enrolled, admin, tmp_path):
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("openssh-server", "1:9.2p1-2+deb12u2",
                                                                       "openssh")]})])
    assert vuln_findings(db) == []
    import_and_match(db, tracker(tmp_path, {"openssh": {
        "CVE-2024-6387": ("resolved", "1:9.2p1-2+deb12u3", "high", None),
        "CVE-2023-51385": ("resolved", "1:9.2p1-2+deb12u3", "medium", None)}}))
    warned = tmp_path / "warnings.json"
    warned.write_text(json.dumps({"format": "khien-warnings/1", "source": "NCSC", "version": "2026-07-02",
                                  "warnings": [{"id": "CB-2026-01", "title": "Lỗ hổng regreSSHion trong OpenSSH",
                                                "cves": ["CVE-2024-6387"], "date": "2026-07-02",
                                                "exploited": True}]}))
    report = import_and_match(db, warned)
    assert report.findings["reclassified"] == 1, report.as_dict()
    items = {i["rule"]: i for i in admin("/api/v1/findings")["items"]}
    p0 = items["CVE-2024-6387"]
    assert p0["finding_class"] == "P0" and p0["evidence"]["official_warning"]["exploited"] is True
    assert p0["clock_start"].startswith("2026-07-02")  # the warning date, earlier than first detection
    assert datetime.fromisoformat(p0["due_at"]) == datetime(2026, 7, 9, tzinfo=UTC)  # exposed/L3: fix in 7 d
    assert p0["overdue"] is (datetime.now(UTC) > datetime(2026, 7, 9, tzinfo=UTC))
    assert items["CVE-2023-51385"]["finding_class"] == "P3"


def test_distro_states_no_fix_is_visible_not_affected_is_not_a_finding(client, db, enrolled, admin, tmp_path):
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("libxml2", "2.9.14+dfsg-1.3~deb12u1")]})])
    report = import_and_match(db, tracker(tmp_path, {"libxml2": {
        "CVE-2024-0001": ("open", None, "low", ""),  # no-dsa
        "CVE-2024-0002": ("open", None, "medium", "postponed"),
        "CVE-2024-0003": ("resolved", "0", "not yet assigned", None),  # never affected
        "CVE-2024-0004": ("open", None, "unimportant", None),
        "CVE-2024-0005": ("undetermined", None, "not yet assigned", None),
    }}))
    items = {i["rule"]: i for i in admin("/api/v1/findings", kind="vulnerability")["items"]}
    assert set(items) == {"CVE-2024-0001", "CVE-2024-0002", "CVE-2024-0005"}
    assert {r: (i["fix_available"], i["distro_state"]) for r, i in items.items()} == {
        "CVE-2024-0001": (False, "no-dsa"), "CVE-2024-0002": (False, "postponed"),
        "CVE-2024-0005": (False, "undetermined")}
    assert report.no_fix == 3 and report.not_affected == 2


def test_pending_security_update_is_a_finding_without_any_feed(client, db, enrolled, admin):
    status = {"type": "patch.status", "ts": h.now_iso(), "data": {
        "manager": "apt", "pending_count": 2, "security_count": 1, "pending": [
            {"name": "curl", "installed_version": "7.88.1-10+deb12u5", "candidate_version": "7.88.1-10+deb12u8",
             "origin": "Debian-Security:12/stable-security", "security": True},
            {"name": "tzdata", "installed_version": "2024a-0+deb12u1", "candidate_version": "2025b-0+deb12u1",
             "security": False}]}}
    send(client, enrolled, [status])
    [f] = admin("/api/v1/findings", kind="patch")["items"]
    assert (f["rule"], f["location"], f["finding_class"], f["fixed_version"]) == \
        ("pending-security-update", "curl", "P2", "7.88.1-10+deb12u8")
    status["data"]["pending"] = status["data"]["pending"][1:]
    status["ts"] = h.now_iso()
    send(client, enrolled, [status])
    assert admin(f"/api/v1/findings/{f['id']}")["finding"]["status"] == "fixed"


def test_exception_accepts_a_finding_and_units_see_only_their_own(client, db, enrolled, admin, tmp_path):
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("openssl", "3.0.11-1~deb12u2")]})])
    import_and_match(db, tracker(tmp_path, {"openssl": {"CVE-2024-5535": ("resolved", "3.0.11-1~deb12u3", "high",
                                                                          None)}}))
    h.add_user(db, "boss", "admin")
    h.add_user(db, "d2officer", "unit_officer", unit="D2")
    h.add_user(db, "d1officer", "unit_officer", unit="D1")
    own = client.get("/api/v1/findings", headers={"Authorization": f"Bearer {h.api_token(db, 'd1officer')}"})
    other = client.get("/api/v1/findings", headers={"Authorization": f"Bearer {h.api_token(db, 'd2officer')}"})
    assert len(own.json()["items"]) == 1 and other.json()["items"] == []
    fid = own.json()["items"][0]["id"]
    assert client.get(f"/api/v1/findings/{fid}",
                      headers={"Authorization": f"Bearer {h.api_token(db, 'd2officer')}"}).status_code == 404
    resp = client.post("/api/v1/exceptions", headers={"Authorization": f"Bearer {h.api_token(db, 'boss')}"}, json={
        "target_kind": "finding", "target": "CVE-2024-5535", "scope": "unit", "unit": "D1",
        "justification": "Vendor appliance, patch scheduled with the supplier",
        "compensating_control": "TLS terminated on the proxy", "expires_in_days": 30})
    assert resp.status_code == 201, resp.text
    accepted = admin("/api/v1/findings", status="accepted")["items"]
    assert [i["id"] for i in accepted] == [fid] and accepted[0]["exception_id"] == resp.json()["id"]
    assert admin("/api/v1/findings", status="open")["items"] == []
    bad = client.get("/api/v1/findings", params={"class": "P9"},
                     headers={"Authorization": f"Bearer {h.api_token(db, 'boss')}"})
    assert bad.status_code == 422 and "P9" in bad.text


def test_sla_clock_survives_agent_reinstallation(client, db, enrolled, tmp_path):
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("openssl", "3.0.11-1~deb12u2")]})])
    import_and_match(db, tracker(tmp_path, {"openssl": {"CVE-2024-5535": ("resolved", "3.0.11-1~deb12u3", "high",
                                                                          None)}}))
    [before] = vuln_findings(db)
    # The agent is reinstalled on the same machine: new credentials, same machine-id → same host.
    resp = client.post("/api/v1/agent/enroll", json={"token": h.enroll_token(db), **h.identity()})
    assert resp.status_code == 201
    again = resp.json()
    headers = enrolled["headers"] | {"Authorization": f"Bearer {again['agent_id']}.{again['secret']}"}
    assert again["host_id"] == enrolled["host_id"]
    resp = client.post("/api/v1/agent/batches", headers=headers, content=h.gz(h.batch([h.inventory(
        {"os": [OS], "packages": [pkg("openssl", "3.0.11-1~deb12u2"), pkg("bash", "5.2.15-2+b2")]})])))
    assert resp.status_code == 202
    [after] = vuln_findings(db)
    assert (after.id, after.first_seen, after.due_at, after.status) == \
        (before.id, before.first_seen, before.due_at, "open")


def test_reconcile_after_the_reopen_window_starts_a_new_generation(db):
    h.seed_units(db)
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code="D1").id
    subject = Subject(identity="addr:1:10.0.0.5", unit_id=unit_id, address="10.0.0.5")
    obs = Observation(rule="exposed-service:rdp", location="tcp/3389@10.0.0.5", title="RDP exposed",
                      finding_class="critical_misconfig")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def run(at, seen):
        with db.transaction() as s:
            return findings.reconcile(s, kind="exposure", producer="scan", observed={subject: [obs] if seen else []},
                                      now=at, proof=lambda *_: {"proof": "closed"})

    assert run(t0, True).opened == 1
    assert run(t0 + timedelta(days=1), False).fixed == 1
    assert run(t0 + timedelta(days=200), True).opened == 1  # > 90 days later: a new finding
    with db.session() as s:
        rows = s.exec(select(Finding).order_by(Finding.generation)).all()
    assert [(r.generation, r.status) for r in rows] == [(0, "fixed"), (1, "open")]
    # critical misconfiguration, level unknown (→ exposed column): 72 h
    assert rows[1].due_at - rows[1].first_seen == timedelta(hours=72)


def test_last_seen_follows_every_report_without_rewriting_unchanged_rows(db):
    """A complete report moves the last-seen time of every finding it lists (through one sighting per
    subject, not an update per finding); a finding gone from the report keeps the last time it was seen;
    a partial report (``covers``, e.g. a scan of one address) updates the rows it saw."""
    h.seed_units(db)
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code="D1").id
    subject = Subject(identity="host:41", unit_id=unit_id, host_id=None, level=3)
    a = Observation(rule="CVE-2026-0001", location="openssl", title="a", finding_class="P2")
    b = Observation(rule="CVE-2026-0002", location="zlib", title="b", finding_class="P3")
    t0 = datetime(2026, 5, 1, tzinfo=UTC)

    def report(at, observed, producer="feeds", covers=None):
        with db.transaction() as s:
            return findings.reconcile(s, kind="vulnerability", producer=producer, observed={subject: observed},
                                      now=at, proof=lambda *_: {"proof": "gone"}, covers=covers)

    def shown():
        with db.session() as s:
            items = findings.list_(s, scope=Scope.everything(), filters=findings.FindingFilter(), now=t0)
        return {f.rule: (f.status, f.last_seen) for f in items}

    report(t0, [a, b])
    stored_before = {r.rule: r.last_seen for r in vuln_findings(db)}
    assert report(t0 + timedelta(days=1), [a, b]).unchanged == 2
    assert {r.rule: r.last_seen for r in vuln_findings(db)} == stored_before  # no row rewritten
    day1 = t0 + timedelta(days=1)
    assert shown() == {"CVE-2026-0001": ("open", day1), "CVE-2026-0002": ("open", day1)}
    assert report(t0 + timedelta(days=2), [a]).fixed == 1
    assert shown() == {"CVE-2026-0001": ("open", t0 + timedelta(days=2)),
                       "CVE-2026-0002": ("fixed", t0 + timedelta(days=1))}  # last seen in the day-1 report
    with db.session() as s:
        [row] = [r for r in vuln_findings(db) if r.rule == "CVE-2026-0001"]
        public, _history = findings.get(s, scope=Scope.everything(), finding_id=row.id, now=t0)
    assert public.last_seen == t0 + timedelta(days=2)
    # a partial report by another producer: only the rows it covered move, on the row itself
    report(t0 + timedelta(days=3), [a], producer="agent", covers=lambda _subject, row: row.location == "openssl")
    [row] = [r for r in vuln_findings(db) if r.rule == "CVE-2026-0001"]
    assert row.last_seen == t0 + timedelta(days=3) and row.sources == "agent,feeds"


def test_a_reclassified_host_gets_the_deadline_of_its_new_column(db):
    h.seed_units(db)
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code="D1").id
    obs = Observation(rule="CVE-2024-6387", location="openssh", title="regreSSHion", finding_class="P1")
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for level, facing, expected in ((1, False, timedelta(days=30)), (4, False, timedelta(days=7)),
                                    (2, True, timedelta(days=15))):
        subject = Subject(identity="host:77", unit_id=unit_id, level=level, internet_facing=facing)
        with db.transaction() as s:
            findings.reconcile(s, kind="vulnerability", producer="feeds", observed={subject: [obs]}, now=t0,
                               proof=lambda *_: {})
        [row] = vuln_findings(db)
        assert row.due_at - row.first_seen == expected, (level, facing)


FIXTURES = Path(__file__).resolve().parents[1] / "rules" / "fixtures" / "feeds"


def test_rpm_hosts_match_rocky_advisories_with_epochs(client, db, enrolled, admin):
    rocky = {"platform": "linux", "id": "rocky", "version_id": "9.3", "name": "Rocky Linux"}
    rpm = {"arch": "x86_64", "source": "openssl", "manager": "rpm"}
    send(client, enrolled, [h.inventory({"os": [rocky], "packages": [
        {"name": "openssl-libs", "version": "1:3.0.7-25.el9_3", "source_version": "3.0.7-25.el9_3"} | rpm,
        {"name": "openssl", "version": "1:3.0.7-27.el9", "source_version": "3.0.7-27.el9"} | rpm]})])
    report = import_and_match(db, FIXTURES / "osv" / "rpm" / "RLSA-2024-2447.json")
    assert report.hosts == 1
    items = admin("/api/v1/findings", kind="vulnerability")["items"]
    # Only openssl-libs is older than the fixed 1:3.0.7-27.el9 (rpm EVR order, epoch included);
    # one finding per CVE the advisory lists.
    assert {(i["location"], i["rule"]) for i in items} == {
        ("openssl-libs", cve) for cve in ("CVE-2023-3817", "CVE-2023-5363", "CVE-2023-5678", "CVE-2024-2511")}
    assert all(i["fixed_version"] == "1:3.0.7-27.el9" and i["evidence"]["records"] == ["RLSA-2024:2447"]
               for i in items)


def test_the_same_cve_from_osv_and_the_tracker_is_one_finding(client, db, enrolled, admin, tmp_path):
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("libssl3", "3.0.14-1~deb12u2", "openssl")]})])
    import_and_match(db, FIXTURES / "osv" / "debian" / "DSA-5764-1.json")
    import_and_match(db, tracker(tmp_path, {"openssl": {
        "CVE-2024-5535": ("resolved", "3.0.15-1~deb12u1", "low", None)}}))
    items = admin("/api/v1/findings", kind="vulnerability")["items"]
    assert sorted(i["rule"] for i in items) == ["CVE-2024-5535", "CVE-2024-6119"]
    both = next(i for i in items if i["rule"] == "CVE-2024-5535")
    assert sorted(both["evidence"]["records"]) == ["CVE-2024-5535", "DSA-5764-1"]


def test_ingest_defers_matching_until_the_index_is_warm_then_the_job_matches(client, db, enrolled, admin, settings,
                                                                             tmp_path):
    from collector.scheduler import Jobs

    path = tracker(tmp_path, {"openssl": {"CVE-2024-5535": ("resolved", "3.0.11-1~deb12u3", "high", None)}})
    with db.transaction() as s:  # imported by another process: this one has no index for it yet
        feeds.import_feed(s, parsed=parse_feed(path), sha256="x" * 64, filename=path.name, now=utcnow())
    send(client, enrolled, [h.inventory({"os": [OS], "packages": [pkg("openssl", "3.0.11-1~deb12u2")]})])
    assert vuln_findings(db) == []  # not matched inside the ingest transaction (index build takes seconds)
    jobs = Jobs(db, settings)
    jobs.match_requested()
    [finding] = vuln_findings(db)
    assert finding.rule == "CVE-2024-5535" and finding.status == "open"
    jobs.nightly_match()  # the nightly run: nothing changes
    assert [(f.id, f.status) for f in vuln_findings(db)] == [(finding.id, "open")]


def test_full_runs_commit_in_host_batches_with_the_same_result(client, db, enrolled, tmp_path):
    second = client.post("/api/v1/agent/enroll", json={"token": h.enroll_token(db), **h.identity(
        machine_id="b" * 32, hostname="db01", macs=["52:54:00:12:34:57"])}).json()
    headers = enrolled["headers"] | {"Authorization": f"Bearer {second['agent_id']}.{second['secret']}"}
    inventory = h.inventory({"os": [OS], "packages": [pkg("openssl", "3.0.11-1~deb12u2")]})
    send(client, enrolled, [inventory])
    assert client.post("/api/v1/agent/batches", content=h.gz(h.batch([inventory])), headers=headers).status_code == 202
    path = tracker(tmp_path, {"openssl": {"CVE-2024-5535": ("resolved", "3.0.11-1~deb12u3", "high", None)}})
    with db.transaction() as s:
        feeds.import_feed(s, parsed=parse_feed(path), sha256="y" * 64, filename=path.name, now=utcnow())
    progress: list[str] = []
    report = matching.match_all(db, now=utcnow(), batch_hosts=1, on_progress=progress.append)
    assert report.hosts == 2 and report.findings["opened"] == 2
    assert "reconciled 1/2 hosts" in progress and "reconciled 2/2 hosts" in progress
    assert sorted(f.host_id for f in vuln_findings(db)) == sorted([enrolled["host_id"], second["host_id"]])
    assert matching.match_all(db, now=utcnow(), batch_hosts=1).findings["unchanged"] == 2
