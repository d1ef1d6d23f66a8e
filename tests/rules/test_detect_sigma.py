"""Sigma import: which rules convert, which are skipped and why, and that imported rules run in the engine."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from agent.collectors.authlog import LineParser
from rules.detect import Engine, EngineEvent, fold, load_rules, run_examples
from rules.detect.sigma import SigmaSkip, convert_sigma, import_sigma
from tests.rules.test_detect_support import T0

FIXTURES = Path(__file__).parent / "fixtures" / "sigma"
SKIPPED = FIXTURES / "skipped"

CONVERTED = {
    "sigma_ssh_maximum_authentication_attempts_exceeded",
    "sigma_suspicious_openssh_daemon_error",
    "sigma_ssh_login_attempt_with_scanner_account_name",
    "sigma_sudo_command_reading_shadow_file",
    "sigma_pam_authentication_failure_for_root_via_ssh",
    "sigma_failed_password_for_service_account",
    "sigma_failed_ssh_password",  # the base rule next to the (skipped) correlation
}
SKIP_REASONS = {
    "win_security_susp_logon.yml": "log source not collected: product 'windows'",
    "lnx_process_creation_category.yml": "log source not collected: category 'process_creation'",
    "lnx_auth_base64offset_payload.yml": "unsupported modifier 'base64offset'",
    "lnx_auth_windash.yml": "unsupported modifier 'windash'",
    "lnx_auth_expand_placeholder.yml": "unsupported modifier 'expand'",
    "lnx_auth_sshd_count_aggregation.yml": "aggregation condition 'count' is not supported",
    "lnx_auth_near.yml": "aggregation condition 'near' is not supported",
    "lnx_auth_unknown_field.yml": "unknown field 'LogonType'",
    "lnx_auth_correlation.yml": "correlation rule",
}


def as_event(item, n: int) -> EngineEvent:
    """A parsed agent item as the collector hands it to the engine (see bench/detect.py)."""
    return EngineEvent(type=item.type, ts=T0 + timedelta(seconds=n), host="1", data=item.data, id=n + 1)


def sigma_rule(directory: Path, name: str, body: str, service: str = "auth", product: str = "linux") -> Path:
    """A Sigma rule file with the given detection (YAML, indented under `detection:`)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yml"
    path.write_text(
        f"title: {name.replace('_', ' ').title()}\n"
        "id: 11111111-2222-4333-8444-555555555555\n"
        "status: experimental\n"
        f"logsource:\n    product: {product}\n    service: {service}\n"
        "detection:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
        "level: low\n", encoding="utf-8")
    return path


def converted_match(tmp_path: Path, body: str, service: str = "auth") -> dict:
    result = convert_sigma([sigma_rule(tmp_path, "probe_rule", body, service)])
    assert not result.skipped, result.skipped
    [(_, mapping)] = result.rules
    return mapping


def only_skip(tmp_path: Path, body: str, service: str = "auth", product: str = "linux") -> SigmaSkip:
    result = convert_sigma([sigma_rule(tmp_path, "probe_rule", body, service, product)])
    assert not result.rules
    [skip] = result.skipped
    return skip


# --- the fixtures ------------------------------------------------------------------------------------


def test_fixtures_convert_and_skip_with_reasons():
    result = convert_sigma([FIXTURES])
    assert {rule_id for rule_id, _ in result.rules} == CONVERTED
    reasons = {Path(s.file).name: s.reason for s in result.skipped}
    assert set(reasons) == set(SKIP_REASONS)
    for name, expected in SKIP_REASONS.items():
        assert expected in reasons[name], (name, reasons[name])
    assert all(s.rule_title for s in result.skipped)
    assert "(field CommandLine)" in reasons["lnx_auth_base64offset_payload.yml"]


