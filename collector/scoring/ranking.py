"""The annual ranking: every unit's annual score and grade from the year's frozen snapshots, ranked
within its peer group (rules.scoring.annual), and its exports (table, CSV, JSON, XLSX).

What is published holds units, grades, ranks and indicator scores only — never hosts, addresses or
vulnerabilities — so the same report serves the public page.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from collector.errors import NotFound
from collector.findings.models import Finding
from collector.scoring import review
from collector.scoring.cache import TimedCache, database_of
from collector.scoring.indicators import VULN_KINDS, end_of_day
from collector.scoring.models import ScoreAdjustment, ScoreAppeal, ScoreSnapshot
from collector.scoring.rollup import Stored, children_of, corrected, rollup, subtree
from collector.units.models import Unit
from rules.scoring.annual import AnnualScore, Ranked, annual_score, rank
from rules.scoring.model import ATTESTED, INDICATORS, ScoringModel, builtin_model

CRITICAL_CLASSES = ("P0", "P1")


@dataclass(frozen=True, slots=True)
class UnitInfo:
    code: str
    name: str
    kind: str
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Ranking:
    year: int
    provisional: bool  # the year's last snapshot is not frozen yet
    model: ScoringModel
    periods: tuple[str, ...]  # the frozen months it is computed from
    groups: dict[str, list[Ranked]]
    units: dict[int, UnitInfo]
    # Units with sub-units (a province, a legacy district): the annual score of their whole subtree,
    # from the monthly roll-ups of the snapshots. Shown beside the ranking, not ranked.
    rollups: dict[int, AnnualScore] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Whether any ranked unit is generated demo data (every export then says so)."""
        return any(self.units[r.unit_id].synthetic for g in self.groups.values() for r in g)


def annual(session: Session, *, year: int, now: datetime, model: ScoringModel | None = None) -> Ranking:
    """The year's ranking from its frozen monthly snapshots (the current year: provisional)."""
    model = model or builtin_model()
    wanted = [f"{year}-{m:02d}" for m in range(1, 13)]
    rows = session.execute(select(ScoreSnapshot.period, ScoreSnapshot.unit_id, ScoreSnapshot.indicator,
                                  ScoreSnapshot.value, ScoreSnapshot.numerator, ScoreSnapshot.denominator)
                           .where(ScoreSnapshot.period.in_(wanted))).all()
    if not rows:
        raise NotFound(f"no frozen snapshots for {year}: months are frozen on the {model.snapshot_day}th by the "
                       f"daily job, or with `khien score freeze --month {year}-MM`")
    # Accepted appeals correct a frozen value here, at use; the snapshot row keeps the original.
    fixes = review.corrections(session, periods=wanted)
    stored: dict[int, dict[str, dict[str, Stored]]] = defaultdict(lambda: defaultdict(dict))
    for period, unit_id, indicator, value, num, den in rows:
        stored[unit_id][period][indicator] = corrected((value, None, num, den),
                                                       fixes.get((period, unit_id, indicator), value))
    months = {unit_id: {p: {i: v[0] for i, v in by_ind.items()} for p, by_ind in by_period.items()}
              for unit_id, by_period in stored.items()}
    periods = tuple(sorted({r[0] for r in rows}))
    provisional = f"{year}-12" not in periods
    # A provisional ranking cannot have 10 valid months yet: allow the same number of invalid months.
    needed = model.min_valid_months if not provisional else max(1, len(periods) - (12 - model.min_valid_months))
    overdue_days = overdue_critical_days(session, year=year, now=now)
    granted = review.applied(session, year=year)
    results: list[AnnualScore] = []
    for unit_id, by_period in months.items():
        ordered = [by_period[p] for p in sorted(by_period)]
        last = ordered[-1]
        results.append(annual_score(model, unit_id=unit_id, months=ordered,
                                    attested={i: last.get(i) for i in ATTESTED},
                                    adjustments=granted.get(unit_id, ()),
                                    overdue_p0_critical_days=overdue_days.get(unit_id, 0.0),
                                    min_valid_months=needed))
    tree = list(session.scalars(select(Unit)))
    units = {u.id: UnitInfo(u.code, u.name, u.kind, bool(u.synthetic)) for u in tree}
    groups = rank(model, results, kinds={uid: info.kind for uid, info in units.items()})
    rollups = _rollups(model, stored, children_of((u.id, u.parent_id) for u in tree), needed)
    return Ranking(year=year, provisional=provisional, model=model, periods=periods, groups=groups, units=units,
                   rollups=rollups)


