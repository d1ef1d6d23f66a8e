"""Event retention on both backends: what is removed (whole months on PostgreSQL, batches on SQLite), what
is refused, and that alerts, host pages and scores survive the events behind them being gone."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from collector.errors import InvalidInput
from collector.events import partitions, retention
from collector.events.retention_policy import DEFAULT_KEEP_DAYS, ENV_VAR, MIN_KEEP_DAYS, configured_keep_days
from collector.scoring import service as scoring
from collector.scoring.activity import local_day
from collector.settings import load_settings
from collector.types import utcnow
from collector.units import service as units
from collector.units.models import UnitCreate
from khien import cli_retention
from khien.app import build_app
from khien.cli_common import db_options
from tests.collector.events_helpers import FAR_FUTURE, add_received, seed_host, stored
from tests.console import alerts_helpers as ah
from tests.console import helpers as h

AGES_DAYS = (800, 500, 460, 451, 449, 440, 30, 0)


def kept_by_rule(db, received: datetime, cutoff: datetime) -> bool:
    """PostgreSQL drops a month only once all of it is before the cutoff; SQLite deletes to the instant."""
    if db.is_sqlite:
        return received >= cutoff
    return partitions.for_month(received).end > cutoff


@pytest.mark.parametrize("keep_days", [0, MIN_KEEP_DAYS - 1, -5, True, 400.5, "450", 10**6])
def test_a_retention_below_the_minimum_or_not_a_day_count_is_refused_and_changes_nothing(db, keep_days):
    unit, host = seed_host(db)
    now = utcnow()
    add_received(db, unit, host, [now - timedelta(days=d) for d in AGES_DAYS])
    before = stored(db)
    with pytest.raises(InvalidInput) as refused:
        retention.run_retention(db, now=now, keep_days=keep_days)
    if isinstance(keep_days, int) and not isinstance(keep_days, bool) and keep_days < MIN_KEEP_DAYS:
        assert f"at least {MIN_KEEP_DAYS} days" in str(refused.value)
    assert stored(db) == before


def test_a_naive_now_is_refused(db):
    with pytest.raises(InvalidInput, match="naive"):
        retention.run_retention(db, now=datetime.now())  # the mistake under test: no time zone


def test_retention_removes_what_was_received_before_the_cutoff_and_nothing_after(db):
    unit, host = seed_host(db)
    now = utcnow()
    received = [now - timedelta(days=d) for d in AGES_DAYS] + [FAR_FUTURE]
    add_received(db, unit, host, received)
    cutoff = now - timedelta(days=DEFAULT_KEEP_DAYS)
    expected = [r for r in received if kept_by_rule(db, r, cutoff)]
    assert len(expected) < len(received)  # the scenario removes something on both backends

    dry = retention.run_retention(db, now=now, dry_run=True)
    assert stored(db) == received and dry.rows_removed == len(received) - len(expected)
    result = retention.run_retention(db, now=now)

    assert stored(db) == expected
    assert result.rows_removed == dry.rows_removed and result.cutoff == cutoff == dry.cutoff
    assert result.keep_days == DEFAULT_KEEP_DAYS
    if db.is_sqlite:
        assert result.method == "batches" and result.batches == 1
    else:
        # The old months were stranded in DEFAULT: made into partitions first, then dropped whole.
        gone = sorted({partitions.for_month(r).name for r in received if r not in expected})
        assert result.method == "partitions" and result.partitions_removed == gone == dry.partitions_removed
        assert set(gone) <= set(result.maintenance.created)
        with db.engine.connect() as conn:
            names = {p.name for p in partitions.list_(conn)}
            default = conn.execute(text(f"SELECT count(*) FROM {partitions.default_qualified()}")).scalar_one()
        assert not names & set(gone) and partitions.for_month(now).name in names
        assert default == 1  # the far-future row: DEFAULT is never dropped
    again = retention.run_retention(db, now=now)
    assert again.rows_removed == 0 and stored(db) == expected


def test_postgresql_never_drops_the_month_that_holds_the_cutoff(pg):
    db = pg
    unit, host = seed_host(db)
    now = utcnow()
    cutoff = now - timedelta(days=MIN_KEEP_DAYS)
    first_of_cutoff_month = partitions.month_of(cutoff)
    older = first_of_cutoff_month - timedelta(hours=1)
    same_month_before_cutoff = first_of_cutoff_month + (cutoff - first_of_cutoff_month) / 2
    add_received(db, unit, host, [older, same_month_before_cutoff, now])
    result = retention.run_retention(db, now=now, keep_days=MIN_KEEP_DAYS)
    assert stored(db) == [same_month_before_cutoff, now]
    assert result.partitions_removed == [partitions.for_month(older).name]


@pytest.mark.timeout(60)  # a batch holding the write lock into the callback would hang the insert there
def test_sqlite_deletes_in_batches_each_its_own_transaction_and_writes_get_in_between(sqlite_db):
    db = sqlite_db
    unit, host = seed_host(db)
    now = utcnow()
    add_received(db, unit, host, [now - timedelta(days=700, seconds=-i) for i in range(2_500)] + [now])
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    steps: list[retention.Progress] = []

    def progress(step: retention.Progress) -> None:
        steps.append(step)
        add_received(db, unit, host, [utcnow()])  # ingest between batches: the write lock is free

    result = retention.run_retention(db, now=now, batch_size=1_000, pause_s=0, progress=progress)
    assert (result.rows_removed, result.batches) == (2_500, 3)
    assert [s.rows_removed for s in steps] == [1_000, 2_000, 2_500]
    assert len(commits) == 3 + 3  # three DELETE transactions and the three inserts between them
    assert len(stored(db)) == 1 + 3


def test_sqlite_never_removes_a_recent_row_even_when_ids_do_not_follow_receive_times(sqlite_db):
    db = sqlite_db
    unit, host = seed_host(db)
    now = utcnow()
    old, recent = now - timedelta(days=600), now - timedelta(days=1)
    received = [old, old, recent, old, recent, old]  # a clock that stepped back, twice
    add_received(db, unit, host, received)
    retention.run_retention(db, now=now, batch_size=2, pause_s=0)
    left = stored(db)
    assert left.count(recent) == 2 and left.count(old) < 4 and left[0] == recent


def test_alert_and_host_pages_and_scores_survive_their_events_being_removed(db, tmp_path):
    with db.transaction() as s:
        units.create(s, data=UnitCreate(code="P", name="Tỉnh mẫu", kind="province"))
        units.create(s, data=UnitCreate(code="D1", name="Sở Khoa học và Công nghệ", kind="department",
                                        parent_code="P"))
    h.add_user(db, "admin", "admin")
    now = utcnow()
    long_ago = now - timedelta(days=500)
    # Stored in the order the server receives them: a host, its changes and an alert 500 days ago, then
    # a host with changes today.
    old_host = h.add_host(db, unit="D1", hostname="old01.d1.gov.vn", machine_id="4" * 32, last_seen=now,
                          at=long_ago, sections=h.inventory([h.pkg("openssl", "3.0.11")], [h.port(22, "sshd")]))
    h.update_inventory(db, host_id=old_host, at=long_ago + timedelta(days=1), sections=h.inventory(
        [h.pkg("openssl", "3.0.13")], [h.port(22, "sshd")]))
    alert_id = ah.add_alert(db, host_id=old_host, raw="sshd[1]: Failed password for root from 203.0.113.9",
                            at=long_ago + timedelta(days=2), now=long_ago + timedelta(days=2))
    new_host = h.add_host(db, unit="D1", hostname="new01.d1.gov.vn", machine_id="5" * 32, last_seen=now,
                          at=now - timedelta(hours=2), sections=h.inventory([h.pkg("nginx", "1.22.0")], []))
    h.update_inventory(db, host_id=new_host, at=now - timedelta(hours=1), sections=h.inventory(
        [h.pkg("nginx", "1.22.1")], []))
    day = local_day(long_ago + timedelta(days=3))

    def scores() -> dict:
        with db.session() as s:
            return {u: {i: (m.value, m.numerator, m.denominator, m.inputs_hash()) for i, m in r.measures.items()}
                    for u, r in scoring.compute(s, day=day).items()}

    before = scores()
    assert any(m[0] is not None for u in before.values() for m in u.values())
    settings = dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), cookie_secure=False,
                                   scheduler=False)
    with TestClient(build_app(settings, db=db)) as client:
        admin = h.logged_in(client, "admin")
        assert "Failed password for root" in admin.get(f"/alerts/{alert_id}").text
        assert "3.0.11 → 3.0.13" in admin.get(f"/hosts/{old_host}").text

        result = retention.run_retention(db, now=now)
        assert result.rows_removed >= 2  # the alert's event and the old host's change events

        page = admin.get(f"/alerts/{alert_id}")
        assert page.status_code == 200 and "Failed password for root" not in page.text
        assert "Các sự kiện gây ra cảnh báo này không còn được lưu." in page.text
        host_page = admin.get(f"/hosts/{old_host}")
        assert host_page.status_code == 200 and "3.0.11 → 3.0.13" not in host_page.text
        assert "old01.d1.gov.vn" in host_page.text and "3.0.13" in host_page.text  # inventory has its own rows
        assert "1.22.0 → 1.22.1" in admin.get(f"/hosts/{new_host}").text  # today's changes are kept
        api = admin.get(f"/api/v1/alerts/{alert_id}")
        assert api.status_code == 200 and len(api.json()["event_ids"]) == 1
    assert scores() == before  # the scores read no events: recomputing a past month gives the same numbers


def command_parser() -> argparse.ArgumentParser:
    """``khien db ...`` as cli.py builds it: the ``command`` helper and a ``db`` group."""
    parser = argparse.ArgumentParser(prog="khien")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_, parent):
        p = parent.add_parser(name, help=help_, description=help_)
        db_options(p)
        p.set_defaults(func=func)
        return p

    cli_retention.register(sub.add_parser("db").add_subparsers(dest="action", required=True), command)
    return parser


def test_the_command_reports_a_dry_run_then_removes_and_refuses_a_short_retention(db, capsys):
    unit, host = seed_host(db)
    now = utcnow()
    add_received(db, unit, host, [now - timedelta(days=700), now])
    parser = command_parser()

    args = parser.parse_args(["db", "retention", "--dry-run", "--database-url", db.url])
    args.func(args)
    out = capsys.readouterr().out
    assert out.startswith("event retention: would remove 1 event") and "1 events" not in out
    assert len(stored(db)) == 2
    assert f"(keeping {DEFAULT_KEEP_DAYS} days)" in out

    args = parser.parse_args(["db", "retention", "--keep-days", "500", "--database-url", db.url])
    args.func(args)
    out = capsys.readouterr().out
    assert out.startswith("event retention: removed 1 event") and "1 events" not in out and len(stored(db)) == 1

    args = parser.parse_args(["db", "retention", "--keep-days", "30", "--database-url", db.url])
    with pytest.raises(InvalidInput, match=f"at least {MIN_KEEP_DAYS} days"):
        args.func(args)


def test_the_command_keeps_what_the_server_is_configured_to_keep(db, capsys, monkeypatch):
    unit, host = seed_host(db)
    now = utcnow()
    add_received(db, unit, host, [now - timedelta(days=700), now])
    monkeypatch.setenv(ENV_VAR, "800")
    args = command_parser().parse_args(["db", "retention", "--database-url", db.url])
    args.func(args)
    out = capsys.readouterr().out
    assert "removed 0 events" in out and "(keeping 800 days)" in out and len(stored(db)) == 2
    monkeypatch.setenv(ENV_VAR, "90")
    with pytest.raises(InvalidInput, match=f"{ENV_VAR}: .*at least {MIN_KEEP_DAYS} days"):
        args.func(args)
    assert len(stored(db)) == 2


@pytest.mark.parametrize(("raw", "days"), [("", DEFAULT_KEEP_DAYS), (" 500 ", 500), (str(MIN_KEEP_DAYS), MIN_KEEP_DAYS),
                                           ("399", None), ("a year", None), ("450.5", None)])
def test_the_configured_retention_is_checked_like_the_option(raw, days):
    if days is None:
        with pytest.raises(InvalidInput, match=ENV_VAR):
            configured_keep_days({ENV_VAR: raw})
    else:
        assert configured_keep_days({ENV_VAR: raw}) == days


def test_a_busy_events_table_defers_partition_work_to_the_next_run(pg, monkeypatch):
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "300ms")
    unit, host = seed_host(pg)
    now = utcnow()
    old = now - timedelta(days=700)
    add_received(pg, unit, host, [old, now])
    assert partitions.maintain(pg, now=now).created == [partitions.for_month(old).name]
    add_received(pg, unit, host, [now - timedelta(days=650)])  # stranded in DEFAULT again
    with pg.engine.connect() as holder:  # another session holding events (a long migration, a manual lock)
        holder.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        result = retention.run_retention(pg, now=now)
        holder.rollback()
    assert result.maintenance.deferred and result.partitions_deferred == [partitions.for_month(old).name]
    assert result.rows_removed == 0 and len(stored(pg)) == 3
    result = retention.run_retention(pg, now=now)
    assert result.rows_removed == 2 and stored(pg) == [now]
