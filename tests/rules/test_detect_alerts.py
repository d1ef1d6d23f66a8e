"""Folding detections into alerts with each rule's suppress window."""

from __future__ import annotations

from datetime import timedelta

from rules.detect import Detection, Engine, fold, load_rules
from tests.rules.test_detect_support import T0, ev, write_rule


def det(rule_id, seconds, key="k1", ids=(1,), last=None, host="web01"):
    return Detection(rule_id=rule_id, severity="high", host=host, group=(("source_ip", "x"),), key=key,
                     first_ts=T0 + timedelta(seconds=seconds),
                     last_ts=T0 + timedelta(seconds=seconds if last is None else last), count=1, event_ids=ids)


def ruleset(tmp_path):
    d = tmp_path / "rules"
    write_rule(d, "ssh_lnx_suppressed", "event_type: auth.failure\nsuppress: 1h\n")
    write_rule(d, "ssh_lnx_unsuppressed", "event_type: auth.failure\n")
    return load_rules([d])


def test_same_key_within_suppress_folds(tmp_path):
    rs = ruleset(tmp_path)
    alerts = fold([det("ssh_lnx_suppressed", 0, ids=(1, 2)), det("ssh_lnx_suppressed", 600, ids=(2, 3), last=700),
                   det("ssh_lnx_suppressed", 700 + 3601, ids=(4,))], rs)
    assert [(a.count, a.event_ids) for a in alerts] == [(2, (1, 2, 3)), (1, (4,))]
    first = alerts[0]
    assert first.first_seen == T0 and first.last_seen == T0 + timedelta(seconds=700)
    assert (first.rule_id, first.severity, first.host, first.key) == ("ssh_lnx_suppressed", "high", "web01", "k1")
    assert first.group == (("source_ip", "x"),)


def test_suppress_boundary_is_inclusive(tmp_path):
    rs = ruleset(tmp_path)
    assert [a.count for a in fold([det("ssh_lnx_suppressed", 0), det("ssh_lnx_suppressed", 3600)], rs)] == [2]
    assert [a.count for a in fold([det("ssh_lnx_suppressed", 0), det("ssh_lnx_suppressed", 3601)], rs)] == [1, 1]


def test_different_keys_never_fold(tmp_path):
    alerts = fold([det("ssh_lnx_suppressed", 0, key="a"), det("ssh_lnx_suppressed", 1, key="b")], ruleset(tmp_path))
    assert [a.key for a in alerts] == ["a", "b"]


def test_suppress_zero_makes_every_detection_its_own_alert(tmp_path):
    alerts = fold([det("ssh_lnx_unsuppressed", 0), det("ssh_lnx_unsuppressed", 0)], ruleset(tmp_path))
    assert [a.count for a in alerts] == [1, 1]


def test_folded_event_ids_keep_the_latest_twenty(tmp_path):
    detections = [det("ssh_lnx_suppressed", i, ids=(i * 3, i * 3 + 1, i * 3 + 2)) for i in range(10)]
    [alert] = fold(detections, ruleset(tmp_path))
    assert alert.count == 10 and alert.event_ids == tuple(range(10, 30))


def test_engine_output_folds_end_to_end(tmp_path):
    rs = ruleset(tmp_path)
    engine = Engine(rs)
    detections = [d for i in range(5) for d in engine.process(ev("auth.failure", i * 60, id=i + 1, source_ip="x"))]
    alerts = fold(detections, rs)
    by_rule = {a.rule_id: a for a in alerts}
    assert by_rule["ssh_lnx_suppressed"].count == 5 and by_rule["ssh_lnx_suppressed"].event_ids == (1, 2, 3, 4, 5)
    assert sum(a.rule_id == "ssh_lnx_unsuppressed" for a in alerts) == 5