# A year's ranking is read by every dashboard and by the public page (anyone, no login), and costs a
# second or so on a province of 500 units: it is kept for a few minutes per year and set of inputs.
RANKINGS: TimedCache[Ranking] = TimedCache(ttl_s=300, max_entries=16)


def annual_cached(session: Session, *, year: int, now: datetime, model: ScoringModel | None = None) -> Ranking:
    """``annual()``, reused while its inputs are unchanged: a newly frozen month, a decided appeal, an
    adjustment granted or revoked, or a new unit shows at once, in every server process. The
    time-to-live (5 min) bounds what the key does not see: the overdue-days tie-break of the current
    year, which moves with the findings, and a unit renamed in place."""
    model = model or builtin_model()
    key = (database_of(session), year, model.version, _inputs(session, year=year))
    return RANKINGS.get_or_compute(key, lambda: annual(session, year=year, now=now, model=model))


def _inputs(session: Session, *, year: int) -> tuple:
    """Cheap aggregates that change whenever the year's ranking inputs change (one round trip)."""
    wanted = [f"{year}-{m:02d}" for m in range(1, 13)]
    snap, appeal, adjust = ScoreSnapshot, ScoreAppeal, ScoreAdjustment
    parts = [
        select(func.count()).select_from(snap).where(snap.period.in_(wanted)),
        select(func.count()).select_from(appeal).where(appeal.period.in_(wanted), appeal.status == "accepted"),
        select(func.max(appeal.decided_at)).where(appeal.period.in_(wanted)),
        select(func.count()).select_from(adjust).where(adjust.year == year),
        select(func.max(adjust.created_at)).where(adjust.year == year),
        select(func.count()).select_from(adjust).where(adjust.year == year, adjust.revoked_at.is_(None)),
        select(func.max(adjust.revoked_at)).where(adjust.year == year),
        select(func.count()).select_from(Unit),
        select(func.max(Unit.id)),
    ]
    return tuple(session.execute(select(*(p.scalar_subquery() for p in parts))).one())


def _rollups(model: ScoringModel, stored: dict[int, dict[str, dict[str, Stored]]],
             children: dict[int | None, list[int]], needed: int) -> dict[int, AnnualScore]:
    """The annual score of every subtree with snapshots below its top: each month rolled up over the
    subtree's units, then the year as for one unit (without the units' own adjustments)."""
    out: dict[int, AnnualScore] = {}
    for top in {parent for parent in children if parent is not None}:
        members = [u for u in subtree(top, children) if u in stored]
        if not any(u != top for u in members):
            continue
        periods = sorted({p for u in members for p in stored[u]})
        monthly = [rollup(model, (stored[u][p] for u in members if p in stored[u])) for p in periods]
        out[top] = annual_score(model, unit_id=top, months=monthly,
                                attested={i: monthly[-1].get(i) for i in ATTESTED}, min_valid_months=needed)
    return out


def overdue_critical_days(session: Session, *, year: int, now: datetime) -> dict[int, float]:
    """Per unit, the days P0/P1 vulnerabilities spent overdue within the year (the first tie-break)."""
    start = end_of_day(date(year - 1, 12, 31))
    end = min(end_of_day(date(year, 12, 31)), now)
    f = Finding
    rows = session.execute(select(f.unit_id, f.due_at, f.fixed_at).where(
        f.kind.in_(VULN_KINDS), f.finding_class.in_(CRITICAL_CLASSES), f.due_at < end,
        or_(f.fixed_at.is_(None), and_(f.fixed_at > f.due_at, f.fixed_at > start))))
    out: dict[int, float] = defaultdict(float)
    for unit_id, due_at, fixed_at in rows:
        late_from = max(due_at, start)
        late_to = min(fixed_at or end, end)
        if late_to > late_from:
            out[unit_id] += (late_to - late_from) / timedelta(days=1)
    return {k: round(v, 2) for k, v in out.items()}


# ---- exports -------------------------------------------------------------------------------------

