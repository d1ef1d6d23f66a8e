"""Loading rule files: the good set, and every error of a broken set reported with file and line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import rules
from rules.detect import DEFAULT_RULES_DIR, LoadError, RuleLoadErrors, load_rules
from tests.rules.test_detect_support import rule_text, write_rule

FIXTURES = Path(__file__).parent / "fixtures" / "detect"


def errors_of(paths) -> list[LoadError]:
    with pytest.raises(RuleLoadErrors) as info:
        load_rules(paths)
    return info.value.errors


def test_good_fixtures_load_into_an_indexed_ruleset():
    ruleset = load_rules([FIXTURES / "good"])
    assert list(ruleset.rules) == sorted(ruleset.rules) == [
        "auth_lnx_success_after_failures", "file_lnx_shadow_modified", "net_any_unexpected_listen_port",
        "ssh_lnx_brute_force"]
    brute = ruleset.rules["ssh_lnx_brute_force"]
    assert brute.title == {"vi": "Dò mật khẩu SSH", "en": "SSH brute force"}
    assert (brute.status, brute.severity, brute.suppress_s) == ("stable", "high", 3600)
    assert brute.event_types == frozenset({"auth.failure"})
    assert brute.threshold.count == 8 and brute.threshold.window_s == 120
    assert brute.threshold.group_by == ("source_ip",)
    assert brute.tags == ("attack.credential_access", "attack.t1110.001")
    assert brute.file.endswith("ssh_lnx_brute_force.yaml")
    assert len(brute.tests) == 3 and len(brute.tests[0].events) == 8  # repeat expanded
    assert brute.tests[0].events[-1].ts.second == 35
    seq = ruleset.rules["auth_lnx_success_after_failures"]
    assert seq.event_types == frozenset({"auth.failure", "auth.success"})
    assert [s.count for s in seq.sequence.steps] == [5, 1]
    assert [r.id for r in ruleset.by_event_type("auth.failure")] == [
        "auth_lnx_success_after_failures", "ssh_lnx_brute_force"]
    assert [r.id for r in ruleset.by_event_type("net.listen_changed")] == ["net_any_unexpected_listen_port"]
    assert ruleset.by_event_type("nothing") == []
    assert ruleset.max_window_s == 600
    assert len(ruleset.files) == 4


def test_every_error_of_every_broken_file_in_one_run():
    errors = errors_of([FIXTURES / "good", FIXTURES / "bad", FIXTURES / "dup"])
    found = {(Path(e.file).name, e.line) for e in errors}
    expected = {
        ("acct_lnx_syntax_error.yaml", 7),  # YAML syntax
        ("agent_any_no_negative.yaml", 7),  # missing negative example
        ("file_lnx_bad_regexes.yaml", 8),  # regex does not compile
        ("file_lnx_bad_regexes.yaml", 9),  # catastrophic regex
        ("file_lnx_id_mismatch.yaml", 1),  # id != stem
        ("net_any_unknown_operator.yaml", 10),  # unknown operator
        ("ssh_lnx_wrong_type.yaml", 4),  # bad enum
        ("ssh_lnx_wrong_type.yaml", 7),  # wrong type
        ("ssh_lnx_wrong_type.yaml", 8),  # bad duration
        ("file_lnx_shadow_modified.yaml", 1),  # duplicate id
    }
    assert found == expected, "\n".join(map(str, errors))
    text = "\n".join(map(str, errors))
    assert "YAML syntax error" in text and "flow sequence on line 6" in text
    assert "unknown operator 'equals'" in text
    assert "threshold.count must be an integer" in text
    assert "does not match the file name 'file_lnx_id_mismatch'" in text
    assert "regex does not compile" in text and "'(a+)+$' is too slow" in text
    assert "negative example" in text
    dup = next(e for e in errors if "duplicate id" in e.message)
    assert "dup" in dup.file and "good/file_lnx_shadow_modified.yaml" in dup.message
    assert not any("deprecated" in e.file for e in errors)  # deprecated/ is skipped
    # The valid third regex of the same leaf list is not reported.
    assert not any("gshadow" in e.message for e in errors)


def test_load_error_text_is_file_colon_line():
    assert str(LoadError("a/b.yaml", 3, "bad")) == "a/b.yaml:3: bad"
    assert str(LoadError("a/b.yaml", None, "bad")) == "a/b.yaml: bad"
    exc = RuleLoadErrors([LoadError("x.yaml", 1, "one"), LoadError("y.yaml", 2, "two")])
    assert str(exc) == "x.yaml:1: one\ny.yaml:2: two"


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)*b", "(.*a){12}", r"^(\w+\s?)*$"])
def test_catastrophic_regexes_are_rejected(tmp_path, pattern):
    body = f"event_type: x.y\nmatch: {{field: s, regex: '{pattern}'}}\n"
    errors = errors_of([write_rule(tmp_path, "file_lnx_slow_regex", body)])
    assert [(e.line, "too slow" in e.message) for e in errors] == [(6, True)]


def test_hundred_rules_with_ordinary_regexes_are_not_mistaken_for_slow_ones(tmp_path):
    """The backtracking probe must pass ordinary patterns (how fast loading is belongs to bench/detect.py,
    not to a timed test that fails on a busy machine)."""
    shapes = [r"^Accepted (password|publickey) for (\S+) from ([0-9.]+) port \d+{n}",
              r"\bsudo\b.*COMMAND=/(usr/)?bin/(ba|z|da)?sh{n}", r"^/etc/(passwd|shadow|sudoers(\.d/.*)?){n}$",
              r"[A-Za-z0-9+/]{{40,}}={{0,2}}{n}", r"(wget|curl)\s+https?://\S+\s*\|\s*(ba)?sh{n}",
              r"(?:\d{{1,3}}\.){{3}}\d{{1,3}}:{n}", r".*\.php{n}$"]
    stamp = time.time_ns()  # patterns never seen by this process: no cached verdicts
    for i in range(100):
        pattern = shapes[i % len(shapes)].format(n=f"x{stamp}_{i}")
        write_rule(tmp_path, f"file_lnx_rule_{i:03}", f"event_type: x.y\nmatch: {{field: s, regex: '{pattern}'}}\n")
    ruleset = load_rules([tmp_path])
    assert len(ruleset.rules) == 100


def test_structural_errors_name_their_lines(tmp_path):
    write_rule(tmp_path, "net_any_both", """
        event_type: x.y
        threshold: {count: 2, window: 60}
        sequence:
          within: 60
          steps: [{event_type: a}, {event_type: b}]
    """)
    write_rule(tmp_path, "NetAnyCamel", "event_type: x.y\n")
    write_rule(tmp_path, "net_any_keys", "event_type: x.y\nfrobnicate: 1\n")
    write_rule(tmp_path, "net_any_dupkey", "event_type: x.y\nstatus: live\n")
    (tmp_path / "net_any_enum.yaml").write_text(rule_text("net_any_enum", "event_type: x.y\n").replace(
        "status: test", "status: live"), encoding="utf-8")
    write_rule(tmp_path, "net_any_tags", "event_type: x.y\ntags: [Attack.T1110]\nsuppress: -1\n")
    (tmp_path / "net_any_missing.yaml").write_text("id: net_any_missing\nevent_type: x.y\n", encoding="utf-8")
    (tmp_path / "net_any_empty.yaml").write_text("", encoding="utf-8")
    (tmp_path / "net_any_list.yml").write_text("- id: net_any_list\n", encoding="utf-8")
    text = "\n".join(str(e) for e in errors_of([tmp_path]))
    assert "net_any_both.yaml:6: threshold and sequence are exclusive" in text
    assert "NetAnyCamel.yaml:1: id 'NetAnyCamel' is not snake_case" in text
    assert "net_any_keys.yaml:6: unknown key 'frobnicate'" in text
    assert "net_any_dupkey.yaml:6: duplicate key 'status'" in text
    assert "net_any_enum.yaml:3: status must be one of experimental, test, stable, deprecated, not 'live'" in text
    assert "net_any_tags.yaml:6: tag 'Attack.T1110' must be lower case" in text
    assert "net_any_tags.yaml:7: suppress: duration must not be negative" in text
    for key in ("title", "status", "severity", "tests"):
        assert f"net_any_missing.yaml:1: missing key '{key}'" in text
    assert "net_any_empty.yaml" in text and "net_any_list.yml:1: a rule file must be a mapping" in text


def test_malformed_example_events(tmp_path):
    tests = """
        tests:
          - name: p
            alerts: 1
            events:
              - {type: x.y, ts: "2026-03-01T08:00:00", host: h1}
              - {type: x.y, host: h1, every: 5s}
              - {type: x.y, ts: "2026-03-01T08:00:00Z", data: {a: 1}}
              - {type: x.y, ts: "2026-03-01T08:00:00Z", host: h1, data: [1, 2]}
              - {type: x.y, ts: "2026-03-01T08:00:00Z", host: h1, repeat: 0, every: 1s}
          - name: n
            alerts: -1
            events: []
    """
    write_rule(tmp_path, "net_any_examples", "event_type: x.y\n", tests)
    text = "\n".join(str(e) for e in errors_of([tmp_path]))
    assert ":10: ts must be an ISO 8601 time with a zone" in text  # naive time
    assert ":11: every is only meaningful with repeat" in text
    assert ":12: missing key 'host'" in text
    assert ":13: data must be a mapping" in text
    assert ":14: repeat must be an integer >= 1" in text
    assert ":16: alerts must be an integer >= 0" in text
    assert ":17: events must be a non-empty list" in text


def test_missing_positive_example(tmp_path):
    tests = """
        tests:
          - {name: n, alerts: 0, events: [{type: x.y, ts: "2026-03-01T08:00:00Z", host: h1}]}
    """
    write_rule(tmp_path, "net_any_no_positive", "event_type: x.y\n", tests)
    assert [(e.line, e.message) for e in errors_of([tmp_path])] == [
        (7, "tests need at least one positive example (alerts >= 1)")]


def test_duplicate_ids_across_directories_name_both_files(tmp_path):
    first = write_rule(tmp_path / "a", "net_any_twice", "event_type: x.y\n")
    second = write_rule(tmp_path / "b", "net_any_twice", "event_type: x.y\n")
    [error] = errors_of([tmp_path / "a", tmp_path / "b"])
    assert error.file == str(second) and error.line == 1 and str(first) in error.message


def test_files_directories_and_missing_paths(tmp_path):
    rule = write_rule(tmp_path / "r", "net_any_file", "event_type: x.y\n")
    assert list(load_rules([rule]).rules) == ["net_any_file"]
    assert list(load_rules([rule, tmp_path / "r"]).rules) == ["net_any_file"]  # same file twice is one file
    (tmp_path / "r" / "notes.txt").write_text("not a rule", encoding="utf-8")
    write_rule(tmp_path / "r" / "deprecated", "net_any_old", "event_type: [broken\n")
    assert list(load_rules([tmp_path / "r"]).rules) == ["net_any_file"]
    [error] = errors_of([tmp_path / "nope"])
    assert error.message == "no such file or directory"
    (tmp_path / "empty").mkdir()
    assert len(load_rules([tmp_path / "empty"]).rules) == 0


def test_default_rules_dir_is_the_shipped_detections_directory():
    assert Path(rules.__file__).parent / "data" / "detections" == DEFAULT_RULES_DIR


def test_an_impossible_date_is_a_load_error_with_its_line(tmp_path):
    """PyYAML builds dates while loading; 2026-02-30 must be reported like any other mistake, not crash."""
    (tmp_path / "net_any_date.yaml").write_text("id: net_any_date\ntitle: t\nreviewed: 2026-02-30\n",
                                                encoding="utf-8")
    text = "\n".join(str(e) for e in errors_of([tmp_path]))
    assert "net_any_date.yaml:3: invalid value '2026-02-30'" in text
