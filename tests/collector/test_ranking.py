"""The annual ranking from frozen snapshots: peer groups, tie-breaks, provisional years, exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook

from collector.errors import NotFound
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.scoring import ranking
from collector.scoring.models import ScoreAppeal, ScoreSnapshot
from collector.units import service as units
from collector.units.models import Unit, UnitCreate
from rules.scoring.model import INDICATORS

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def snapshots(s, unit_id: int, year: int, months: int, value: float, **override: float | None) -> None:
    for m in range(1, months + 1):
        for ident in INDICATORS:
            s.add(ScoreSnapshot(period=f"{year}-{m:02d}", unit_id=unit_id, indicator=ident, as_of=date(year, m, 14),
                                value=override.get(ident, value), model_version="2026.1", inputs_hash="h",
                                frozen_at=datetime(year, m, 15, tzinfo=UTC)))


@pytest.fixture
def province(db):
    with db.transaction() as s:
        ids = {}
        for code, name, kind, parent in (
                ("HN", "Hà Nội", "province", None), ("STC", "Sở Tài chính", "department", "HN"),
                ("SYT", "Sở Y tế", "department", "HN"), ("SGD", "Sở Giáo dục", "department", "HN"),
                ("XA", "Xã An Khánh", "commune", "HN"), ("XB", "Xã Bình Minh", "commune", "HN")):
            ids[code] = units.create(s, data=UnitCreate(code=code, name=name, kind=kind, parent_code=parent)).id
        snapshots(s, ids["STC"], 2025, 12, 90)
        snapshots(s, ids["SYT"], 2025, 12, 90)  # the same score as STC: tie-breaks decide
        snapshots(s, ids["SGD"], 2025, 12, 60, A1=30)  # A1 < 50 every month: no valid month
        snapshots(s, ids["XA"], 2025, 12, 75)
        snapshots(s, ids["XB"], 2025, 12, 82)
        snapshots(s, ids["STC"], 2026, 11, 80)  # 2026 has 11 frozen months so far: provisional
        snapshots(s, ids["XA"], 2026, 11, 70, A1=40)
        # SYT spent days with an overdue P1 in 2025; STC none: STC ranks first. Its host must not leak.
        host = Host(unit_id=ids["SYT"], hostname="secret-db-01.syt.local", first_seen=datetime(2025, 1, 1, tzinfo=UTC))
        s.add(host)
        s.flush()
        s.add(Finding(unit_id=ids["SYT"], host_id=host.id, identity=f"host:{host.id}", kind="vulnerability",
                      rule="CVE-2025-99999", location="openssl", dedupe_key="k", title="CVE-2025-99999 in openssl",
                      finding_class="P1", first_seen=datetime(2025, 3, 1, tzinfo=UTC),
                      last_seen=datetime(2025, 3, 1, tzinfo=UTC), clock_start=datetime(2025, 3, 1, tzinfo=UTC),
                      due_at=datetime(2025, 3, 16, tzinfo=UTC), fixed_at=datetime(2025, 4, 5, tzinfo=UTC),
                      status="fixed"))
    return ids


def test_final_ranking_per_peer_group_with_tie_breaks(db, province):
    with db.session() as s:
        report = ranking.annual(s, year=2025, now=NOW)
        assert ranking.overdue_critical_days(s, year=2025, now=NOW) == {province["SYT"]: 20.0}
    assert not report.provisional and len(report.periods) == 12
    departments = [(report.units[r.unit_id].code, r.rank, r.result.score) for r in report.groups["departments"]]
    assert departments == [("STC", 1, 90.0), ("SYT", 2, 90.0), ("SGD", None, None)]
    communes = [(report.units[r.unit_id].code, r.rank, r.result.grade) for r in report.groups["communes"]]
    assert communes == [("XB", 1, "B"), ("XA", 2, "B")]
    # the province is in no peer group
    assert all(r.unit_id != province["HN"] for g in report.groups.values() for r in g)


def test_provisional_year_and_a_year_without_snapshots(db, province):
    with db.session() as s:
        report = ranking.annual(s, year=2026, now=NOW)
        with pytest.raises(NotFound, match="no frozen snapshots for 2024"):
            ranking.annual(s, year=2024, now=NOW)
    assert report.provisional and len(report.periods) == 11
    ranked = {report.units[r.unit_id].code: r for g in report.groups.values() for r in g}
    assert ranked["STC"].rank == 1 and ranked["STC"].result.score == 80
    assert ranked["XA"].rank is None  # no valid month at all
    assert "(tạm tính)" in ranking.to_table(report)


def test_exports_carry_vietnamese_text_and_no_host_level_data(db, province):
    with db.session() as s:
        report = ranking.annual(s, year=2025, now=NOW)
    data = json.loads(ranking.to_json(report))
    assert data["model_version"] == "2026.1" and data["provisional"] is False
    syt = next(u for u in data["units"] if u["unit"] == "SYT")
    assert syt["name"] == "Sở Y tế" and syt["grade_label"]["vi"] == "Tốt" and syt["indicators"]["A2"] == 90
    text = ranking.to_csv(report)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:6] == ["Nhóm", "Hạng", "Mã đơn vị", "Tên đơn vị", "Điểm", "Xếp loại"]
    assert rows[1][:6] == ["Sở, ban, ngành", "1", "STC", "Sở Tài chính", "90.00", "Tốt"]
    assert rows[3][4] == "" and rows[3][5] == "Chưa đủ dữ liệu"
    book = load_workbook(io.BytesIO(ranking.to_xlsx(report)))
    # sheet titles cannot hold "/" (Excel): the model's labels are cleaned, not refused
    assert book.sheetnames == ["Sở, ban, ngành", "Xã, phường, đặc khu", "Quận, huyện (trước 7-2025)", "Tổng hợp",
                               "Phương pháp"]
    sheet = book["Sở, ban, ngành"]
    assert [c.value for c in sheet[2]][:5] == [1, "STC", "Sở Tài chính", 90, "Tốt"]
    assert sheet.cell(row=2, column=4).number_format == "0.00"
    method = [[c.value for c in row] for row in book["Phương pháp"].iter_rows()]
    assert any(row[0] == "Mô hình" and "2026.1" in row[1] for row in method)
    everything = ranking.to_json(report) + text + ranking.to_table(report) + json.dumps(method, default=str)
    for secret in ("secret-db-01", "CVE-2025-99999", "openssl"):
        assert secret not in everything


def test_synthetic_units_are_marked_in_every_export(db, province):
    with db.transaction() as s:
        unit = s.get(Unit, province["XB"])
        unit.synthetic = True
        s.add(unit)
    with db.session() as s:
        report = ranking.annual(s, year=2025, now=NOW)
    assert report.synthetic
    data = json.loads(ranking.to_json(report))
    assert data["synthetic"] is True and {u["unit"]: u["synthetic"] for u in data["units"]}["XB"] is True
    assert ranking.to_table(report).startswith("DỮ LIỆU MÔ PHỎNG")
    rows = list(csv.reader(io.StringIO(ranking.to_csv(report).lstrip("\ufeff"))))
    assert rows[0][7] == "Dữ liệu mô phỏng" and {r[2]: r[7] for r in rows[1:]}["XB"] == "có"
    book = load_workbook(io.BytesIO(ranking.to_xlsx(report)))
    assert book["Phương pháp"]["A1"].value.startswith("DỮ LIỆU MÔ PHỎNG")


def test_the_province_sees_its_whole_tree_rolled_up_and_unranked(db):
    """Asset-weighted indicators pool over every host of the tree (a big department weighs more than a
    small commune); attested ones average; an accepted appeal corrects the roll-up too."""
    with db.transaction() as s:
        ids = {code: units.create(s, data=UnitCreate(code=code, name=name, kind=kind, parent_code=parent)).id
               for code, name, kind, parent in (("HP", "Hải Phòng", "province", None),
                                                ("SXD", "Sở Xây dựng", "department", "HP"),
                                                ("XC", "Xã Cát Hải", "commune", "HP"))}
        for m in range(1, 13):
            for unit, a1, hosts, m1 in (("SXD", 90.0, 100.0, 100.0), ("XC", 60.0, 10.0, 0.0)):
                for ident in INDICATORS:
                    value = {"A1": a1, "M1": m1}.get(ident, 80.0)
                    pooled = ident in ("A1", "A2", "A3", "A4", "A5", "A7")
                    s.add(ScoreSnapshot(period=f"2025-{m:02d}", unit_id=ids[unit], indicator=ident,
                                        as_of=date(2025, m, 14), value=value,
                                        numerator=value * hosts / 100 if pooled else None,
                                        denominator=hosts if pooled else None, model_version="2026.1",
                                        inputs_hash="h", frozen_at=datetime(2025, m, 15, tzinfo=UTC)))
    with db.session() as s:
        before = ranking.annual(s, year=2025, now=NOW)
    assert set(before.rollups) == {ids["HP"]}  # only a unit with sub-units has one; it is in no peer group
    assert all(r.unit_id != ids["HP"] for g in before.groups.values() for r in g)
    whole = before.rollups[ids["HP"]]
    assert whole.indicators["A1"] == pytest.approx((90 + 6) / 110 * 100, abs=1e-3)  # pooled, not the mean 75
    assert whole.indicators["M1"] == pytest.approx(50.0)  # attested: the mean of the units
    assert whole.indicators["A8"] == pytest.approx(80.0)
    assert whole.valid_months == 12 and whole.grade == before.model.grade_for(whole.score).grade
    rec = ranking.rollup_records(before)
    assert [(r["unit"], r["name"]) for r in rec] == [("HP", "Hải Phòng")]
    assert json.loads(ranking.to_json(before))["rollups"][0]["indicators"]["A1"] == pytest.approx(87.27, abs=0.01)
    assert "Hải Phòng" in ranking.to_table(before).split("Tổng hợp toàn cây đơn vị")[1]
    book = load_workbook(io.BytesIO(ranking.to_xlsx(before)))
    assert [c.value for c in book["Tổng hợp"][2]][:2] == ["HP", "Hải Phòng"]

    # The commune's A1 of every month is corrected on appeal to 100: the roll-up pools the corrected value.
    with db.transaction() as s:
        for m in range(1, 13):
            s.add(ScoreAppeal(period=f"2025-{m:02d}", unit_id=ids["XC"], indicator="A1", reason="agent clock",
                              submitted_by="xc", submitted_at=NOW, status="accepted", corrected_value=100.0,
                              decision="ok", decided_by="reviewer", decided_at=NOW))
    with db.session() as s:
        after = ranking.annual(s, year=2025, now=NOW)
    assert after.rollups[ids["HP"]].indicators["A1"] == pytest.approx((90 + 10) / 110 * 100, abs=1e-3)
