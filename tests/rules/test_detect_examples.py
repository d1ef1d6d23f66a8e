"""Inline rule examples, and the lint/test reports for the CLI."""

from __future__ import annotations

from pathlib import Path

from rules.detect import lint_report, load_rules, run_examples, test_report
from tests.rules.test_detect_support import write_rule

FIXTURES = Path(__file__).parent / "fixtures" / "detect"

WRONG = """
  - name: claims a single failure alerts
    alerts: 1
    events:
      - {type: auth.failure, ts: "2026-03-01T08:00:00Z", host: h1, data: {source_ip: 192.0.2.1}}
  - name: claims eight failures do not alert
    alerts: 0
    events:
      - {repeat: 8, every: 1s, ts: "2026-03-01T08:00:00Z", type: auth.failure, host: h1, data: {source_ip: 192.0.2.1}}
"""


def test_good_fixtures_pass_all_examples():
    results = run_examples(load_rules([FIXTURES / "good"]))
    assert len(results) == 9 and all(r.passed for r in results), [r for r in results if not r.passed]
    first = results[0]
    assert (first.rule_id, first.name, first.expected, first.got, first.detail) == (
        "auth_lnx_success_after_failures", "five failures then a success", 1, 1, "")


def test_failing_examples_are_reported_with_expected_and_got(tmp_path):
    write_rule(tmp_path, "ssh_lnx_wrong_examples", "event_type: auth.failure\nthreshold: {count: 8, window: 1m}\n",
               "tests:\n" + WRONG)
    results = run_examples(load_rules([tmp_path]))
    assert [(r.expected, r.got, r.passed) for r in results] == [(1, 0, False), (0, 1, False)]
    assert results[0].detail == "expected 1 alert(s), got 0"
    assert results[1].detail.startswith("expected 0 alert(s), got 1")


def test_examples_are_sorted_by_time_and_get_ids_in_that_order(tmp_path):
    tests = """
        tests:
          - name: success written first but happening last
            alerts: 1
            events:
              - {type: auth.success, ts: "2026-03-01T08:05:00Z", host: h1, data: {source_ip: 192.0.2.1}}
              - {type: auth.failure, ts: "2026-03-01T08:00:00Z", host: h1, data: {source_ip: 192.0.2.1}}
          - name: only the success
            alerts: 0
            events:
              - {type: auth.success, ts: "2026-03-01T08:05:00Z", host: h1, data: {source_ip: 192.0.2.1}}
    """
    body = """
        sequence:
          within: 10m
          group_by: [source_ip]
          steps: [{event_type: auth.failure}, {event_type: auth.success}]
    """
    write_rule(tmp_path, "auth_lnx_ordered", body, tests)
    results = run_examples(load_rules([tmp_path]))
    assert [r.passed for r in results] == [True, True]


def test_examples_run_each_rule_alone(tmp_path):
    # Another rule on the same event type must not add alerts to this rule's examples.
    write_rule(tmp_path, "auth_any_every_failure", "event_type: auth.failure\n", """
        tests:
          - {name: one, alerts: 1, events: [{type: auth.failure, ts: "2026-03-01T08:00:00Z", host: h1}]}
          - {name: none, alerts: 0, events: [{type: auth.success, ts: "2026-03-01T08:00:00Z", host: h1}]}
    """)
    write_rule(tmp_path, "auth_any_root_failure", "event_type: auth.failure\nmatch: {field: user, eq: root}\n", """
        tests:
          - {name: root, alerts: 1, events: [{type: auth.failure, ts: "2026-03-01T08:00:00Z", host: h1,
                                              data: {user: root}}]}
          - {name: alice, alerts: 0, events: [{type: auth.failure, ts: "2026-03-01T08:00:00Z", host: h1,
                                               data: {user: alice}}]}
    """)
    assert all(r.passed for r in run_examples(load_rules([tmp_path])))


def test_lint_report():
    assert lint_report([FIXTURES / "good"]) == (0, "4 rules OK")
    code, text = lint_report([FIXTURES / "good", FIXTURES / "bad"])
    assert code == 1
    lines = text.splitlines()
    assert len(lines) == 9 and all(":" in line for line in lines)
    assert "acct_lnx_syntax_error.yaml:7: YAML syntax error" in lines[0]
    assert "ssh_lnx_wrong_type.yaml:8: threshold.window" in lines[-1]


def test_test_report(tmp_path):
    assert test_report([FIXTURES / "good"]) == (0, "9 examples in 4 rules: 9 passed, 0 failed")
    write_rule(tmp_path, "ssh_lnx_wrong_examples", "event_type: auth.failure\nthreshold: {count: 8, window: 1m}\n",
               "tests:\n" + WRONG)
    code, text = test_report([FIXTURES / "good", tmp_path])
    assert code == 1
    assert text.splitlines() == [
        "FAIL ssh_lnx_wrong_examples: claims a single failure alerts: expected 1 alert(s), got 0",
        "FAIL ssh_lnx_wrong_examples: claims eight failures do not alert: expected 0 alert(s), got 1 (events 1, 2, 3, "
        "4, 5, 6, 7, 8)",
        "11 examples in 5 rules: 9 passed, 2 failed"]
    code, text = test_report([FIXTURES / "bad"])
    assert code == 1 and text.splitlines()[-1] == "9 load error(s); no examples run"
