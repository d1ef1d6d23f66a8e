"""Daily indicators from stored history (A1–A8, M1–M3), frozen monthly snapshots, recompute == frozen.

One province with hand-computable data: every expected value below is worked out in the comments.
Day D = 2026-10-14; its values are taken at the end of the day in Asia/Ho_Chi_Minh
(2026-10-14 17:00 UTC), over the 30 days before.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from collector.alerts.models import Alert
from collector.attestations.models import Attestation
from collector.compliance.models import CheckResultRow
from collector.errors import Conflict, InvalidInput
from collector.exceptions.models import RiskException
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.scans.models import ScanAsset
from collector.scoring import service as scoring
from collector.scoring.activity import record
from collector.scoring.indicators import end_of_day
from collector.scoring.models import ScoreSnapshot, ScoreValue
from collector.units import service as units
from rules.scoring.model import builtin_model
from tests.collector import helpers as h

D = date(2026, 10, 14)
AT = end_of_day(D)
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def t(day: int, month: int = 10, hour: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


class World:
    def __init__(self, db, *, seed: bool = True):
        if seed:
            h.seed_units(db)
        self.db = db
        with db.transaction() as s:
            self.d1 = units.get_by_code(s, code="D1").id
            self.d2 = units.get_by_code(s, code="D2").id
            self.p = units.get_by_code(s, code="P").id
            # D1: h1 level 3 internal (w 2.5), h2 level 1 internet-facing (w 1.5), h3 level unknown (w 2)
            self.h1 = self.host(s, self.d1, "h1", 3, False, t(1, 9))
            self.h2 = self.host(s, self.d1, "h2", 1, True, t(1, 9))
            self.h3 = self.host(s, self.d1, "h3", None, False, t(10, 10, hour=1))
            # D2: h4 level 2 internet-facing (w 2.25); a host enrolled after D does not count
            self.h4 = self.host(s, self.d2, "h4", 2, True, t(1, 9))
            self.host(s, self.d2, "late", 5, True, t(20))
            self.n = 0

    def host(self, s, unit_id, name, level, exposed, first_seen) -> int:
        host = Host(unit_id=unit_id, hostname=name, security_level=level, internet_facing=exposed,
                    first_seen=first_seen, last_seen=first_seen)
        s.add(host)
        s.flush()
        return host.id

    def finding(self, s, host_id, unit_id, cls, *, first_seen, due_at, fixed_at=None, kind="vulnerability",
                rule=None, status=None, location="pkg") -> None:
        self.n += 1
        s.add(Finding(unit_id=unit_id, host_id=host_id, identity=f"host:{host_id}", kind=kind,
                      rule=rule or f"CVE-2026-{self.n:05d}", location=location, dedupe_key=f"k{self.n}",
                      title="t", finding_class=cls, status=status or ("fixed" if fixed_at else "open"),
                      first_seen=first_seen, last_seen=first_seen, clock_start=first_seen, due_at=due_at,
                      fixed_at=fixed_at))

    def check(self, s, host_id, unit_id, check_id, status, *, critical=False, since=None, until=None) -> None:
        s.add(CheckResultRow(unit_id=unit_id, host_id=host_id, policy_id="tcvn", check_id=check_id, status=status,
                             severity="high", critical=critical, level=3, valid_from=since or t(1), valid_to=until))


@pytest.fixture
def world(db) -> World:
    return populate(World(db))


def populate(w: World) -> World:
    db = w.db
    with db.transaction() as s:
        # A1 — activity: h1 every day of the window; h2 on 20 days incl. D; h3 since enrolment (5 days)
        for i in range(30):
            record(s, host_id=w.h1, unit_id=w.d1, day=D - timedelta(days=i))
        for i in range(20):
            record(s, host_id=w.h2, unit_id=w.d1, day=D - timedelta(days=i))
        for i in range(5):
            record(s, host_id=w.h3, unit_id=w.d1, day=D - timedelta(days=i))
        record(s, host_id=w.h1, unit_id=w.d1, day=D + timedelta(days=1))  # after D: ignored
        s.add(ScanAsset(unit_id=w.d1, address="10.0.0.9", state="up", first_seen=t(1), last_scanned=t(1),
                        last_up=t(1), next_scan_at=t(2)))
        # A2 — h1: P1 overdue and open (s 10), P3 not yet due (s 1), P2 fixed after its due date inside the
        # window (overdue, s 5), P2 fixed before the window (ignored), a P4 (not scored), a finding opened after D
        w.finding(s, w.h1, w.d1, "P1", first_seen=t(1, 9), due_at=t(16, 9), rule="CVE-2026-11111")
        w.finding(s, w.h1, w.d1, "P3", first_seen=t(1), due_at=t(30, 12))
        w.finding(s, w.h1, w.d1, "P2", first_seen=t(1, 9), due_at=t(20, 9), fixed_at=t(1))
        w.finding(s, w.h1, w.d1, "P2", first_seen=t(1, 8), due_at=t(20, 8), fixed_at=t(10, 9))
        w.finding(s, w.h1, w.d1, "P4", first_seen=t(1, 8), due_at=t(2, 8))
        w.finding(s, w.h1, w.d1, "P0", first_seen=t(20), due_at=t(21))
        # an exception (host scope) accepts the overdue P1 on h1: with exceptions A2 forgives its s 10
        s.add(RiskException(target_kind="finding", target="CVE-2026-11111", scope="host", host_id=w.h1,
                            unit_id=w.d1, justification="compensating WAF rule", compensating_control="waf",
                            approved_by="admin", created_at=t(1), expires_at=t(1, 12)))
        # D2/h4 (internet-facing): an open overdue P0 (s 20) and 20 P3 not due (s 20): 50 uncapped, cap 40
        w.finding(s, w.h4, w.d2, "P0", first_seen=t(1), due_at=t(8))
        for _ in range(20):
            w.finding(s, w.h4, w.d2, "P3", first_seen=t(1), due_at=t(30, 12))
        # A3 — h1: 8 pass, 2 fail; h2: 9 pass and a critical fail (capped at 0.5); superseded and
        # future results are not counted; h3 reports no checks (not in A3)
        for i in range(8):
            w.check(s, w.h1, w.d1, f"c{i}", "pass")
        for i in range(2):
            w.check(s, w.h1, w.d1, f"f{i}", "fail")
        w.check(s, w.h1, w.d1, "f0", "pass", since=t(20))  # fixed after D
        w.check(s, w.h1, w.d1, "old", "fail", until=t(5))  # superseded before D
        for i in range(9):
            w.check(s, w.h2, w.d1, f"c{i}", "pass")
        w.check(s, w.h2, w.d1, "ssh_lnx_permit_empty_passwords_disabled", "fail", critical=True)
        w.check(s, w.h2, w.d1, "na", "not_applicable")
        # A4 — h1 protected and current (1); h2 installed, not running (0.5); h3 nothing (0)
        for check_id in ("mal_lnx_antimalware_installed", "mal_lnx_antimalware_running", "mal_lnx_signatures_current"):
            w.check(s, w.h1, w.d1, check_id, "pass")
        w.check(s, w.h2, w.d1, "mal_lnx_antimalware_installed", "pass")
        w.check(s, w.h2, w.d1, "mal_lnx_antimalware_running", "fail")
        # A5 — h1 audit, retention, NTP and reported on D (1.0); h2 only reported on D (0.3); h3 reported (0.3)
        for check_id in ("log_lnx_auditd_running", "log_lnx_retention", "time_lnx_synchronized"):
            w.check(s, w.h1, w.d1, check_id, "pass")
        w.check(s, w.h2, w.d1, "log_lnx_auditd_running", "fail")
        # A7 — h2 (internet-facing): RDP exposed −20, SSH passwords −10, a TLS finding fixed before D (not
        # counted), defacement alert in the window −30 → 40
        w.finding(s, w.h2, w.d1, "critical_misconfig", kind="exposure", rule="exposed-service:rdp",
                  first_seen=t(1), due_at=t(4))
        w.finding(s, w.h2, w.d1, "failed_check", kind="exposure", rule="ssh-password-auth", first_seen=t(1),
                  due_at=t(30))
        w.finding(s, w.h2, w.d1, "failed_check", kind="exposure", rule="tls-expired-certificate",
                  first_seen=t(1), due_at=t(30), fixed_at=t(5))
        # A8 — D1: 4 high/critical alerts in the window, 3 handled (acknowledged within 24 h, and closed by
        # the end of D or open but less than 7 days old); the critical one still `new` is not; a low one and
        # an old one do not count.
        hour = timedelta(hours=1)
        for i, (sev, status, created, acked, closed) in enumerate((
                ("high", "acknowledged", t(9), t(9) + hour, None),
                ("critical", "resolved", t(3), t(3) + 2 * hour, t(5)),
                ("high", "false_positive", t(4), t(4) + 23 * hour, t(4) + 23 * hour),
                ("critical", "new", t(5), None, None),
                ("low", "new", t(6), None, None),
                ("high", "new", t(1, 8), None, None))):
            s.add(Alert(unit_id=w.d1, host_id=w.h2, rule_id="ssh_lnx_brute_force", severity=sev, title="a",
                        dedupe_key=f"a{i}", status=status, first_seen=created, last_seen=created,
                        created_at=created, updated_at=created, acknowledged_at=acked, closed_at=closed))
        s.add(Alert(unit_id=w.d1, host_id=w.h2, rule_id="file_lnx_web_root_change", severity="medium", title="d",
                    dedupe_key="deface", first_seen=t(7), last_seen=t(7), created_at=t(7), updated_at=t(7)))
        # M1 — level approved Đạt (1), plan implemented Đạt một phần (0.5), rules/officer not rated → 60;
        # a 2025 rating does not count in 2026
        # A6 — attested until agents report backups: offline copy Đạt (0.3), restore test Đạt một phần (0.15)
        for item, rating, value, period in (("level_approved", "dat", 1.0, 2026),
                                            ("plan_implemented", "dat_mot_phan", 0.5, 2026),
                                            ("rules_and_officer", "dat", 1.0, 2025),
                                            ("offline_copy", "dat", 1.0, 2026),
                                            ("restore_test", "dat_mot_phan", 0.5, 2026)):
            s.add(Attestation(unit_id=w.d1, item=item, period=period, status="rated", submitted_by="officer",
                              submitted_at=t(1), rating=rating, rating_value=value, reviewed_by="admin",
                              reviewed_at=t(2)))
    return w


def test_indicators_of_a_day_from_stored_history(db, world):
    with db.session() as s:
        days = scoring.compute(s, day=D)
    d1, d2 = days[world.d1].measures, days[world.d2].measures
    # A1: monitored h1 (2.5) and h3 (2); not h2 (20 of 30 days) nor the unmanaged address (2) → 4.5 / 8
    assert d1["A1"].value == pytest.approx(56.25)
    assert d1["A1"].denominator == pytest.approx(8.0)
    # A2 without exceptions: h1 Σs 16, overdue 15 → 100 × 1/16; with the exception: overdue 5 → 68.75
    assert d1["A2"].value_without_exceptions == pytest.approx(6.25)
    assert d1["A2"].value == pytest.approx(68.75)
    # D2: 50 before the cap; an internet-facing P0 is overdue → 40
    assert d2["A2"].value == 40 and d2["A2"].value_without_exceptions == 40
    assert ("cap", 0.0, 0.0, {"reason": "internet-facing P0 overdue", "cap": 40}) in d2["A2"].parts
    # A3 counts every judged check, the A4/A5 ones too: h1 14 of 16 pass; h2 10 of 13 with a critical
    # failure, capped at 0.5 → (2.5 × 14/16 + 1.5 × 0.5) / 4
    assert d1["A3"].value == pytest.approx(100 * (2.5 * 14 / 16 + 0.75) / 4)
    # A4: (2.5 × 1 + 1.5 × 0.5 + 2 × 0) / 6
    assert d1["A4"].value == pytest.approx(100 * 3.25 / 6)
    # A5: (2.5 × 1 + 1.5 × 0.3 + 2 × 0.3) / 6
    assert d1["A5"].value == pytest.approx(100 * 3.55 / 6)
    assert d1["A6"].value == pytest.approx(45) and d2["A6"].value is None  # attested; D2 attested nothing
    # A7: h2 100 − 20 − 10 − 30; D2's h4 exposes nothing → 100
    assert d1["A7"].value == pytest.approx(40) and d2["A7"].value == 100
    # A8: 0.5 × 3/4 + 0.5 × 1 (no incident on record)
    assert d1["A8"].value == pytest.approx(87.5)
    # M1: 0.4 × 1 + 0.4 × 0.5 (+ the 2025 rating ignored); M2, M3 nothing attested
    assert d1["M1"].value == pytest.approx(60) and d1["M2"].value is None
    # the province has no hosts of its own: nothing measured, attested nothing
    assert days[world.p].measures["A1"].value is None
    model = builtin_model()
    expected = sum(model.indicators[i].weight * (m.value or 0) / 100 for i, m in d1.items())
    assert days[world.d1].score(model) == pytest.approx(round(expected, 2))
    assert days[world.d1].score(model, with_exceptions=False) < days[world.d1].score(model)


def test_store_day_replaces_and_refuses_a_day_not_over(db, world):
    with db.transaction() as s:
        stored = scoring.store_day(s, day=D, now=NOW)
        assert scoring.store_day(s, day=D, now=NOW) == stored  # recomputed, not duplicated
    with db.session() as s:
        rows = s.scalars(select(ScoreValue).where(ScoreValue.day == D)).all()
    assert len(rows) == stored == 3 * 11
    a1 = next(r for r in rows if r.unit_id == world.d1 and r.indicator == "A1")
    assert a1.value == pytest.approx(56.25) and a1.model_version == builtin_model().version
    with pytest.raises(InvalidInput, match="has not ended"), db.transaction() as s:
        scoring.store_day(s, day=NOW.date(), now=NOW)


def test_frozen_month_is_immutable_and_recomputes_to_the_same_numbers(db, world):
    with db.transaction() as s:
        assert scoring.freeze_month(s, period="2026-10", now=NOW) == 3 * 11
    with db.session() as s:
        frozen = scoring.snapshot_rows(s, period="2026-10")
    assert {r.as_of for r in frozen} == {D}
    # History moves on after the snapshot day: fixes, new findings, new activity, new check results.
    with db.transaction() as s:
        f = s.scalars(select(Finding).where(Finding.rule == "CVE-2026-11111")).one()
        f.status, f.fixed_at = "fixed", t(2, 11)
        world.finding(s, world.h1, world.d1, "P0", first_seen=t(1, 11), due_at=t(2, 11))
        record(s, host_id=world.h2, unit_id=world.d1, day=date(2026, 11, 1))
        s.add(Attestation(unit_id=world.d1, item="training", period=2026, status="rated", submitted_by="officer",
                          submitted_at=t(1, 11), rating="dat", rating_value=1.0, reviewed_by="admin",
                          reviewed_at=t(2, 11)))  # rated after the snapshot day
        world.check(s, world.h3, world.d1, "c1", "fail", since=t(3, 11))
    with db.session() as s:
        again = scoring.recompute_month(s, period="2026-10")
    key = ("unit_id", "indicator", "value", "value_without_exceptions", "numerator", "denominator", "inputs_hash")
    assert sorted(tuple(r[k] for k in key) for r in again) == \
        sorted(tuple(getattr(r, k) for k in key) for r in frozen)
    with pytest.raises(Conflict, match="already frozen"), db.transaction() as s:
        scoring.freeze_month(s, period="2026-10", now=NOW)
    with pytest.raises(InvalidInput, match="has not come yet"), db.transaction() as s:
        scoring.freeze_month(s, period="2026-12", now=NOW)
    with pytest.raises(InvalidInput, match="YYYY-MM"), db.transaction() as s:
        scoring.freeze_month(s, period="2026/10", now=NOW)
    with db.session() as s:
        assert len(s.scalars(select(ScoreSnapshot)).all()) == 3 * 11


def test_an_input_change_before_the_snapshot_day_changes_the_hash(db, world):
    with db.session() as s:
        before = scoring.compute(s, day=D)[world.d1].measures["A3"]
    with db.transaction() as s:
        world.check(s, world.h1, world.d1, "late_fail", "fail", since=t(10))
    with db.session() as s:
        after = scoring.compute(s, day=D)[world.d1].measures["A3"]
    assert after.value < before.value and after.inputs_hash() != before.inputs_hash()


def test_freeze_due_freezes_the_latest_ended_snapshot_day_once(db, world):
    local = scoring.local_day
    before_14th_ended = end_of_day(D) - timedelta(minutes=1)  # 14 October, 23:59 local
    with db.transaction() as s:
        assert scoring.freeze_due(s, now=before_14th_ended) == "2026-09"  # September's is the latest ended
    with db.transaction() as s:
        assert scoring.freeze_due(s, now=end_of_day(D) + timedelta(hours=2)) == "2026-10"
    with db.transaction() as s:  # a server back after downtime on the 15th still freezes October, once
        assert scoring.freeze_due(s, now=datetime(2026, 11, 3, tzinfo=UTC)) is None
    with db.session() as s:
        assert [r.as_of for r in scoring.snapshot_rows(s, period="2026-10")][:1] == [D]
    assert local(end_of_day(D)) == D + timedelta(days=1)


def test_the_daily_job_stores_yesterday_and_freezes_what_is_due(db, world, tmp_path):
    import dataclasses

    from collector.scheduler import Jobs
    from collector.settings import load_settings
    from collector.types import utcnow

    settings = dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), scheduler=False)
    Jobs(db, settings).daily_scores()
    yesterday = scoring.local_day(utcnow()) - timedelta(days=1)
    with db.session() as s:
        days = set(s.scalars(select(ScoreValue.day)).all())
        periods = set(s.scalars(select(ScoreSnapshot.period)).all())
    assert days == {yesterday} and len(periods) == 1



def test_the_database_itself_refuses_to_change_a_frozen_snapshot(db, world):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DatabaseError

    from collector.scoring import immutable

    with db.transaction() as s:
        scoring.freeze_month(s, period="2026-10", now=NOW)
    for statement in (update(ScoreSnapshot).values(value=100.0), delete(ScoreSnapshot)):
        with pytest.raises(DatabaseError, match="immutable once frozen"), db.transaction() as s:
            s.execute(statement)
    with db.session() as s:
        assert len(scoring.snapshot_rows(s, period="2026-10")) == 3 * 11
    # maintenance may lift it for one transaction; it is back afterwards
    with db.transaction() as s, immutable.suspended(s.connection()):
        s.execute(delete(ScoreSnapshot).where(ScoreSnapshot.unit_id == world.p))
    with pytest.raises(DatabaseError, match="immutable once frozen"), db.transaction() as s:
        s.execute(delete(ScoreSnapshot))
    with db.session() as s:
        assert len(scoring.snapshot_rows(s, period="2026-10")) == 2 * 11


def test_one_units_computation_equals_its_part_of_the_whole(db, world):
    """An explanation narrows every query to one unit: it must give exactly the unit's values of a full run."""
    with db.session() as s:
        everyone = scoring.compute(s, day=D)
        for unit_id in (world.d1, world.d2, world.p):
            alone = scoring.compute(s, day=D, unit_ids=frozenset({unit_id}))
            assert set(alone) == {unit_id}
            for ident, m in everyone[unit_id].measures.items():
                mine = alone[unit_id].measures[ident]
                assert (mine.value, mine.value_without_exceptions, mine.numerator, mine.denominator,
                        mine.inputs_hash()) == (m.value, m.value_without_exceptions, m.numerator, m.denominator,
                                                m.inputs_hash()), (unit_id, ident)


