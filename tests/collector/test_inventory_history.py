"""Inventory history (valid_from/valid_to) and the change events derived from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.wire import section_hash
from collector.events import service as events
from collector.hosts import service as hosts
from collector.scope import Scope
from collector.units import service as units
from tests.collector import helpers as h

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def apply(db, host_id, at, **sections):
    with db.transaction() as s:
        host = hosts.get(s, scope=Scope.everything(), host_id=host_id)[0]
        derived = hosts.update_from_inventory(
            s, host=host, sections={k: (section_hash(v), v) for k, v in sections.items()}, at=at)
        events.add_many(s, rows=[{"unit_id": host.unit_id, "host_id": host.id, "type": t, "ts": at,
                                  "received_at": at, "origin": "collector", "data": d} for t, d in derived])
        return derived


def make_host(db) -> int:
    h.seed_units(db)
    with db.transaction() as s:
        unit = units.get_by_code(s, code="D1")
        return hosts.find_or_create(s, unit_id=unit.id, identity=h.identity(), now=T0).id


def test_first_inventory_is_a_baseline_then_changes_become_events(db):
    host_id = make_host(db)
    baseline = apply(db, host_id, T0, packages=[h.PKG], listening_ports=[h.PORT], users=[h.USER],
                     services=[h.SERVICE])
    assert baseline == []
    newer = dict(h.PKG, version="3.0.15-1~deb12u1")
    curl = dict(h.PKG, name="curl", source="curl", version="7.88.1-10")
    web = dict(h.PORT, port=8080, process="python3")
    bob = dict(h.USER, name="bob", uid=1001)
    changed = apply(db, host_id, T0 + timedelta(hours=1), packages=[newer, curl], listening_ports=[web],
                    users=[bob], services=[dict(h.SERVICE, enabled="disabled")])
    kinds = sorted((t, d.get("name") or d.get("port")) for t, d in changed)
    assert kinds == sorted([
        ("package.upgraded", "openssl"), ("package.installed", "curl"), ("port.opened", 8080),
        ("port.closed", 22), ("account.added", "bob"), ("account.removed", "alice"),
        ("service.disabled", "ssh.service")])
    upgraded = next(d for t, d in changed if t == "package.upgraded")
    assert upgraded["from_version"] == h.PKG["version"] and upgraded["version"] == newer["version"]


def test_unchanged_section_writes_nothing_and_history_answers_as_of(db):
    host_id = make_host(db)
    apply(db, host_id, T0, packages=[h.PKG])
    assert apply(db, host_id, T0 + timedelta(hours=1), packages=[h.PKG]) == []
    newer = dict(h.PKG, version="3.0.15-1~deb12u1")
    apply(db, host_id, T0 + timedelta(days=2), packages=[newer])
    with db.session() as s:
        now = hosts.inventory_of(s, scope=Scope.everything(), host_id=host_id)
        then = hosts.inventory_of(s, scope=Scope.everything(), host_id=host_id, as_of=T0 + timedelta(days=1))
        before = hosts.inventory_of(s, scope=Scope.everything(), host_id=host_id, as_of=T0 - timedelta(days=1))
    assert [p["version"] for p in now["packages"]] == [newer["version"]]
    assert [p["version"] for p in then["packages"]] == [h.PKG["version"]]
    assert before["packages"] == []


def test_rpm_style_duplicate_packages_are_kept_side_by_side(db):
    host_id = make_host(db)
    k1 = {"name": "kernel", "version": "5.14.0-1", "arch": "x86_64", "manager": "rpm"}
    k2 = dict(k1, version="5.14.0-2")
    apply(db, host_id, T0, packages=[k1, k2])
    with db.session() as s:
        inv = hosts.inventory_of(s, scope=Scope.everything(), host_id=host_id)
    assert sorted(p["version"] for p in inv["packages"]) == ["5.14.0-1", "5.14.0-2"]


def test_events_and_hosts_are_scoped_by_unit(db):
    host_id = make_host(db)
    apply(db, host_id, T0, listening_ports=[h.PORT])
    apply(db, host_id, T0 + timedelta(hours=1), listening_ports=[])
    with db.session() as s:
        d1 = units.get_by_code(s, code="D1").id
        d2 = units.get_by_code(s, code="D2").id
        own = Scope.units(frozenset({d1}))
        other = Scope.units(frozenset({d2}))
        assert [e.type for e in events.list_(s, scope=own, host_id=host_id)] == ["port.closed"]
        assert events.list_(s, scope=other, host_id=host_id) == []
        assert hosts.list_(s, scope=other) == []
        assert len(hosts.list_(s, scope=own)) == 1