ROLLUP_LABEL_VI = "Tổng hợp toàn cây đơn vị (không xếp hạng)"
HEADERS_VI = ("Nhóm", "Hạng", "Mã đơn vị", "Tên đơn vị", "Điểm", "Xếp loại", "Số tháng hợp lệ", "Dữ liệu mô phỏng")
SYNTHETIC_NOTE = "DỮ LIỆU MÔ PHỎNG — không phải số liệu của cơ quan thật (synthetic demo data)"


def records(report: Ranking) -> list[dict]:
    """One flat record per ranked unit (the shape every export and the public page use)."""
    out = []
    for group_id, ranked in report.groups.items():
        group = report.model.peer_groups[group_id]
        for r in ranked:
            info = report.units[r.unit_id]
            res = r.result
            band = report.model.grade_for(res.score) if res.score is not None else None
            out.append({
                "group": group_id, "group_label": group.label, "rank": r.rank, "unit": info.code, "name": info.name,
                "synthetic": info.synthetic,
                "score": res.score, "grade": res.grade,
                "grade_label": _grade_label(report.model, res.grade),
                "score_band": band.grade if band else None, "capped_by": res.capped_by,
                "valid_months": res.valid_months,
                "indicators": {i: (round(v, 2) if v is not None else None) for i, v in res.indicators.items()}})
    return out


def rollup_records(report: Ranking) -> list[dict]:
    """One record per unit with sub-units: its whole subtree's annual score (not ranked), the province first."""
    out = []
    for unit_id, res in sorted(report.rollups.items(),
                               key=lambda kv: (report.units[kv[0]].kind != "province", report.units[kv[0]].code)):
        info = report.units[unit_id]
        out.append({"unit": info.code, "name": info.name, "kind": info.kind, "synthetic": info.synthetic,
                    "score": res.score, "grade": res.grade, "grade_label": _grade_label(report.model, res.grade),
                    "valid_months": res.valid_months,
                    "indicators": {i: (round(v, 2) if v is not None else None) for i, v in res.indicators.items()}})
    return out


def _grade_label(model: ScoringModel, grade: str | None) -> dict[str, str]:
    return next(b.label for b in model.bands if b.grade == grade) if grade else model.not_enough_data_label


def to_json(report: Ranking) -> str:
    return json.dumps({"year": report.year, "provisional": report.provisional, "synthetic": report.synthetic,
                       "model_version": report.model.version, "periods": list(report.periods),
                       "units": records(report), "rollups": rollup_records(report)}, ensure_ascii=False, indent=2)


def to_csv(report: Ranking) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*HEADERS_VI, *INDICATORS])
    for rec in records(report):
        writer.writerow([rec["group_label"]["vi"], rec["rank"] or "", rec["unit"], rec["name"],
                         "" if rec["score"] is None else f"{rec['score']:.2f}", rec["grade_label"]["vi"],
                         rec["valid_months"], "có" if rec["synthetic"] else "không",
                         *("" if rec["indicators"][i] is None else f"{rec['indicators'][i]:.2f}" for i in INDICATORS)])
    for rec in rollup_records(report):
        writer.writerow([ROLLUP_LABEL_VI, "", rec["unit"], rec["name"],
                         "" if rec["score"] is None else f"{rec['score']:.2f}", rec["grade_label"]["vi"],
                         rec["valid_months"], "có" if rec["synthetic"] else "không",
                         *("" if rec["indicators"][i] is None else f"{rec['indicators'][i]:.2f}" for i in INDICATORS)])
    return "\ufeff" + buf.getvalue()  # the BOM makes Excel read the Vietnamese text as UTF-8