def test_a_vulnerable_web_component_on_a_public_host_costs_a7_points(db):
    """A7's "vulnerable web component": an open high-or-worse vulnerability in a package the model names
    (``nginx*``, ``php*``, ``mod_*``…) on an internet-facing host, once per host; "_" in a name is literal."""
    w = World(db)
    with db.transaction() as s:
        for cls, package, fixed in (("P2", "nginx-core", None),  # counts
                                    ("P1", "php8.2-fpm", None),  # same host: still one penalty
                                    ("P3", "apache2", None),  # medium: not counted
                                    ("P1", "apache2", t(5))):  # fixed before D: not counted
            w.finding(s, w.h2, w.d1, cls, first_seen=t(1), due_at=t(30, 12), fixed_at=fixed, location=package)
        # D2's h4: "modXssl" must not match the pattern "mod_*" (the underscore is not a wildcard)
        w.finding(s, w.h4, w.d2, "P0", first_seen=t(1), due_at=t(30, 12), location="modXssl")
        w.finding(s, w.h1, w.d1, "P0", first_seen=t(1), due_at=t(30, 12), location="nginx")  # internal: ignored
    with db.session() as s:
        values = scoring.compute(s, day=D)
    assert values[w.d1].measures["A7"].value == pytest.approx(85)  # only h2 is public: 100 − 15
    assert values[w.d2].measures["A7"].value == 100
    model = builtin_model()
    assert model.indicators["A7"].params["vulnerable_web"] == 15 and "mod_*" in model.indicators["A7"].web_components
