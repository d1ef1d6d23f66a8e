"""Alert triage in the service layer: workflow and its times, roles and unit scope, bulk changes,
suppressions (counted, never lost, expiring), the queue's filters and keyset pages, and A8 as of a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from collector.alerts import queue, suppressions, triage
from collector.alerts import service as alerts
from collector.alerts.models import Alert
from collector.audit.models import AuditEntry
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.hosts.models import Host
from collector.scope import Scope
from collector.scoring import service as scoring
from collector.types import utcnow
from tests.console import alerts_helpers as ah
from tests.console import helpers as h

ALL = Scope.everything()


@pytest.fixture
def world(db) -> h.World:
    w = h.seed_world(db)
    ah.add_people(db)
    return w


def status_of(db, alert_id: int) -> Alert:
    with db.session() as s:
        return alerts.get(s, scope=ALL, alert_id=alert_id)


def move(db, who: str, alert_id: int, status: str, comment: str | None = None) -> Alert:
    actor = ah.actor(db, who)
    with db.transaction(actor=actor) as s:
        return triage.set_status(s, actor=actor, alert_id=alert_id, status=status, comment=comment)


# ---- workflow ------------------------------------------------------------------------------------------

def test_workflow_records_who_and_when_and_refuses_other_moves(db, world):
    alert_id = ah.add_alert(db, host_id=world.web01)
    acked = move(db, "analyst1", alert_id, "acknowledged")
    assert acked.acknowledged_by == "analyst1" and acked.acknowledged_at is not None and acked.closed_at is None
    first_ack = acked.acknowledged_at
    move(db, "admin", alert_id, "in_progress")
    closed = move(db, "admin", alert_id, "resolved")
    assert closed.closed_by == "admin" and closed.closed_at >= first_ack
    assert closed.acknowledged_at == first_ack and closed.acknowledged_by == "analyst1"  # first time only
    with pytest.raises(Conflict, match="resolved to in_progress"):
        move(db, "admin", alert_id, "in_progress")
    with pytest.raises(InvalidInput, match="comment"):
        move(db, "admin", alert_id, "acknowledged")  # reopening needs a reason
    with pytest.raises(InvalidInput, match="status must be"):
        move(db, "admin", alert_id, "suppressed")
    assert status_of(db, alert_id).status == "resolved"
    reopened = move(db, "admin", alert_id, "acknowledged", comment="  seen again from the same address  ")
    # The first closing time stays: a past day's A8 does not move when an alert is reopened later.
    assert reopened.status == "acknowledged" and reopened.closed_at == closed.closed_at
    with db.session() as s:
        comments = triage.list_comments(s, scope=ALL, alert_id=alert_id)
    assert [(c.author, c.body) for c in comments] == [("admin", "seen again from the same address")]
    with pytest.raises(Conflict):
        move(db, "admin", alert_id, "acknowledged", comment="again")


def test_new_straight_to_false_positive_sets_both_times(db, world):
    alert_id = ah.add_alert(db, host_id=world.web01)
    alert = move(db, "analyst1", alert_id, "false_positive")
    assert alert.acknowledged_at == alert.closed_at and alert.closed_by == "analyst1"
    assert triage.allowed_next("false_positive") == ("acknowledged",)
    assert "new" not in triage.allowed_next("acknowledged")


def test_a_status_change_is_in_the_audit_log(db, world):
    alert_id = ah.add_alert(db, host_id=world.web01)
    move(db, "analyst1", alert_id, "acknowledged")
    with db.session() as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.target_type == "alerts",
                                               AuditEntry.target_id == str(alert_id))).all()
    assert len(rows) == 1
    entry = rows[0]
    assert (entry.actor, entry.role, entry.action) == ("analyst1", "analyst", "update")
    assert entry.before["status"] == "new" and entry.after["status"] == "acknowledged"
    assert entry.after["acknowledged_by"] == "analyst1" and entry.unit_id is not None


# ---- roles and scope ---------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["officer1", "auditor1"])
def test_officers_and_auditors_read_but_change_nothing(db, world, who):
    alert_id = ah.add_alert(db, host_id=world.web01)  # unit D1
    actor = ah.actor(db, who)
    with db.session() as s:
        assert alerts.get(s, scope=actor.scope, alert_id=alert_id).id == alert_id
    for change in (lambda s: triage.set_status(s, actor=actor, alert_id=alert_id, status="acknowledged"),
                   lambda s: triage.assign(s, actor=actor, alert_id=alert_id, assignee="analyst1"),
                   lambda s: triage.add_comment(s, actor=actor, alert_id=alert_id, body="hi"),
                   lambda s: triage.bulk(s, actor=actor, alert_ids=[alert_id], status="acknowledged"),
                   lambda s: suppressions.create(s, actor=actor, data=suppressions.SuppressionCreate(
                       rule_id="ssh_lnx_brute_force", kind="snooze", reason="noisy", host_id=world.web01,
                       expires_at=utcnow() + timedelta(days=1)))):
        with pytest.raises(Forbidden), db.transaction(actor=actor) as s:
            change(s)
    after = status_of(db, alert_id)
    assert after.status == "new" and after.assignee is None


def test_another_units_alert_looks_like_no_alert(db, world):
    alert_id = ah.add_alert(db, host_id=world.web01)  # unit D1
    officer2 = ah.actor(db, "officer2")  # unit D2
    with db.session() as s:
        with pytest.raises(NotFound):
            alerts.get(s, scope=officer2.scope, alert_id=alert_id)
        with pytest.raises(NotFound):
            triage.list_comments(s, scope=officer2.scope, alert_id=alert_id)
        assert queue.page(s, scope=officer2.scope, filters=queue.AlertFilter()).items == []
        assert queue.severity_counts(s, scope=officer2.scope, filters=queue.AlertFilter())["high"] == 0
        with pytest.raises(NotFound):  # naming D1 in a filter does not confirm it exists
            queue.page(s, scope=officer2.scope, filters=queue.AlertFilter(unit="D1"))
    with pytest.raises(NotFound), db.transaction(actor=officer2) as s:
        triage.set_status(s, actor=officer2, alert_id=alert_id, status="acknowledged")


# ---- assignment and comments ---------------------------------------------------------------------------

def test_assignment_only_to_people_who_can_triage(db, world):
    alert_id = ah.add_alert(db, host_id=world.web01)
    admin = ah.actor(db, "admin")
    with db.transaction(actor=admin) as s:
        assert triage.assign(s, actor=admin, alert_id=alert_id, assignee=" analyst1 ").assignee == "analyst1"
    for who in ("officer1", "nobody", "<b>x</b>"):
        with pytest.raises(InvalidInput), db.transaction(actor=admin) as s:
            triage.assign(s, actor=admin, alert_id=alert_id, assignee=who)
    assert status_of(db, alert_id).assignee == "analyst1"
    with db.transaction(actor=admin) as s:
        assert triage.assign(s, actor=admin, alert_id=alert_id, assignee="").assignee is None


def test_comments_are_capped_and_not_empty(db, world):
    alert_id = ah.add_alert(db, host_id=world.web01)
    admin = ah.actor(db, "admin")
    for body in ("   ", "x" * 4001):
        with pytest.raises(InvalidInput), db.transaction(actor=admin) as s:
            triage.add_comment(s, actor=admin, alert_id=alert_id, body=body)
    with db.transaction(actor=admin) as s:
        triage.add_comment(s, actor=admin, alert_id=alert_id, body="x" * 4000)
    with db.session() as s:
        assert [len(c.body) for c in triage.list_comments(s, scope=ALL, alert_id=alert_id)] == [4000]


# ---- bulk ----------------------------------------------------------------------------------------------

def test_bulk_is_all_or_nothing_and_audited_per_alert(db, world):
    ids = [ah.add_alert(db, host_id=world.web01, key=f"k{i}") for i in range(3)]
    move(db, "admin", ids[2], "resolved")
    analyst = ah.actor(db, "analyst1")
    with pytest.raises(Conflict, match=str(ids[2])), db.transaction(actor=analyst) as s:
        triage.bulk(s, actor=analyst, alert_ids=ids, status="in_progress")
    assert [status_of(db, i).status for i in ids] == ["new", "new", "resolved"]
    other = ah.add_alert(db, host_id=world.db02)  # D2: outside officer1's scope, but officers cannot anyway
    officer1 = ah.actor(db, "officer1")
    with pytest.raises(NotFound), db.transaction(actor=officer1) as s:
        triage.bulk(s, actor=officer1, alert_ids=[ids[0], other], status="acknowledged")
    with pytest.raises(InvalidInput, match="at most 500"), db.transaction(actor=analyst) as s:
        triage.bulk(s, actor=analyst, alert_ids=list(range(1, 502)), status="acknowledged")
    with pytest.raises(InvalidInput), db.transaction(actor=analyst) as s:
        triage.bulk(s, actor=analyst, alert_ids=[], status="acknowledged")
    with db.transaction(actor=analyst) as s:
        changed = triage.bulk(s, actor=analyst, alert_ids=[ids[0], ids[1], other], status="acknowledged",
                              comment="one campaign")
    assert len(changed) == 3
    with db.transaction(actor=analyst) as s:
        triage.bulk(s, actor=analyst, alert_ids=[ids[0], ids[1]], assignee="admin")
    with db.session() as s:
        audited = s.exec(select(AuditEntry.target_id).where(AuditEntry.target_type == "alerts",
                                                            AuditEntry.actor == "analyst1")).all()
        comments = s.exec(select(AuditEntry).where(AuditEntry.target_type == "alert_comments")).all()
    assert sorted(audited) == sorted(str(i) for i in [ids[0], ids[1], other, ids[0], ids[1]])
    assert len(comments) == 3
    assert status_of(db, ids[0]).assignee == "admin" and status_of(db, other).assignee is None


# ---- suppressions --------------------------------------------------------------------------------------

def suppress(db, who="analyst1", *, host_id=None, unit=None, kind="snooze", days=1, reason="maintenance window",
             rule_id="ssh_lnx_brute_force"):
    actor = ah.actor(db, who)
    with db.transaction(actor=actor) as s:
        return suppressions.create(s, actor=actor, data=suppressions.SuppressionCreate(
            rule_id=rule_id, kind=kind, reason=reason, host_id=host_id, unit=unit,
            expires_at=utcnow() + timedelta(days=days))).id


def test_suppressed_detections_are_counted_not_lost_and_stop_when_it_expires(db, world):
    sup = suppress(db, host_id=world.web01)
    first = ah.add_alert(db, host_id=world.web01)
    again = ah.add_alert(db, host_id=world.web01)
    other_host = ah.add_alert(db, host_id=world.hostile)  # same unit, other host: not suppressed
    assert first == again
    held = status_of(db, first)
    assert held.status == "suppressed" and held.count == 2 and held.suppression_id == sup
    with db.session() as s:
        page = queue.page(s, scope=ALL, filters=queue.AlertFilter())
        counts = queue.severity_counts(s, scope=ALL, filters=queue.AlertFilter())
        only_held = queue.page(s, scope=ALL, filters=queue.AlertFilter(status="suppressed"))
        row = suppressions.get(s, scope=ALL, suppression_id=sup)
    assert [a.id for a in page.items] == [other_host]  # out of the queue...
    assert counts["suppressed"] == 2 and counts["high"] == 1  # ...but counted
    assert [a.id for a in only_held.items] == [first] and row.hits == 2
    analyst = ah.actor(db, "analyst1")
    with db.transaction(actor=analyst) as s:
        suppressions.expire(s, actor=analyst, suppression_id=sup)
    with pytest.raises(Conflict), db.transaction(actor=analyst) as s:
        suppressions.expire(s, actor=analyst, suppression_id=sup)
    after = ah.add_alert(db, host_id=world.web01)
    assert after != first and status_of(db, after).status == "new"


def test_a_suppression_ends_by_itself_at_its_expiry(db, world):
    suppress(db, unit="D1", days=1)
    assert status_of(db, ah.add_alert(db, host_id=world.web01, key="a")).status == "suppressed"
    later = utcnow() + timedelta(days=1, minutes=1)
    assert status_of(db, ah.add_alert(db, host_id=world.web01, key="b", now=later)).status == "new"
    with db.session() as s:
        assert suppressions.list_(s, scope=ALL, now=later) == []
        assert len(suppressions.list_(s, scope=ALL, active_only=False, now=later)) == 1


def test_dedup_folds_repeats_into_the_open_alert_whatever_the_window(db, world):
    open_id = ah.add_alert(db, host_id=world.web01, suppress_s=0)
    suppress(db, host_id=world.web01, kind="dedup")
    repeat = ah.add_alert(db, host_id=world.web01, suppress_s=0)  # window 0: would open a new alert
    assert repeat == open_id and status_of(db, open_id).count == 2 and status_of(db, open_id).status == "new"


def test_recording_a_step_at_once_is_recording_it_one_by_one(db, world):
    """Detection records a step's detections with record_many (lookups made once); the outcome must be
    record() called for each in turn: windows, repeats of a key, an alert opened mid-step and folded
    into by the next one, a host snooze, a unit dedup and another unit untouched."""
    ah.add_alert(db, host_id=world.web01, key="already-open", suppress_s=600)
    ah.add_alert(db, host_id=world.db02, key="d2-dedup", rule_id="ssh_lnx_sudo_burst")
    suppress(db, host_id=world.hostile)  # snooze: hostile's detections held
    suppress(db, unit="D2", kind="dedup", rule_id="ssh_lnx_sudo_burst")  # folds into the open d2-dedup
    t0 = utcnow() - timedelta(minutes=3)
    with db.session() as s:
        units = {h: s.get(Host, h).unit_id for h in (world.web01, world.db02, world.hostile)}

    def det(host: int, key: str, minute: int, *, window: int = 60, rule: str = "ssh_lnx_brute_force",
            event: int = 0) -> alerts.NewDetection:
        at = t0 + timedelta(minutes=minute)
        return alerts.NewDetection(unit_id=units[host], host_id=host, rule_id=rule, severity="high", key=key,
                                   group={"k": key}, first_ts=at, last_ts=at, event_count=2, event_ids=(event,),
                                   suppress_s=window)
    step = [det(world.web01, "already-open", 0, window=600, event=1), det(world.web01, "new-key", 0, event=2),
            det(world.web01, "new-key", 0, event=3), det(world.web01, "new-key", 2, event=4),  # past the window
            det(world.web01, "no-window", 0, window=0, event=5), det(world.web01, "no-window", 0, window=0, event=6),
            det(world.hostile, "held", 0, event=7), det(world.hostile, "held", 1, event=8),
            det(world.db02, "d2-dedup", 1, window=0, rule="ssh_lnx_sudo_burst", event=9),
            det(world.db02, "d2-other", 1, rule="ssh_lnx_brute_force", event=10)]

    def outcome(record) -> tuple[list, list, list]:
        with db.session() as s:
            nested = s.begin_nested()
            news = record(s)
            s.flush()
            alerts_now = [(a.host_id, a.rule_id, a.status, a.count, a.event_count, a.event_ids, a.suppression_id,
                           a.first_seen, a.last_seen) for a in s.exec(select(Alert).order_by(Alert.id))]
            hits = [(x.id, x.hits) for x in s.exec(select(suppressions.AlertSuppression)
                                                    .order_by(suppressions.AlertSuppression.id))]
            nested.rollback()
        return news, alerts_now, hits

    now = utcnow()
    one_by_one = outcome(lambda s: [alerts.record(s, detection=d, now=now)[1] for d in step])
    at_once = outcome(lambda s: [new for _alert, new in alerts.record_many(s, detections=step, now=now)])
    assert at_once == one_by_one
    news, rows, hits = at_once
    assert news == [False, True, False, True, True, True, True, False, False, True]
    assert [h for _, h in hits] == [2, 1]  # hostile's two detections held, db02's one folded
    assert len(rows) == 2 + 6


def test_bad_suppressions_are_refused(db, world):
    for kwargs, error in (({"reason": "  "}, InvalidInput), ({"days": 91}, InvalidInput),
                          ({"days": -1}, InvalidInput), ({"kind": "forever"}, InvalidInput),
                          ({"rule_id": "<script>"}, InvalidInput), ({"unit": "D1", "host_id": 1}, InvalidInput),
                          ({"who": "officer1"}, Forbidden), ({"who": "auditor1"}, Forbidden)):
        kwargs.setdefault("host_id", world.web01)
        with pytest.raises(error):
            suppress(db, **kwargs)
    officer2_scope = ah.actor(db, "officer2")
    with pytest.raises(NotFound), db.transaction(actor=officer2_scope) as s:  # host of another unit
        suppressions.create(s, actor=officer2_scope, data=suppressions.SuppressionCreate(
            rule_id="r", kind="snooze", reason="x", host_id=world.web01, expires_at=utcnow() + timedelta(days=1)))
    with db.session() as s:
        assert suppressions.list_(s, scope=ALL, active_only=False) == []


# ---- queue ---------------------------------------------------------------------------------------------

def test_keyset_pages_are_stable_while_alerts_arrive(db, world):
    base = utcnow() - timedelta(hours=10)
    severities = ["low", "critical", "high", "medium", "high", "critical", "info"]
    ids = [ah.add_alert(db, host_id=world.web01, key=f"p{i}", severity=sev, at=base + timedelta(minutes=i * 7 % 5))
           for i, sev in enumerate(severities)]
    for sort in queue.SORTS:
        with db.session() as s:
            everything = [a.id for a in queue.page(s, scope=ALL, filters=queue.AlertFilter(), sort=sort,
                                                   limit=100).items]
            seen, cursor = [], None
            first = queue.page(s, scope=ALL, filters=queue.AlertFilter(), sort=sort, limit=3)
        seen += [a.id for a in first.items]
        # New alerts arriving between pages (newest, most severe, latest seen) must not shift the pages.
        ah.add_alert(db, host_id=world.web01, key=f"late-{sort}", severity="critical", at=utcnow())
        cursor = first.next_cursor
        while cursor:
            with db.session() as s:
                nxt = queue.page(s, scope=ALL, filters=queue.AlertFilter(), sort=sort, cursor=cursor, limit=3)
            seen += [a.id for a in nxt.items]
            cursor = nxt.next_cursor
        assert seen == everything, sort
        assert sorted(everything) == sorted(ids) or sort != "newest"
    with db.session() as s, pytest.raises(InvalidInput, match="cursor"):
        queue.page(s, scope=ALL, filters=queue.AlertFilter(), sort="last_seen", cursor="'; DROP TABLE alerts;--")


def test_filters_and_hostile_free_text(db, world):
    web = ah.add_alert(db, host_id=world.web01, group={"user": "Nguyễn Văn A", "src": "10.0.0.9"}, key="w")
    odd = ah.add_alert(db, host_id=world.hostile, rule_id="file_lnx_new_suid_binary", severity="critical",
                       group={"path": "/tmp/100%_evil"}, key="o")
    d2 = ah.add_alert(db, host_id=world.db02, severity="low", key="d")

    def ids(**kw):
        with db.session() as s:
            return sorted(a.id for a in queue.page(s, scope=ALL, filters=queue.AlertFilter(**kw), limit=100).items)

    assert ids(q="nguyễn") == [web] and ids(q="NGUY") == [web]  # group values, Vietnamese, any case
    assert ids(q="script") == [odd]  # the hostile host name
    assert ids(q="suid") == [odd]  # rule id
    assert ids(q="100%_") == [odd] and ids(q="%") == [odd]  # LIKE wildcards are taken literally:
    assert ids(q="n_uy") == [] and ids(q="1%evil") == []  # as wildcards these would match
    assert ids(q="'; DROP TABLE alerts; --") == [] and ids(q="\\x") == []
    assert ids(unit="D1") == sorted([web, odd]) and ids(unit="P") == sorted([web, odd, d2])
    assert ids(severity="critical") == [odd] and ids(host_id=world.db02) == [d2]
    assert ids(rule_id="file_lnx_new_suid_binary") == [odd]
    assert ids(until=utcnow() - timedelta(hours=1)) == [] and ids(since=utcnow() - timedelta(hours=1)) == sorted(
        [web, odd, d2])
    move(db, "admin", d2, "resolved")
    assert ids(status="open") == sorted([web, odd]) and ids(status="closed") == [d2]
    with db.session() as s:
        counts = queue.severity_counts(s, scope=ALL, filters=queue.AlertFilter(unit="D1"))
    assert (counts["critical"], counts["high"], counts["low"], counts["suppressed"]) == (1, 1, 0, 0)
    for bad in ({"status": "bogus"}, {"severity": "<b>"}, {"q": "x" * 201}):
        with pytest.raises(InvalidInput):
            ids(**bad)


# ---- A8 as of the measured day -------------------------------------------------------------------------

def test_a8_is_fixed_as_of_the_day_whatever_triage_happens_later(db):
    from tests.collector.test_scoring import AT, D, World, populate

    world = populate(World(db))
    with db.session() as s:
        before = scoring.compute(s, day=D)[world.d1].measures["A8"]
    assert (before.numerator, before.denominator) == (3, 4)
    with db.transaction() as s:
        late = s.exec(select(Alert).where(Alert.unit_id == world.d1, Alert.status == "new",
                                          Alert.severity == "critical")).one()
        # Acknowledged and closed after D (and within 24 h of nothing): D's value must not move.
        late.acknowledged_at, late.closed_at, late.status = AT + timedelta(hours=2), AT + timedelta(hours=3), "resolved"
        s.add(late)
        # An alert acknowledged after 30 h is not handled, whenever it is closed.
        s.add(Alert(unit_id=world.d1, host_id=world.h2, rule_id="r", severity="high", dedupe_key="slow",
                    status="resolved", first_seen=AT - timedelta(days=3), last_seen=AT - timedelta(days=3),
                    created_at=AT - timedelta(days=3), acknowledged_at=AT - timedelta(days=3) + timedelta(hours=30),
                    closed_at=AT - timedelta(days=2)))
        # One created two hours before the end of D and not yet acknowledged is not late yet.
        s.add(Alert(unit_id=world.d1, host_id=world.h2, rule_id="r", severity="critical", dedupe_key="fresh",
                    first_seen=AT - timedelta(hours=2), last_seen=AT - timedelta(hours=2),
                    created_at=AT - timedelta(hours=2)))
        # A suppressed one is a triage decision, not an unhandled alert.
        s.add(Alert(unit_id=world.d1, host_id=world.h2, rule_id="r", severity="critical", dedupe_key="held",
                    status="suppressed", suppression_id=1, first_seen=AT - timedelta(days=1),
                    last_seen=AT - timedelta(days=1), created_at=AT - timedelta(days=1)))
    with db.session() as s:
        after = scoring.compute(s, day=D)[world.d1].measures["A8"]
    assert (after.numerator, after.denominator) == (4, 6)


def test_counts_stop_at_the_cap_for_everyone_and_for_a_unit(db, world):
    """Counting past the cap would scan every alert of the province: a value over ``cap`` means "more"."""
    ah.many_alerts(db, host_id=world.web01, n=5)  # D1, medium
    ah.add_alert(db, host_id=world.db02, severity="critical")  # D2
    with db.session() as s:
        d1 = ah.actor(db, "officer1").scope
        assert queue.severity_counts(s, scope=ALL, filters=queue.AlertFilter(), cap=3)["medium"] == 4  # 3 + 1
        assert queue.severity_counts(s, scope=ALL, filters=queue.AlertFilter(), cap=100)["medium"] == 5
        assert queue.severity_counts(s, scope=d1, filters=queue.AlertFilter(), cap=3)["medium"] == 4
        mine = queue.severity_counts(s, scope=d1, filters=queue.AlertFilter(), cap=100)
        assert (mine["medium"], mine["critical"]) == (5, 0)  # D2's critical alert is not D1's