def to_table(report: Ranking) -> str:
    lines = [SYNTHETIC_NOTE] if report.synthetic else []
    lines += [f"Xếp hạng năm {report.year}{' (tạm tính)' if report.provisional else ''} — "
             f"{report.model.name['vi']} {report.model.version}; {len(report.periods)} tháng: "
             f"{', '.join(report.periods)}"]
    current = None
    for rec in records(report):
        if rec["group"] != current:
            current = rec["group"]
            lines.append(f"\n{rec['group_label']['vi']}")
        score = "—" if rec["score"] is None else f"{rec['score']:6.2f}"
        lines.append(f"  {rec['rank'] or '-':>3}  {rec['unit']:<16} {rec['name'][:40]:<40} {score:>6}  "
                     f"{rec['grade_label']['vi']}")
    rolled = rollup_records(report)
    if rolled:
        lines.append(f"\n{ROLLUP_LABEL_VI}")
    for rec in rolled:
        score = "—" if rec["score"] is None else f"{rec['score']:6.2f}"
        lines.append(f"       {rec['unit']:<16} {rec['name'][:40]:<40} {score:>6}  {rec['grade_label']['vi']}")
    return "\n".join(lines)


def _sheet_title(label: str) -> str:
    """Excel refuses \\ / ? * [ ] : in sheet titles and cuts them at 31 characters."""
    return "".join("-" if ch in '\\/?*[]:' else ch for ch in label)[:31]


def to_xlsx(report: Ranking) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    rows = records(report)
    for group_id, group in report.model.peer_groups.items():
        sheet = book.create_sheet(title=_sheet_title(group.label["vi"]))
        sheet.append([*HEADERS_VI[1:], *(f"{i} {report.model.indicators[i].label['vi']}" for i in INDICATORS)])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for rec in (r for r in rows if r["group"] == group_id):
            sheet.append([rec["rank"], rec["unit"], rec["name"], rec["score"], rec["grade_label"]["vi"],
                          rec["valid_months"], "có" if rec["synthetic"] else "không",
                          *(rec["indicators"][i] for i in INDICATORS)])
        for row in sheet.iter_rows(min_row=2):
            for cell in (row[3], *row[7:]):
                cell.number_format = "0.00"
        sheet.freeze_panes = "A2"
        sheet.column_dimensions["C"].width = 40
    rolled = rollup_records(report)
    if rolled:
        sheet = book.create_sheet(title="Tổng hợp")
        sheet.append(["Mã đơn vị", "Tên đơn vị", "Điểm", "Xếp loại", "Số tháng hợp lệ", "Dữ liệu mô phỏng",
                      *(f"{i} {report.model.indicators[i].label['vi']}" for i in INDICATORS)])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for rec in rolled:
            sheet.append([rec["unit"], rec["name"], rec["score"], rec["grade_label"]["vi"], rec["valid_months"],
                          "có" if rec["synthetic"] else "không", *(rec["indicators"][i] for i in INDICATORS)])
        for row in sheet.iter_rows(min_row=2):
            for cell in (row[2], *row[6:]):
                cell.number_format = "0.00"
        sheet.column_dimensions["B"].width = 40
    method = book.create_sheet(title="Phương pháp")
    if report.synthetic:
        method.append([SYNTHETIC_NOTE])
    method.append(["Mô hình", f"{report.model.name['vi']} — phiên bản {report.model.version}"])
    method.append(["Năm", report.year])
    method.append(["Trạng thái", "Tạm tính (chưa đủ 12 kỳ)" if report.provisional else "Chính thức"])
    method.append(["Các kỳ chốt số liệu", ", ".join(report.periods)])
    method.append(["Ngày chốt hằng tháng", report.model.snapshot_day])
    method.append(["Tổng hợp", "Điểm của cả cây đơn vị (tỉnh): chỉ số theo tài sản cộng dồn trên mọi máy chủ, "
                   "A8 cộng dồn cảnh báo, chỉ số tự đánh giá lấy trung bình; không xếp hạng, không điều chỉnh"])
    method.append([])
    method.append(["Chỉ số", "Tên", "Trọng số", "Loại"])
    for ident in INDICATORS:
        ind = report.model.indicators[ident]
        method.append([ident, ind.label["vi"], ind.weight, "đo lường" if ind.kind == "measured" else "tự đánh giá"])
    method.append([])
    method.append(["Xếp loại", "Điểm tối thiểu"])
    for band in report.model.bands:
        method.append([band.label["vi"], band.min])
    method.append([report.model.not_enough_data_label["vi"],
                   f"ít hơn {report.model.min_valid_months} tháng hợp lệ (A1 ≥ {report.model.valid_month_min_a1:g})"])
    method.append(["Tạo lúc", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")])
    method.column_dimensions["A"].width = 28
    method.column_dimensions["B"].width = 60
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
