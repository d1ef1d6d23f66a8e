"""The detection stage on a real database: events → alerts, exactly once across restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from collector import pipeline
from collector.agents.models import Agent
from collector.alerts import service as alerts
from collector.alerts.models import Alert
from collector.detection import DetectionWorker
from collector.events.models import Event
from collector.ingest.schema import parse_batch
from collector.scope import Scope
from rules.detect import load_rules
from tests.collector import helpers as h

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def agent(client, db, enrolled) -> Agent:
    client.app.state.detection.stop()  # these tests drive their own worker, step by step
    with db.session() as s:
        return s.get(Agent, enrolled["agent_id"])


def failures(n: int, *, start: datetime = T0, ip: str = "203.0.113.9", every_s: int = 5) -> list[dict]:
    return [{"type": "auth.failure", "ts": (start + timedelta(seconds=i * every_s)).isoformat(),
             "data": {"action": "failed_password", "outcome": "failure", "user": "root", "source_ip": ip,
                      "process": "sshd", "pid": 4000 + i}} for i in range(n)]


def ingest(db, agent, items: list[dict]) -> None:
    result = pipeline.ingest_batch(db, agent=agent, batch=parse_batch(json.dumps(h.batch(items)).encode()))
    assert not result.duplicate


def worker(db, **kwargs) -> DetectionWorker:
    return DetectionWorker(db, load_rules(), **kwargs)


def brute_force_alerts(db) -> list[Alert]:
    with db.session() as s:
        return alerts.list_(s, scope=Scope.everything(), rule_id="ssh_lnx_brute_force")


def test_a_brute_force_burst_becomes_one_alert_scoped_to_the_unit(db, agent):
    ingest(db, agent, failures(8))
    w = worker(db)
    assert w.run_once() == 8
    [alert] = brute_force_alerts(db)
    assert alert.unit_id == agent.unit_id and alert.host_id == agent.host_id
    assert alert.severity == "high" and alert.event_count == 8 and alert.status == "new"
    assert alert.group.get("source_ip") == "203.0.113.9" and len(alert.event_ids) == 8
    with db.session() as s:
        ids = set(s.exec(select(Event.id).where(Event.type == "auth.failure")))
        other_unit = s.exec(select(func.count()).select_from(Alert)
                            .where(Scope.units(frozenset({agent.unit_id + 1})).where(Alert.unit_id))).one()
    assert set(alert.event_ids) == ids and other_unit == 0
    assert w.run_once() == 0 and w.stats.events == 8


def test_seven_failures_raise_nothing(db, agent):
    ingest(db, agent, failures(7))
    worker(db).run_once()
    assert brute_force_alerts(db) == []


def test_a_restart_neither_repeats_nor_forgets(db, agent):
    ingest(db, agent, failures(5))
    first = worker(db)
    assert first.run_once() == 5 and brute_force_alerts(db) == []
    # "Restart": a new worker resumes at the stored cursor and rebuilds the open window from storage.
    ingest(db, agent, failures(3, start=T0 + timedelta(seconds=30)))
    second = worker(db)
    assert second.run_once() == 3
    [alert] = brute_force_alerts(db)
    assert alert.event_count == 8 and second.stats.rebuilds == 1
    third = worker(db)
    assert third.run_once() == 0 and len(brute_force_alerts(db)) == 1


def test_repeats_within_the_suppress_window_fold_into_one_alert(db, agent):
    ingest(db, agent, failures(8))
    ingest(db, agent, failures(8, start=T0 + timedelta(minutes=3)))
    w = worker(db)
    while w.run_once():
        pass
    alerts_now = brute_force_alerts(db)
    rule = load_rules().rules["ssh_lnx_brute_force"]
    if rule.suppress_s >= 180:
        assert len(alerts_now) == 1 and alerts_now[0].count == 2 and alerts_now[0].event_count == 16
    else:
        assert len(alerts_now) == 2
    assert w.stats.detections == 2


def test_a_failed_write_rebuilds_state_and_loses_nothing(db, agent, monkeypatch):
    ingest(db, agent, failures(8))
    w = worker(db)
    real = alerts.record_many

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(alerts, "record_many", broken)
    with pytest.raises(RuntimeError):
        w.run_once()
    assert w.engine is None and brute_force_alerts(db) == []
    monkeypatch.setattr(alerts, "record_many", real)
    assert w.run_once() == 8 and len(brute_force_alerts(db)) == 1


def test_silent_agents_become_stale_events_once_until_they_speak_again(db, agent):
    with db.transaction() as s:
        live = s.get(Agent, agent.id)
        live.last_seen_at = datetime.now(UTC) - timedelta(hours=2)
        s.add(live)
    w = worker(db, stale_after_s=900)
    assert w.report_stale_agents() == 1
    assert w.report_stale_agents() == 0  # already reported
    w.run_once()
    with db.session() as s:
        [event] = s.exec(select(Event).where(Event.type == "agent.stale")).all()
        stale = alerts.list_(s, scope=Scope.everything(), rule_id="agent_any_stale")
    assert event.data["agent_id"] == agent.id and event.data["silent_s"] >= 7200 - 5
    assert len(stale) == 1 and stale[0].host_id == agent.host_id


def test_heartbeat_drop_counters_become_loss_events(db, agent):
    def beat(dropped: dict) -> dict:
        return {"type": "host.heartbeat", "ts": h.now_iso(), "data": {
            "agent_version": "0.1.0", "agent_uptime_s": 10.0, "dropped": dropped}}

    ingest(db, agent, [beat({"spool_full": 3})])
    ingest(db, agent, [beat({"spool_full": 3})])  # no growth: nothing new
    ingest(db, agent, [beat({"spool_full": 10, "rate_limited:authlog": 4})])
    with db.session() as s:
        losses = [e.data for e in s.exec(select(Event).where(Event.type == "agent.loss").order_by(Event.id))]
    assert losses == [
        {"reason": "spool_full", "dropped": 3, "total": 3, "module": None},
        {"reason": "rate_limited:authlog", "dropped": 4, "total": 4, "module": "authlog"},
        {"reason": "spool_full", "dropped": 7, "total": 10, "module": None},
    ]


def test_the_api_lists_alerts_within_the_callers_scope(client, db, agent):
    ingest(db, agent, failures(8))
    worker(db).run_once()
    h.add_user(db, "d2officer", "unit_officer", "D2")
    h.add_user(db, "analyst", "analyst")
    for name, expected in (("d2officer", 0), ("analyst", 1)):
        headers = {"Authorization": f"Bearer {h.api_token(db, name)}"}
        body = client.get("/api/v1/alerts", headers=headers).json()
        assert len([a for a in body["items"] if a["rule_id"] == "ssh_lnx_brute_force"]) == expected
    [alert] = brute_force_alerts(db)
    officer = {"Authorization": f"Bearer {h.api_token(db, 'd2officer')}"}
    assert client.get(f"/api/v1/alerts/{alert.id}", headers=officer).status_code == 404
    assert client.get("/api/v1/alerts?status=bogus", headers=officer).status_code == 422


def test_a_port_outside_the_units_allowlist_alerts_and_children_inherit(db, agent):
    from collector.units import service as units

    def opened(port: int) -> dict:
        return {"type": "inventory.snapshot", "ts": h.now_iso(), "data": {"sections": {"listening_ports": h.section(
            [{"proto": "tcp", "family": "ipv4", "address": "0.0.0.0", "port": 22, "pid": 1, "process": "sshd"},
             {"proto": "tcp", "family": "ipv4", "address": "0.0.0.0", "port": port, "pid": 2, "process": "nc"}])}}}

    ingest(db, agent, [opened(8080)])  # no allowlist anywhere yet: nothing to judge against
    w = worker(db)
    w.run_once()
    with db.transaction() as s:
        units.set_allowed_ports(s, code="P", ports=[22, 443])  # set on the province, inherited by D1
    ingest(db, agent, [opened(4444)])
    w2 = worker(db)
    w2.run_once()
    with db.session() as s:
        found = alerts.list_(s, scope=Scope.everything(), rule_id="port_any_unexpected_listening_port")
    assert [a.event_ids and a.host_id for a in found] == [agent.host_id]
    with db.session() as s:
        event = s.get(Event, found[0].event_ids[0])
    assert event.type == "port.opened" and event.data["port"] == 4444


def test_allowed_ports_are_validated(db, agent):
    from collector.errors import InvalidInput
    from collector.units import service as units

    with pytest.raises(InvalidInput), db.transaction() as s:
        units.set_allowed_ports(s, code="D1", ports=[22, 70000])
    with db.session() as s:
        assert units.effective_allowed_ports(s) == {}