def test_converted_rules_load_and_their_examples_pass(tmp_path):
    result = convert_sigma([FIXTURES])
    for rule_id, mapping in result.rules:
        (tmp_path / f"{rule_id}.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    ruleset = load_rules([tmp_path])
    assert set(ruleset.rules) == CONVERTED
    results = run_examples(ruleset)
    assert len(results) == 2 * len(CONVERTED)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_keyword_rule_mapping():
    rules = dict(convert_sigma([FIXTURES / "lnx_auth_sshd_max_auth_attempts.yml"]).rules)
    rule = rules["sigma_ssh_maximum_authentication_attempts_exceeded"]
    assert rule["match"] == {"any": [
        {"field": "raw", "contains": "maximum authentication attempts exceeded", "nocase": True},
        {"field": "raw", "contains": "Too many authentication failures", "nocase": True}]}
    assert rule["event_type"] == ["auth.failure", "auth.success"]
    assert rule["title"] == {"vi": "[Sigma] SSH Maximum Authentication Attempts Exceeded",
                             "en": "[Sigma] SSH Maximum Authentication Attempts Exceeded"}
    assert (rule["status"], rule["severity"]) == ("experimental", "medium")
    assert rule["tags"] == ["attack.credential-access", "attack.t1110.001"]  # car.* dropped
    assert rule["remediation"] == {"vi": "See the Sigma rule's references", "en": "See the Sigma rule's references"}
    assert rule["falsepositives"]["en"] == ["Users with many keys loaded in their SSH agent"]
    assert rule["description"]["en"].startswith("[Sigma] Detects sshd closing")
    assert rule["references"] == ["https://man.openbsd.org/sshd_config#MaxAuthTries"]


def test_keyword_all_and_field_rules_mapping():
    rules = dict(convert_sigma([FIXTURES]).rules)
    assert rules["sigma_pam_authentication_failure_for_root_via_ssh"]["match"] == {"all": [
        {"field": "raw", "contains": "pam_unix(sshd:auth): authentication failure", "nocase": True},
        {"field": "raw", "contains": "user=root", "nocase": True}]}
    # keyword-only rules on service auth also see account changes (useradd lines are in auth.log)
    assert "account.change" in rules["sigma_pam_authentication_failure_for_root_via_ssh"]["event_type"]
    sudo = rules["sigma_sudo_command_reading_shadow_file"]
    assert sudo["event_type"] == "auth.sudo" and sudo["severity"] == "high"
    assert sudo["match"]["all"][0] == {"field": "command", "contains": "/etc/shadow", "nocase": True}
    scanner = rules["sigma_ssh_login_attempt_with_scanner_account_name"]
    assert "account.change" not in scanner["event_type"]  # a field rule: `user` means something else there
    assert scanner["match"]["all"][1] == {"not": {"field": "source_ip", "cidr": "10.0.0.0/8"}}
    wildcard = rules["sigma_failed_password_for_service_account"]["match"]["any"]
    assert wildcard == [{"field": "raw", "regex": "Failed password for .* from ", "nocase": True},
                        {"field": "user", "regex": "^[a-z]+svc$"}]


# --- imported rules run through the same engine ------------------------------------------------------


def test_imported_keyword_rule_fires_on_a_parsed_sshd_line(tmp_path):
    code, report = import_sigma([FIXTURES], tmp_path / "out")
    assert code == 0, report
    ruleset = load_rules([tmp_path / "out"])
    engine = Engine(ruleset)
    parser = LineParser()
    lines = [
        "Mar  2 11:00:00 web01 sshd[1234]: error: maximum authentication attempts exceeded for root from "
        "203.0.113.9 port 4242 ssh2 [preauth]",
        "Mar  2 11:00:01 web01 sshd[1235]: Accepted publickey for deploy from 198.51.100.4 port 50022 ssh2: "
        "ED25519 SHA256:q8vF1Jm4ZQ2nqkT0",
    ]
    items = [parser.parse_line(line) for line in lines]
    assert all(item is not None for item in items)
    detections = [d for n, item in enumerate(items)
                  for d in engine.process(as_event(item, n))]
    assert [(d.rule_id, d.event_ids) for d in detections] == [
        ("sigma_ssh_maximum_authentication_attempts_exceeded", (1,))]
    assert len(fold(detections, ruleset)) == 1


def test_imported_field_rule_fires_on_a_parsed_sudo_line(tmp_path):
    import_sigma([FIXTURES / "lnx_sudo_shadow_read.yml"], tmp_path)
    engine = Engine(load_rules([tmp_path]))
    parser = LineParser()
    hit = parser.parse_line("Mar  2 12:00:00 web01 sudo:   mallory : TTY=pts/1 ; PWD=/home/mallory ; USER=root ; "
                            "COMMAND=/usr/bin/cat /etc/shadow")
    miss = parser.parse_line("Mar  2 12:00:05 web01 sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
                             "COMMAND=/usr/bin/systemctl restart nginx")
    assert hit is not None and miss is not None and hit.type == "auth.sudo"
    assert [d.rule_id for d in engine.process(as_event(hit, 0))] == [
        "sigma_sudo_command_reading_shadow_file"]
    assert engine.process(as_event(miss, 5)) == []


# --- import_sigma ------------------------------------------------------------------------------------


def test_import_writes_one_file_per_rule_and_reports_skips(tmp_path):
    out = tmp_path / "imported"
    code, report = import_sigma([FIXTURES], out)
    assert code == 0, report
    assert {p.stem for p in out.glob("*.yaml")} == CONVERTED
    for rule_id in CONVERTED:
        assert f"converted {rule_id}" in report
        assert yaml.safe_load((out / f"{rule_id}.yaml").read_text(encoding="utf-8"))["id"] == rule_id
    for name, reason in SKIP_REASONS.items():
        [line] = [line for line in report.splitlines() if line.startswith("skipped ") and name in line]
        assert reason in line
    assert report.splitlines()[-1].startswith(f"{len(CONVERTED)} Sigma rule(s) converted")
    assert f"{len(SKIP_REASONS)} skipped" in report.splitlines()[-1]


def test_import_of_only_skipped_rules_is_not_an_error(tmp_path):
    code, report = import_sigma([SKIPPED / "win_security_susp_logon.yml"], tmp_path / "out")
    assert code == 0
    assert "product 'windows'" in report and "0 Sigma rule(s) converted" in report


def test_import_reports_a_failing_example(tmp_path, monkeypatch):
    import rules.detect.sigma as sigma

    real = sigma.examples

    def broken(match, event_types, program):
        examples = real(match, event_types, program)
        examples[0]["alerts"] = 2  # claims the positive event alerts twice
        return examples

    monkeypatch.setattr(sigma, "examples", broken)
    code, report = import_sigma([FIXTURES / "lnx_auth_sshd_max_auth_attempts.yml"], tmp_path)
    assert code == 1
    assert ("FAIL sigma_ssh_maximum_authentication_attempts_exceeded: an event built from the Sigma detection "
            "values: expected 2 alert(s), got 1") in report


def test_missing_path_and_unreadable_files_are_reported(tmp_path):
    (tmp_path / "broken.yml").write_text("title: [unclosed\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not yaml", encoding="utf-8")  # not a rule file name: ignored
    result = convert_sigma([tmp_path, tmp_path / "nope.yml"])
    reasons = {Path(s.file).name: s.reason for s in result.skipped}
    assert reasons["nope.yml"] == "no such file or directory"
    assert reasons["broken.yml"].startswith("could not load the Sigma file")
    assert "notes.txt" not in reasons


# --- modifiers, values, conditions -------------------------------------------------------------------


@pytest.mark.parametrize(("modifier", "value"), [
    ("base64offset|contains", "'whoami'"), ("base64", "'whoami'"), ("windash|contains", "' -s '"),
    ("wide", "'abc'"), ("utf16le", "'abc'"), ("gt", "5"), ("fieldref", "user"), ("exists", "true"),
    ("neq", "'root'"),
])
def test_unsupported_modifiers_are_skipped_naming_the_modifier(tmp_path, modifier, value):
    skip = only_skip(tmp_path, f"""
        selection:
            CommandLine|{modifier}: {value}
        condition: selection
    """)
    first = modifier.split("|")[0]
    if first == "utf16le":  # unknown to pySigma itself
        assert "utf16le" in skip.reason
    else:
        assert f"unsupported modifier {first!r}" in skip.reason, skip.reason


def test_wildcards_become_contains_startswith_endswith_or_regex(tmp_path):
    mapping = converted_match(tmp_path, r"""
        selection:
            user: 'adm*'
            command:
                - '*/shadow'
                - '*passwd*'
                - '/usr/bin/?at *shadow'
            tty|contains: 'pts'
            process|re|i: '^(sshd|sudo)$'
            source_ip|cidr: '203.0.113.0/24'
        condition: selection
    """)
    assert mapping["match"] == {"all": [
        {"field": "user", "startswith": "adm", "nocase": True},
        {"any": [{"field": "command", "endswith": "/shadow", "nocase": True},
                 {"field": "command", "contains": "passwd", "nocase": True},
                 {"field": "command", "regex": "^/usr/bin/.at .*shadow$", "nocase": True}]},
        {"field": "tty", "contains": "pts", "nocase": True},
        {"field": "process", "regex": "^(sshd|sudo)$", "nocase": True},
        {"field": "source_ip", "cidr": "203.0.113.0/24"},
    ]}
    data = mapping["tests"][0]["events"][0]["data"]
    assert data["source_ip"].startswith("203.0.113.") and data["user"] == "adm"


def test_keyword_wildcards_escape_regex_characters(tmp_path):
    mapping = converted_match(tmp_path, """
        keywords:
            - 'session opened for user root(uid=0) by *(uid=1000)'
        condition: keywords
    """)
    assert mapping["match"] == {"field": "raw", "nocase": True,
                                "regex": r"session opened for user root\(uid=0\) by .*\(uid=1000\)"}


def test_conditions_selectors_and_not(tmp_path):
    mapping = converted_match(tmp_path, """
        selection_failed:
            - 'Failed password'
        selection_invalid:
            - 'Invalid user'
        filter_office:
            SourceIp|cidr: '198.51.100.0/24'
        filter_monitor:
            User: 'nagios'
        condition: 1 of selection_* and not 1 of filter_*
    """, service="sshd")
    assert mapping["match"] == {"all": [
        {"any": [{"field": "raw", "contains": "Failed password", "nocase": True},
                 {"field": "raw", "contains": "Invalid user", "nocase": True}]},
        {"not": {"any": [{"field": "source_ip", "cidr": "198.51.100.0/24"},
                         {"field": "user", "eq": "nagios", "nocase": True}]}},
    ]}


def test_all_of_them_cased_and_null(tmp_path):
    mapping = converted_match(tmp_path, """
        sel_user:
            User|cased: 'Admin'
        sel_tty:
            tty: null
        condition: all of them
    """)
    assert mapping["match"] == {"all": [{"field": "user", "eq": "Admin"}, {"field": "tty", "exists": False}]}


def test_field_all_modifier_and_level_mapping(tmp_path):
    path = sigma_rule(tmp_path, "probe_rule", """
        selection:
            CommandLine|contains|all: ['chmod', '+s']
        condition: selection
    """, service="sudo")
    path.write_text(path.read_text().replace("level: low", "level: informational"))
    [(rule_id, mapping)] = convert_sigma([path]).rules
    assert rule_id == "sigma_probe_rule" and mapping["severity"] == "info"
    assert mapping["match"] == {"all": [{"field": "command", "contains": "chmod", "nocase": True},
                                        {"field": "command", "contains": "+s", "nocase": True}]}
    assert mapping["tests"][0]["events"][0]["data"]["command"] == "chmod +s"


def test_rules_without_a_buildable_example_are_skipped(tmp_path):
    skip = only_skip(tmp_path, """
        keywords:
            - 'Accepted'
        condition: not keywords
    """)
    assert skip.reason.startswith("could not build an example")
    skip = only_skip(tmp_path, """
        selection:
            User|re: '[^a-z]+'
        condition: selection
    """)
    assert skip.reason.startswith("could not build an example")


def test_other_log_sources_are_skipped(tmp_path):
    assert "service 'auditd'" in only_skip(tmp_path, """
        keywords: ['type=EXECVE']
        condition: keywords
    """, service="auditd").reason
    assert "product 'macos'" in only_skip(tmp_path, """
        keywords: ['sudo']
        condition: keywords
    """, product="macos").reason


def test_duplicate_titles_get_distinct_ids(tmp_path):
    body = """
        keywords: ['Failed password']
        condition: keywords
    """
    sigma_rule(tmp_path / "a", "same_title", body)
    sigma_rule(tmp_path / "b", "same_title", body)
    ids = [rule_id for rule_id, _ in convert_sigma([tmp_path]).rules]
    assert ids == ["sigma_same_title", "sigma_same_title_11111111"]


def test_example_timestamps_are_fixed():
    [(_, mapping)] = convert_sigma([FIXTURES / "lnx_auth_sshd_max_auth_attempts.yml"]).rules
    assert {e["ts"] for t in mapping["tests"] for e in t["events"]} == {"2026-03-02T11:00:00Z"}


def test_import_reports_a_rule_that_fails_to_load(tmp_path, monkeypatch):
    import rules.detect.sigma as sigma

    monkeypatch.setattr(sigma, "SEVERITIES", {**sigma.SEVERITIES, "medium": "urgent"})
    code, report = import_sigma([FIXTURES / "lnx_auth_sshd_max_auth_attempts.yml"], tmp_path)
    assert code == 1
    assert "load error:" in report and "sigma_ssh_maximum_authentication_attempts_exceeded.yaml" in report


def test_a_list_of_conditions_is_any_of_them(tmp_path):
    mapping = converted_match(tmp_path, """
        sel_a: ['Failed password']
        sel_b:
            User: 'root'
        condition:
            - sel_a
            - sel_b
    """)
    assert mapping["match"] == {"any": [{"field": "raw", "contains": "Failed password", "nocase": True},
                                        {"field": "user", "eq": "root", "nocase": True}]}
    assert "account.change" not in mapping["event_type"]
