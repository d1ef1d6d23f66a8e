"""``khien demo``'s synthetic province: a plausible history, frozen months and a full ranking at once.

A small province (3 departments, 3 communes, a few hosts each) from 1 January 2025 to the day
before NOW, on SQLite and PostgreSQL; the full-size seeding runs once, as ``khien demo --seed-only``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from collector.alerts.models import Alert
from collector.attestations.models import Attestation
from collector.compliance.models import CheckResultRow
from collector.db import Database
from collector.findings.models import Finding, FindingEvent
from collector.hosts.models import Host
from collector.scans.models import ScanAsset
from collector.scoring import ranking
from collector.scoring.indicators import ANTIMALWARE, LOGGING
from collector.scoring.models import HostActivity, ScoreSnapshot, ScoreValue
from collector.types import utcnow
from collector.units.models import Unit
from collector.vulns import matching
from khien import demo
from khien.demo_history import PRODUCER, SUFFIX, Size, seed_history

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội: yesterday is 2026-11-21
SMALL = Size(departments=3, communes=3, hosts=(3, 5), start=date(2025, 1, 1))
TABLES = (Unit, Host, HostActivity, Finding, FindingEvent, CheckResultRow, Alert, ScanAsset, Attestation,
          ScoreSnapshot, ScoreValue)


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


@pytest.fixture
def seeded(db):
    demo.seed(db)
    lines: list[str] = []
    report = seed_history(db, size=SMALL, now=NOW, out=lines.append)
    return db, report, lines


def test_every_month_is_frozen_and_the_last_30_days_are_stored(seeded):
    db, report, lines = seeded
    months = [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 12)]
    assert report.frozen == months and not report.skipped  # 2026-11-14 has ended; 2026-12 has not come
    with db.session() as s:
        assert sorted(p for (p,) in s.execute(select(ScoreSnapshot.period).distinct())) == months
        days = sorted(d for (d,) in s.execute(select(ScoreValue.day).distinct()))
    assert days == [date(2026, 11, 21) - timedelta(days=i) for i in range(29, -1, -1)]
    assert lines[0].startswith("demo: generating history 2025-01-01 … 2026-11-21")
    assert "demo: froze 23 monthly snapshots" in lines


def test_the_ranking_is_full_for_both_years_and_the_current_one_provisional(seeded):
    db, _, _ = seeded
    with db.session() as s:
        final = ranking.annual(s, year=2025, now=NOW)
        current = ranking.annual(s, year=2026, now=NOW)
    assert not final.provisional and current.provisional
    assert len(final.periods) == 12 and len(current.periods) == 11
    for report in (final, current):
        grades = []
        for group in ("departments", "communes"):
            ranked = [r for r in report.groups[group] if r.rank is not None]
            assert ranked and all(report.units[r.unit_id].name.endswith(SUFFIX) for r in ranked)
            # The others lack valid months (A1 < 50 %): DEMO-SKHCN has no history, and a weak unit whose
            # few servers went silent for weeks may not make 10 — "Chưa đủ dữ liệu" is part of the demo.
            unranked = [r for r in report.groups[group] if r.rank is None]
            assert len(unranked) <= 2 and all(r.result.grade is None for r in unranked)
            grades += [r.result.grade for r in ranked]
        assert len(set(grades)) > 1, grades  # good, average and weak units do not grade alike


def test_every_unit_is_marked_synthetic_and_seeding_again_changes_nothing(seeded):
    db, report, _ = seeded
    with db.session() as s:
        rows = s.execute(select(Unit.code, Unit.name, Unit.kind, Unit.synthetic)).all()
    assert len(rows) == 2 + 6 and report.units == 6
    assert all(synthetic for *_, synthetic in rows)
    assert {kind for _, _, kind, _ in rows} == {"province", "department", "commune"}
    assert "Sở Tư pháp (mô phỏng)" in {name for _, name, _, _ in rows}
    before = counts(db)
    assert seed_history(db, size=SMALL, now=NOW + timedelta(days=1), out=lambda _: None) is None
    demo.seed(db)  # what a second ``khien demo`` does first
    assert counts(db) == before


def test_the_history_is_plausible(seeded):
    db, _, _ = seeded
    yesterday = date(2026, 11, 21)
    with db.session() as s:
        hosts = s.scalars(select(Host)).all()
        assert all(h.security_level in (1, 2, 3, 4) and h.first_seen < datetime(2025, 1, 1, tzinfo=UTC)
                   for h in hosts)
        first, last = s.execute(select(func.min(HostActivity.day), func.max(HostActivity.day))).one()
        assert first < date(2025, 1, 1) and last == yesterday
        findings = s.scalars(select(Finding)).all()
        vulns = [f for f in findings if f.kind in ("vulnerability", "patch")]
        assert {f.finding_class for f in vulns} >= {"P1", "P2", "P3"}
        assert all(f.due_at > f.first_seen and f.sla_version and f.identity == f"host:{f.host_id}" for f in findings)
        fixed = [f for f in vulns if f.fixed_at is not None]
        assert all(f.status == "fixed" and f.fixed_at < NOW for f in fixed)
        assert any(f.fixed_at <= f.due_at for f in fixed) and any(f.fixed_at > f.due_at for f in fixed)
        assert any(f.status == "open" for f in vulns)
        events = s.execute(select(func.count()).select_from(FindingEvent)).scalar_one()
        assert events == sum(1 for f in findings if f.fixed_at is not None)
        checks = set(s.scalars(select(CheckResultRow.check_id).distinct()))
        assert set(ANTIMALWARE.values()) | set(LOGGING.values()) <= checks and len(checks) >= 30
        superseded = s.scalars(select(CheckResultRow).where(CheckResultRow.valid_to.is_not(None))).all()
        assert superseded and all(r.valid_to > r.valid_from for r in superseded)
        alerts = s.scalars(select(Alert)).all()
        assert {a.severity for a in alerts} >= {"high"} and {a.status for a in alerts} > {"new"}
        ratings = s.execute(select(Attestation.period, Attestation.rating).where(Attestation.status == "rated")).all()
        assert {p for p, _ in ratings} == {2025, 2026} and len({r for _, r in ratings}) > 1


def test_the_nightly_re_match_leaves_the_synthetic_findings_alone(seeded):
    """Synthetic hosts have no inventory: were their findings the feeds' own, the re-match would close them."""
    db, _, _ = seeded
    with db.session() as s:
        before = s.execute(select(Finding.id, Finding.status, Finding.sources).order_by(Finding.id)).all()
    assert {sources for _, status, sources in before if status == "open"} == {PRODUCER}
    matching.match_all(db, now=NOW + timedelta(hours=1))
    with db.session() as s:
        assert s.execute(select(Finding.id, Finding.status, Finding.sources).order_by(Finding.id)).all() == before


def test_khien_demo_seed_only_seeds_the_full_province_once_and_exits(tmp_path):
    """The README's first command, full size, on the default SQLite database."""
    env = os.environ.copy()
    env.pop("KHIEN_DATABASE_URL", None)
    command = [sys.executable, "-m", "khien.cli", "demo", "--seed-only", "--data-dir", str(tmp_path / "data")]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert first.returncode == 0, first.stderr
    assert "demo: froze" in first.stderr and "synthetic province ready" in first.stderr, first.stderr
    assert "Password:" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0 and "generating history" not in again.stderr, again.stderr
    db = Database(f"sqlite:///{tmp_path / 'data' / 'khien.db'}")
    try:
        with db.session() as s:
            kinds = dict(s.execute(select(Unit.kind, func.count()).group_by(Unit.kind)).all())
            assert kinds == {"province": 1, "department": 21, "commune": 40}
            assert s.execute(select(func.count()).select_from(Unit).where(Unit.synthetic.is_(False))).scalar_one() == 0
            year = utcnow().year
            assert not ranking.annual(s, year=year - 1, now=utcnow()).provisional
    finally:
        db.dispose()
