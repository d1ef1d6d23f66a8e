"""Judging hosts: every status, per-level parameters, level selection, scores, reports, examples, real facts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pytest

from agent.collectors.facts import collect_facts
from rules.checks import (
    UNKNOWN_LEVEL,
    CheckResult,
    check_report,
    checks_test_report,
    evaluate_host,
    load_checks,
    policy_score,
    run_check_examples,
)
from tests.rules.test_checks_support import DEMO, GOOD_CHECKS, GOOD_POLICIES, write_check


@pytest.fixture(scope="module")
def checkset():
    return load_checks([GOOD_CHECKS], [GOOD_POLICIES])


def by_id(results) -> dict[str, CheckResult]:
    return {r.check_id: r for r in results}


def judge(checkset, facts, os="debian", level=3) -> dict[str, CheckResult]:
    return by_id(evaluate_host(checkset, facts, os_family=os, level=level, policy_id=DEMO))


SSH_NO = {"sshd": {"available": True, "settings": {"permitrootlogin": "no"}}}


def test_pass_and_fail(checkset):
    assert judge(checkset, SSH_NO)["ssh_lnx_root_login_disabled"].status == "pass"
    result = judge(checkset, {"sshd": {"available": True, "settings": {"permitrootlogin": "yes"}}})
    ssh = result["ssh_lnx_root_login_disabled"]
    assert (ssh.status, ssh.severity, ssh.critical) == ("fail", "high", True)
    assert ssh.evidence == 'sshd.settings.permitrootlogin = "yes"'
    assert ssh.requirements == ("auth_privileged_accounts",) and ssh.params == {}


def test_not_applicable_by_os(checkset):
    ssh = judge(checkset, SSH_NO, os="suse")["ssh_lnx_root_login_disabled"]
    assert ssh.status == "not_applicable" and ssh.evidence == "applies to os debian, ubuntu, rhel; host os is 'suse'"
    ssh = judge(checkset, SSH_NO, os=None)["ssh_lnx_root_login_disabled"]
    assert ssh.status == "not_applicable" and "host os is unknown" in ssh.evidence
    # A check without an os list is judged whatever the os.
    assert judge(checkset, {"services": {"available": True, "risky": []}}, os=None)[
        "svc_lnx_no_risky_services"].status == "pass"


def test_not_applicable_by_missing_or_unavailable_kind(checkset):
    results = judge(checkset, {"sshd": {"available": False, "error": "OpenSSH server not installed"}})
    ssh = results["ssh_lnx_root_login_disabled"]
    assert ssh.status == "not_applicable"
    assert ssh.evidence == "facts of kind 'sshd' not available (OpenSSH server not installed)"
    assert results["svc_lnx_no_risky_services"].evidence == "facts of kind 'services' not collected"
    # kern_ check lists no applies_to.facts: reading an unavailable kind still means "not applicable".
    kern = results["kern_lnx_ip_forward_disabled"]
    assert kern.status == "not_applicable" and "'sysctl'" in kern.evidence


def test_not_applicable_by_when(checkset):
    facts = {"upgrades": {"available": True, "installed": False, "enabled": False, "tool": None}}
    upd = judge(checkset, facts)["upd_lnx_auto_updates"]
    assert upd.status == "not_applicable" and "'when'" in upd.evidence
    facts["upgrades"].update(installed=True, enabled=True, tool="dnf-automatic")
    assert judge(checkset, facts, os="rhel")["upd_lnx_auto_updates"].status == "pass"
    assert judge(checkset, facts, os="debian")["upd_lnx_auto_updates"].status == "fail"  # @os decides


def test_error_by_missing_field_not_fail(checkset):
    results = judge(checkset, {"sshd": {"available": True, "settings": {}},
                               "accounts": {"available": True, "users": [{"name": "root", "uid": 0}, {"name": "x"}]}})
    ssh = results["ssh_lnx_root_login_disabled"]
    assert ssh.status == "error"
    assert ssh.evidence == "missing fact: sshd.settings.permitrootlogin; sshd.settings.permitrootlogin = (missing)"
    uid0 = results["acct_lnx_only_root_uid0"]
    assert uid0.status == "error" and uid0.evidence.startswith("missing fact: accounts.users[1].uid")
    # when's reads count too: a missing key there is an error, not "not applicable".
    upd = judge(checkset, {"upgrades": {"available": True}})["upd_lnx_auto_updates"]
    assert upd.status == "error" and "upgrades.installed" in upd.evidence


class Exploding(Mapping):
    def __getitem__(self, key):
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator:
        return iter(["available"])

    def __len__(self) -> int:
        return 1


def test_exception_inside_evaluation_is_an_error_result(checkset):
    ssh = judge(checkset, {"sshd": Exploding()})["ssh_lnx_root_login_disabled"]
    assert ssh.status == "error" and ssh.evidence == "evaluation failed: RuntimeError: boom"


def test_evidence_values_are_json_and_clipped(checkset):
    risky = [{"name": f"svc{i}", "category": "snmp"} for i in range(50)]
    svc = judge(checkset, {"services": {"available": True, "risky": risky}})["svc_lnx_no_risky_services"]
    value = svc.evidence.removeprefix("services.risky = ")
    assert svc.status == "fail" and len(value) == 200 and value.endswith("…") and value.startswith('[{"name": "svc0"')


def test_params_per_level_first_requirement_wins(checkset):
    facts = {"logindefs": {"available": True, "pass_max_days": 120},
             "pam": {"available": True, "pwquality": {"enabled": True, "minlen": 12}}}
    at = {level: judge(checkset, facts, level=level) for level in (2, 3, 4, 5)}
    age = {level: r["acct_lnx_password_max_age"] for level, r in at.items()}
    assert {lvl: r.params["max_days"] for lvl, r in age.items()} == {2: 180, 3: 90, 4: 90, 5: 60}
    assert [age[lvl].status for lvl in (2, 3, 5)] == ["pass", "fail", "fail"]
    assert age[2].requirements == ("auth_password_policy",)
    assert age[3].requirements == ("auth_password_policy", "acl_account_files")  # its max_days: 30 loses
    pam = {level: r["pam_lnx_password_min_length"] for level, r in at.items()}
    assert [(pam[lvl].params["min_length"], pam[lvl].status) for lvl in (2, 3, 4, 5)] == [
        (8, "pass"), (10, "pass"), (12, "pass"), (14, "fail")]


def test_level_selection(checkset):
    ids = {level: set(judge(checkset, {}, level=level)) for level in (1, 2, 3, None)}
    assert "acct_lnx_password_max_age" not in ids[1] and "acct_lnx_password_max_age" in ids[2]
    assert "file_lnx_shadow_not_world_readable" not in ids[2]  # its requirement is for levels 3-5
    assert "file_lnx_shadow_not_world_readable" in ids[3]
    assert ids[None] == ids[UNKNOWN_LEVEL] and len(ids[3]) == 9
    results = evaluate_host(checkset, {}, os_family="debian", level=1, policy_id=DEMO)
    assert [r.check_id for r in results] == sorted(r.check_id for r in results)
    with pytest.raises(ValueError, match="security level must be 1-5"):
        evaluate_host(checkset, {}, os_family="debian", level=6, policy_id=DEMO)
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        evaluate_host(checkset, {}, os_family="debian", level=3, policy_id="nope")
    every = evaluate_host(checkset, {}, os_family="debian", level=1, policy_id=None)
    assert len(every) == 9 and all(r.requirements == () for r in every)


def result(status: str, severity: str, critical: bool = False) -> CheckResult:
    return CheckResult("x_lnx_y", status, severity, critical, "")


def test_score_weights():
    results = [result("pass", "critical"), result("pass", "low"), result("fail", "high", critical=True),
               result("fail", "info"), result("not_applicable", "critical"), result("error", "high")]
    score = policy_score(results)
    assert score["score"] == round(6 * 100 / 9, 1) == 66.7
    assert (score["passed"], score["failed"], score["not_applicable"], score["error"]) == (2, 2, 1, 1)
    assert score["critical_failed"] == 1 and (score["weight_passed"], score["weight_judged"]) == (6, 9)
    assert score["weights"] == {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 5}
    assert policy_score([result("pass", "medium")])["score"] == 100.0
    assert policy_score([result("fail", "medium")])["score"] == 0.0


def test_score_edge_cases():
    assert policy_score([])["score"] is None
    nothing = policy_score([result("not_applicable", "high"), result("error", "low")])
    assert nothing["score"] is None and (nothing["not_applicable"], nothing["error"]) == (1, 1)
    assert policy_score([result("pass", "info")])["score"] is None  # judged, but no weight to divide by


def test_check_report_table(checkset):
    text = check_report(checkset, {"kinds": SSH_NO}, os_family="debian", level=None, policy_id=DEMO)
    lines = text.splitlines()
    assert lines[-1] == "score 100.0%"
    assert lines[-2] == ("policy demo_server_policy, level 3, os debian: 9 checks, 1 passed, 0 failed, "
                         "8 not applicable, 0 error")
    ssh = next(line for line in lines if "ssh_lnx_root_login_disabled" in line)
    assert ssh == 'PASS   high     ssh_lnx_root_login_disabled  SSH root login disabled  ' \
                  '[sshd.settings.permitrootlogin = "no"]'
    assert sum(1 for line in lines if line.startswith("N/A")) == 8
    empty = check_report(checkset, {}, os_family=None, level=1, policy_id=DEMO)
    assert empty.splitlines()[-1] == "score n/a (nothing judged)"


def test_check_report_json(checkset):
    facts = {**SSH_NO, "services": {"available": True, "risky": [{"name": "telnet", "category": "telnet"}]}}
    doc = json.loads(check_report(checkset, facts, os_family="debian", level=2, policy_id=DEMO, fmt="json"))
    assert (doc["policy"], doc["level"], doc["os"]) == (DEMO, 2, "debian")
    assert doc["score"]["passed"] == 1 and doc["score"]["failed"] == 2
    assert doc["score"]["score"] == round(3 * 100 / (3 + 2 + 3), 1)
    rows = {r["check_id"]: r for r in doc["results"]}
    assert rows["ssh_lnx_root_login_disabled"]["title"]["vi"] == "Cấm đăng nhập SSH bằng root"
    assert rows["acct_lnx_password_max_age"]["params"] == {"max_days": 180}
    assert set(rows["svc_lnx_no_cleartext_services"]) >= {"status", "severity", "critical", "evidence",
                                                          "requirements", "params"}
    with pytest.raises(ValueError, match="format"):
        check_report(checkset, facts, os_family="debian", level=2, policy_id=DEMO, fmt="xml")


def test_run_check_examples_detects_pass_and_fail(checkset, tmp_path):
    results = run_check_examples(checkset)
    assert len(results) == 30 and all(r.passed for r in results), [r.detail for r in results if not r.passed]
    assert checks_test_report([GOOD_CHECKS], [GOOD_POLICIES]) == (
        0, "30 examples in 9 checks: 30 passed, 0 failed")
    write_check(tmp_path, "ssh_lnx_wrong_expectation", 'assert: {field: sshd.settings.permitrootlogin, eq: "no"}\n'
                'evidence: [sshd.settings.permitrootlogin]\n', tests="""\
        tests:
          - name: passes
            facts: {sshd: {settings: {permitrootlogin: "no"}}}
            expect: pass
          - name: claims to fail but passes
            facts: {sshd: {settings: {permitrootlogin: "no"}}}
            expect: fail
          - name: missing setting
            facts: {sshd: {settings: {}}}
            expect: fail
        """)
    bad = run_check_examples(load_checks([tmp_path], []))
    assert [(r.name, r.expected, r.got, r.passed) for r in bad] == [
        ("passes", "pass", "pass", True), ("claims to fail but passes", "fail", "pass", False),
        ("missing setting", "fail", "error", False)]
    assert bad[1].detail == 'expected fail, got pass (sshd.settings.permitrootlogin = "no")'
    code, text = checks_test_report([tmp_path], [])
    assert code == 1 and text.splitlines()[-1] == "3 examples in 1 checks: 1 passed, 2 failed"
    assert text.splitlines()[0].startswith("FAIL ssh_lnx_wrong_expectation: claims to fail but passes: ")


def test_real_facts_of_this_machine(checkset):
    document = collect_facts()
    for level in (1, 2, 3, 4, 5, None):
        for os_family in ("debian", "rhel", None):
            results = evaluate_host(checkset, document["kinds"], os_family=os_family, level=level, policy_id=DEMO)
            assert results and all(r.status in ("pass", "fail", "not_applicable") for r in results), \
                [(r.check_id, r.evidence) for r in results if r.status == "error"]
    every = evaluate_host(checkset, document, os_family="debian", level=None, policy_id=None)  # whole document
    assert len(every) == 9 and not [r for r in every if r.status == "error"]
    text = check_report(checkset, document["kinds"], os_family="debian", level=None, policy_id=DEMO)
    assert text.splitlines()[-1].startswith("score ")
    json.loads(check_report(checkset, document["kinds"], os_family="debian", level=4, policy_id=DEMO, fmt="json"))


def test_failed_every_and_some_name_the_deciding_items(checkset):
    results = judge(checkset, {
        "accounts": {"available": True, "uid0": ["root", "toor"],
                     "users": [{"name": "root", "uid": 0}, {"name": "toor", "uid": 0}, {"name": "an", "uid": 1}]},
        "services": {"available": True, "risky": [{"name": "snmpd", "category": "snmp"},
                                                  {"name": "vsftpd", "category": "ftp"}]}})
    assert results["acct_lnx_only_root_uid0"].evidence == \
        'accounts.uid0 = ["root", "toor"]; items not matching: accounts.users[1] "toor"'
    assert results["svc_lnx_no_cleartext_services"].evidence.endswith('; items matching: services.risky[1] "vsftpd"')


def test_a_path_tested_with_exists_is_false_when_absent_not_unknown(tmp_path):
    write_check(tmp_path, "ssh_lnx_kbd_off", """\
        assert:
          any:
            - {field: sshd.settings.kbdinteractiveauthentication, eq: "no"}
            - all:
                - {field: sshd.settings.kbdinteractiveauthentication, exists: false}
                - {field: sshd.settings.challengeresponseauthentication, eq: "no"}
        """, tests="""\
        tests:
          - name: new keyword off
            facts: {sshd: {settings: {kbdinteractiveauthentication: "no"}}}
            expect: pass
          - name: old keyword on
            facts: {sshd: {settings: {challengeresponseauthentication: "yes"}}}
            expect: fail
          - name: old keyword off
            facts: {sshd: {settings: {challengeresponseauthentication: "no"}}}
            expect: pass
          - name: neither keyword
            facts: {sshd: {settings: {}}}
            expect: error
        """)
    checkset = load_checks([tmp_path], [])
    assert checkset.checks["ssh_lnx_kbd_off"].guarded == frozenset({"sshd.settings.kbdinteractiveauthentication"})
    assert all(r.passed for r in run_check_examples(checkset)), [r.detail for r in run_check_examples(checkset)]
    [result] = evaluate_host(checkset, {"sshd": {"available": True, "settings": {}}}, os_family="debian", level=None,
                             policy_id=None)
    assert result.evidence == "missing fact: sshd.settings.challengeresponseauthentication"


def test_os_family_from_os_release():
    from rules.checks import os_family

    assert os_family({"id": "ubuntu", "id_like": "debian"}) == "debian"
    assert os_family({"id": "rocky", "id_like": "rhel centos fedora"}) == "rhel"
    assert os_family({"id": "almalinux"}) == "rhel"
    assert os_family({"id": "alpine"}) is None and os_family(None) is None


def test_checks_can_gate_on_the_os_version(tmp_path):
    from rules.checks import evaluate_host, load_checks
    from tests.rules.test_checks_support import write_check

    body = """\
        applies_to:
          os: [debian]
          facts: [os, sshd]
          when: {field: os.major, gte: 12}
        assert: {field: sshd.settings.permitrootlogin, eq: "no"}
        """
    tests = """\
tests:
  - name: bookworm, root login on
    facts: {os: {available: true, major: 12}, sshd: {settings: {permitrootlogin: "yes"}}}
    expect: fail
  - name: bookworm, root login off
    facts: {os: {available: true, major: 12}, sshd: {settings: {permitrootlogin: "no"}}}
    expect: pass
  - name: buster is out of scope
    facts: {os: {available: true, major: 10}, sshd: {settings: {permitrootlogin: "yes"}}}
    expect: not_applicable
"""
    write_check(tmp_path / "checks", "ssh_lnx_new_debian_only", body, tests)
    (tmp_path / "policies").mkdir()
    checkset = load_checks([tmp_path / "checks"], [tmp_path / "policies"])
    facts = {"sshd": {"available": True, "settings": {"permitrootlogin": "yes"}}}

    def status(version_id: str | None) -> str:
        release = None if version_id is None else {"id": "debian", "version_id": version_id}
        [result] = evaluate_host(checkset, facts, os_family="debian", level=3, policy_id=None, os_release=release)
        return result.status

    assert status("12") == "fail" and status("10") == "not_applicable" and status(None) == "not_applicable"
