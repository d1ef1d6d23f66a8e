"""``khien score compute|freeze|show`` as a user runs them (a fresh process on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from collector.db import Database
from collector.hosts.models import Host
from collector.scoring.activity import record
from collector.units import service as units
from tests.khien.test_cli import assert_one_line_error, run


def test_compute_freeze_and_show(db_url):
    assert run(db_url, "unit", "add", "HN", "--name", "Hà Nội", "--kind", "province").returncode == 0
    assert run(db_url, "unit", "add", "HN-STC", "--name", "Sở Tài chính", "--kind", "department",
               "--parent", "HN").returncode == 0
    db = Database(db_url)
    with db.transaction() as s:  # one host that reported every day since it was enrolled on 1 September
        unit_id = units.get_by_code(s, code="HN-STC").id
        host = Host(unit_id=unit_id, hostname="web01", security_level=3, first_seen=datetime(2026, 9, 1, tzinfo=UTC))
        s.add(host)
        s.flush()
        for day in range(61):
            record(s, host_id=host.id, unit_id=unit_id, day=date(2026, 9, 1) + timedelta(days=day))
    db.dispose()

    done = run(db_url, "score", "compute", "--date", "2026-10-14")
    assert done.returncode == 0 and "2026-10-14: 22 indicator values stored" in done.stdout, done.stderr
    shown = run(db_url, "score", "show", "--unit", "HN-STC", "--date", "2026-10-14", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["indicators"]["A1"]["value"] == 100 and body["indicators"]["A7"]["value"] == 100
    assert body["model_version"] == "2026.1" and body["grade"] in ("A", "B", "C", "D", "E")
    table = run(db_url, "score", "show", "--unit", "HN-STC", "--date", "2026-10-14")
    assert "Độ bao phủ giám sát" in table.stdout and "Sở Tài chính" in table.stdout

    frozen = run(db_url, "score", "freeze", "--month", "2026-10")
    assert frozen.returncode == 0, frozen.stderr
    assert "2026-10: snapshot frozen (22 indicator values, as of 2026-10-14)" in frozen.stdout
    assert_one_line_error(run(db_url, "score", "freeze", "--month", "2026-10"), "already frozen")
    assert_one_line_error(run(db_url, "score", "freeze", "--month", "2099-01"), "has not come yet")
    assert_one_line_error(run(db_url, "score", "compute", "--date", "14/10/2026"), "YYYY-MM-DD")
    assert_one_line_error(run(db_url, "score", "show", "--unit", "NOPE"), "NOPE")

    ranked = run(db_url, "ranking", "--year", "2026", "--format", "json")
    assert ranked.returncode == 0, ranked.stderr
    body = json.loads(ranked.stdout)
    assert body["provisional"] is True and body["periods"] == ["2026-10"]
    assert [u["unit"] for u in body["units"]] == ["HN-STC"] and body["units"][0]["rank"] == 1
    assert_one_line_error(run(db_url, "ranking", "--year", "2026", "--format", "xlsx"), "--output")
    assert_one_line_error(run(db_url, "ranking", "--year", "2024"), "no frozen snapshots for 2024")


def test_ranking_xlsx_file(db_url, tmp_path):
    from openpyxl import load_workbook

    from collector.scoring.models import ScoreSnapshot
    from rules.scoring.model import INDICATORS

    assert run(db_url, "unit", "add", "HN", "--name", "Hà Nội", "--kind", "province").returncode == 0
    assert run(db_url, "unit", "add", "X1", "--name", "Xã Một", "--kind", "commune", "--parent", "HN").returncode == 0
    db = Database(db_url)
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code="X1").id
        for m in range(1, 13):
            for ident in INDICATORS:
                s.add(ScoreSnapshot(period=f"2025-{m:02d}", unit_id=unit_id, indicator=ident, as_of=date(2025, m, 14),
                                    value=72.5, model_version="2026.1", inputs_hash="h",
                                    frozen_at=datetime(2025, m, 15, tzinfo=UTC)))
    db.dispose()
    out = tmp_path / "xep-hang-2025.xlsx"
    done = run(db_url, "ranking", "--year", "2025", "--format", "xlsx", "--output", str(out))
    assert done.returncode == 0, done.stderr
    sheet = load_workbook(out)["Xã, phường, đặc khu"]
    assert [c.value for c in sheet[2]][:5] == [1, "X1", "Xã Một", 72.5, "Khá"]
    assert run(db_url, "user", "add", "boss", "--role", "admin", "--password-stdin",
               stdin="correct horse battery staple\n").returncode == 0
    adjusted = run(db_url, "score", "adjust", "--unit", "X1", "--year", "2025", "--kind", "bonus", "--points", "5",
                   "--reason", "diễn tập cùng VNCERT/CC", "--by", "boss")
    assert adjusted.returncode == 0 and "approved by boss" in adjusted.stdout, adjusted.stderr
    body = json.loads(run(db_url, "ranking", "--year", "2025", "--format", "json").stdout)
    assert body["units"][0]["score"] == 77.5
    generous = run(db_url, "score", "adjust", "--unit", "X1", "--year", "2025", "--kind", "bonus", "--points", "9",
                   "--reason", "far too generous a bonus", "--by", "boss")
    assert_one_line_error(generous, "between 0 and 5")
    assert_one_line_error(run(db_url, "score", "publish", "--year", "2025", "--by", "nobody"), "unknown user")
    assert run(db_url, "score", "publish", "--year", "2025", "--by", "boss").returncode == 0
    assert_one_line_error(run(db_url, "score", "publish", "--year", "2025", "--by", "boss"), "published already")
    listed = run(db_url, "score", "appeals", "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
