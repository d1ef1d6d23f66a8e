"""The engine: single-event rules, thresholds, sequences, bounded memory, determinism, warm restart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rules.detect import Engine, EngineEvent, load_rules
from tests.rules.test_detect_support import T0, ev, load_one, write_rule

BRUTE = """
event_type: auth.failure
match: {field: action, eq: failed_password}
threshold:
  count: 8
  window: 120s
  group_by: [source_ip]
"""

SEQUENCE = """
sequence:
  within: 10m
  group_by: [source_ip]
  steps:
    - {event_type: auth.failure, count: 5}
    - {event_type: auth.success}
"""


def fail(seconds, ip="203.0.113.9", host="web01", id=None):
    return ev("auth.failure", seconds, host, id=id, action="failed_password", source_ip=ip)


def feed(engine, events):
    return [d for e in events for d in engine.process(e)]


@pytest.fixture
def brute(tmp_path):
    return load_one(tmp_path, "ssh_lnx_brute_force", BRUTE)


def test_single_event_rule_fires_once_per_matching_event(tmp_path):
    engine = Engine(load_one(tmp_path, "file_lnx_shadow", "event_type: file.changed\n"
                                                          "match: {field: path, eq: /etc/shadow}\n"))
    [det] = engine.process(ev("file.changed", 0, "db01", id=7, path="/etc/shadow"))
    assert (det.rule_id, det.severity, det.host, det.count, det.event_ids, det.group) == (
        "file_lnx_shadow", "high", "db01", 1, (7,), ())
    assert det.first_ts == det.last_ts == T0
    assert engine.process(ev("file.changed", 1, "db01", path="/etc/passwd")) == []
    assert engine.process(ev("file.read", 1, "db01", path="/etc/shadow")) == []
    assert engine.stats["events"] == 3 and engine.stats["detections"] == 1


def test_threshold_fires_on_the_eighth_event_not_the_seventh(brute):
    engine = Engine(brute)
    assert feed(engine, [fail(i * 5, id=i + 1) for i in range(7)]) == []
    [det] = engine.process(fail(35, id=8))
    assert det.count == 8 and det.event_ids == tuple(range(1, 9))
    assert det.first_ts == T0 and det.last_ts == T0 + timedelta(seconds=35)
    assert det.group == (("source_ip", "203.0.113.9"),)
    assert det.key == '["ssh_lnx_brute_force", "web01", ["203.0.113.9"]]'


def test_threshold_resets_after_firing(brute):
    engine = Engine(brute)
    assert len(feed(engine, [fail(i) for i in range(8)])) == 1
    assert feed(engine, [fail(8 + i) for i in range(7)]) == []  # 7 more: the count started again
    assert len(engine.process(fail(20))) == 1


def test_threshold_window_expiry(brute):
    engine = Engine(brute)
    # Seven early failures, then a gap longer than the window: they no longer count.
    assert feed(engine, [fail(i) for i in range(7)]) == []
    assert feed(engine, [fail(200 + i) for i in range(7)]) == []
    assert len(engine.process(fail(207))) == 1
    # Failures spread 20 s apart: eight of them span 140 s > 120 s, so the 8th does not fire...
    engine = Engine(brute)
    assert feed(engine, [fail(1000 + i * 20) for i in range(8)]) == []
    # ...but a 9th at the same instant as the 8th does: failures 2..9 span exactly 120 s (inclusive).
    assert feed(engine, [fail(1000 + 7 * 20)]) != []


def test_threshold_groups_by_source_and_host(brute):
    engine = Engine(brute)
    events = []
    for i in range(7):
        events += [fail(i, ip="198.51.100.1"), fail(i, ip="198.51.100.2"), fail(i, ip="198.51.100.1", host="web02")]
    assert feed(engine, events) == []
    [det] = engine.process(fail(10, ip="198.51.100.2"))
    assert det.group == (("source_ip", "198.51.100.2"),) and det.host == "web01"
    [det] = engine.process(fail(10, ip="198.51.100.1", host="web02"))
    assert det.host == "web02"


def test_threshold_missing_group_field_groups_as_none(brute):
    engine = Engine(brute)
    events = [ev("auth.failure", i, "web01", action="failed_password") for i in range(8)]
    [det] = feed(engine, events)
    assert det.group == (("source_ip", None),)


def test_out_of_order_events_do_not_crash_and_late_ones_are_not_counted(brute):
    engine = Engine(brute)
    assert feed(engine, [fail(500 + i) for i in range(6)]) == []
    assert engine.process(fail(100)) == []  # far older than the window: ignored
    assert engine.process(fail(499)) == []  # slightly out of order: counted (7th)
    [det] = engine.process(fail(498))
    assert det.first_ts == T0 + timedelta(seconds=498) and det.last_ts == T0 + timedelta(seconds=505)


@pytest.fixture
def sequence(tmp_path):
    return load_one(tmp_path, "auth_lnx_success_after_failures", SEQUENCE)


def success(seconds, ip="203.0.113.9", id=None):
    return ev("auth.success", seconds, "web01", id=id, source_ip=ip)


def test_sequence_five_failures_then_success_fires(sequence):
    engine = Engine(sequence)
    assert feed(engine, [fail(i * 10, id=i + 1) for i in range(5)]) == []
    [det] = engine.process(success(60, id=6))
    assert det.count == 6 and det.event_ids == (1, 2, 3, 4, 5, 6)
    assert det.first_ts == T0 and det.last_ts == T0 + timedelta(seconds=60)
    assert engine.process(success(61)) == []  # the group reset


def test_sequence_needs_all_failures_and_order(sequence):
    engine = Engine(sequence)
    assert feed(engine, [fail(i) for i in range(4)] + [success(10)]) == []  # only four failures
    engine = Engine(sequence)
    assert feed(engine, [success(0)] + [fail(1 + i) for i in range(5)]) == []  # success first
    engine = Engine(sequence)
    assert feed(engine, [fail(i, ip="198.51.100.1") for i in range(5)] + [success(10, ip="198.51.100.2")]) == []


def test_sequence_too_slow_does_not_fire(sequence):
    engine = Engine(sequence)
    assert feed(engine, [fail(i * 10) for i in range(5)] + [success(11 * 60)]) == []
    assert feed(engine, [fail(10_000 + i * 200) for i in range(5)] + [success(10_000 + 801)]) == []


def test_sequence_extra_failures_slide_the_start(sequence):
    engine = Engine(sequence)
    # Eight failures over 9 minutes, then success 4 minutes after the last: the latest five still fit.
    events = [fail(i * 70, id=i + 1) for i in range(8)] + [success(8 * 70 + 10, id=9)]
    [det] = feed(engine, events)
    assert det.event_ids == (4, 5, 6, 7, 8, 9)


def test_bounded_memory_evicts_least_recently_active_groups(brute):
    engine = Engine(brute, max_groups=50)
    for i in range(5_000):
        engine.process(fail(i * 0.001, ip=f"10.0.{i // 256}.{i % 256}"))
        assert engine.live_groups() <= 50
    stats = engine.stats
    assert stats["evicted_groups"] == 4_950 == stats["evicted_groups:ssh_lnx_brute_force"]
    # The most recently active group survived eviction and can still reach its threshold.
    recent = "10.0.19.135"  # i == 4999
    assert feed(engine, [fail(10 + j, ip=recent) for j in range(7)]) != []


def test_expired_groups_are_dropped_as_time_advances(brute):
    engine = Engine(brute)
    for i in range(300):
        engine.process(fail(0, ip=f"10.1.0.{i}"))
    assert engine.live_groups() == 300
    engine.process(fail(10_000, ip="10.9.9.9"))
    assert engine.live_groups() == 1
    assert engine.stats["evicted_groups"] == 0 and engine.stats["expired_groups"] == 300


def test_output_is_deterministic(tmp_path):
    rules_dir = tmp_path / "rules"
    write_rule(rules_dir, "ssh_lnx_brute_force", BRUTE)
    write_rule(rules_dir, "auth_lnx_success_after_failures", SEQUENCE)
    write_rule(rules_dir, "auth_any_any_failure", "event_type: auth.failure\n")
    ruleset = load_rules([rules_dir])
    events = []
    for i in range(400):
        ip = f"192.0.2.{(i * 7) % 3}"
        events.append(fail(i * 3 + (i % 5), ip=ip, id=i) if i % 9 else success(i * 3, ip=ip, id=i))
    first = feed(Engine(ruleset), events)
    second = feed(Engine(ruleset), events)
    assert first == second
    assert {d.rule_id for d in first} == {"auth_any_any_failure", "ssh_lnx_brute_force",
                                          "auth_lnx_success_after_failures"}
    rule_order = [d.rule_id for d in Engine(ruleset).process(fail(0))]
    assert rule_order == sorted(rule_order) == ["auth_any_any_failure"]
    one_event = feed(Engine(ruleset), [fail(i) for i in range(8)])
    assert [d.rule_id for d in one_event[-2:]] == ["auth_any_any_failure", "ssh_lnx_brute_force"]


def test_warm_rebuilds_state_across_a_restart(brute):
    before = Engine(brute)
    events = [fail(i * 5, id=i + 1) for i in range(6)]
    assert feed(before, events) == []
    after = Engine(brute)  # "restart": replay the last max_window_s of history without emitting
    assert brute.max_window_s == 120
    for event in events:
        assert after.warm(event) is None
    assert after.stats["detections"] == 0 and after.stats["warmed"] == 6
    assert after.process(fail(30, id=7)) == []
    [det] = after.process(fail(35, id=8))
    assert det.event_ids == tuple(range(1, 9))


def test_event_ids_are_capped_at_the_latest_twenty(tmp_path):
    ruleset = load_one(tmp_path, "ssh_lnx_many", "event_type: auth.failure\nthreshold: {count: 30, window: 1h}\n")
    engine = Engine(ruleset)
    events = [fail(i, id=i) for i in range(29)] + [fail(29, id=None)]
    [det] = feed(engine, events)
    assert det.count == 30 and det.event_ids == tuple(range(9, 29))


def test_engine_event_requires_an_aware_timestamp():
    with pytest.raises(ValueError, match="timezone-aware"):
        EngineEvent(type="x", ts=T0.replace(tzinfo=None), host="h", data={})


def test_sequence_rule_level_match_and_inherited_event_type(tmp_path):
    body = """
        event_type: proc.exec
        match: {field: user, eq: www-data}
        sequence:
          within: 1m
          steps:
            - {match: {field: exe, endswith: /curl}}
            - {match: {field: exe, endswith: /sh}, count: 2}
    """
    engine = Engine(load_one(tmp_path, "proc_lnx_download_then_shell", body))
    run = [ev("proc.exec", 0, user="www-data", exe="/usr/bin/curl"), ev("proc.exec", 1, user="root", exe="/bin/sh"),
           ev("proc.exec", 2, user="www-data", exe="/bin/sh")]
    assert feed(engine, run) == []  # root's shell does not count: the rule-level match applies to every step
    [det] = engine.process(ev("proc.exec", 3, user="www-data", exe="/bin/sh"))
    assert det.count == 3


def test_sequence_step_without_event_type_needs_a_rule_level_one(tmp_path):
    from rules.detect import RuleLoadErrors

    body = "sequence:\n  within: 1m\n  steps:\n    - {count: 2}\n    - {event_type: b}\n"
    with pytest.raises(RuleLoadErrors) as info:
        load_one(tmp_path, "proc_lnx_bad_sequence", body)
    [error] = info.value.errors
    assert error.line == 8 and "missing key 'event_type'" in error.message
