"""``khien score`` commands: compute a day's indicators, freeze a month, show a unit's score."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date, timedelta

from khien.cli_common import UsageError, acting_user, database


def _day(text: str | None) -> date:
    from collector.scoring.activity import local_day
    from collector.types import utcnow

    if text is None:  # yesterday, local time: the last day that has ended
        return local_day(utcnow()) - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--date must be YYYY-MM-DD, not {text!r}") from None


def cmd_score_compute(args: argparse.Namespace) -> None:
    from collector.scoring import service as scoring
    from collector.types import utcnow

    day = _day(args.date)
    with database(args).transaction() as session:
        rows = scoring.store_day(session, day=day, now=utcnow())
    print(f"{day}: {rows} indicator values stored")


def cmd_score_freeze(args: argparse.Namespace) -> None:
    from collector.scoring import service as scoring
    from collector.types import utcnow

    with database(args).transaction() as session:
        rows = scoring.freeze_month(session, period=args.month, now=utcnow())
    print(f"{args.month}: snapshot frozen ({rows} indicator values, as of {scoring.snapshot_day(args.month)})")


def cmd_score_show(args: argparse.Namespace) -> None:
    from collector.scoring import service as scoring
    from collector.units import service as units
    from rules.scoring.model import builtin_model

    model = builtin_model()
    day = _day(args.date)
    with database(args).session() as session:
        unit = units.get_by_code(session, code=args.unit)
        result = scoring.compute(session, day=day, model=model)[unit.id]
    score = result.score(model)
    band = model.grade_for(score)
    indicators = {ident: {"value": m.value, "value_without_exceptions": m.value_without_exceptions,
                          "weight": model.indicators[ident].weight, "numerator": m.numerator,
                          "denominator": m.denominator} for ident, m in result.measures.items()}
    if args.format == "json":
        print(json.dumps({"unit": unit.code, "day": day.isoformat(), "model_version": model.version, "score": score,
                          "score_without_exceptions": result.score(model, with_exceptions=False),
                          "grade": band.grade, "grade_label": band.label, "indicators": indicators},
                         ensure_ascii=False, indent=2))
        return
    print(f"{unit.code} {unit.name} — {day} — {model.name['vi']} {model.version}")
    print(f"điểm / score {score:.2f} ({band.grade} {band.label['vi']}), "
          f"không tính ngoại lệ / without exceptions {result.score(model, with_exceptions=False):.2f}")
    for ident, item in indicators.items():
        value = "—" if item["value"] is None else f"{item['value']:.1f}"
        print(f"  {ident} {model.indicators[ident].label['vi']:<40} {value:>6}  × {item['weight']:g}")


def cmd_ranking(args: argparse.Namespace) -> None:
    import sys
    from pathlib import Path

    from collector.scoring import ranking
    from collector.types import utcnow

    with database(args).session() as session:
        report = ranking.annual(session, year=args.year, now=utcnow())
    if args.format == "xlsx":
        if not args.output:
            raise UsageError("--format xlsx needs --output FILE.xlsx")
        Path(args.output).write_bytes(ranking.to_xlsx(report))
        print(f"written {args.output}", file=sys.stderr)
        return
    text = {"table": ranking.to_table, "csv": ranking.to_csv, "json": ranking.to_json}[args.format](report)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"written {args.output}", file=sys.stderr)
    else:
        print(text)


def cmd_score_adjust(args: argparse.Namespace) -> None:
    from collector.scoring import review
    from collector.types import utcnow

    with database(args).transaction() as session:
        user = acting_user(session, args.by)
        row = review.add_adjustment(session, unit_code=args.unit, year=args.year, kind=args.kind, reason=args.reason,
                                    points=args.points, by=user.username, by_role=user.role, now=utcnow())
    print(f"adjustment {row.id}: {args.kind} for {args.unit} in {args.year}, approved by {row.approved_by}")


def cmd_score_publish(args: argparse.Namespace) -> None:
    from collector.scoring import review
    from collector.types import utcnow

    with database(args).transaction() as session:
        user = acting_user(session, args.by)
        if args.withdraw:
            review.unpublish(session, year=args.year, by_role=user.role)
        else:
            review.publish(session, year=args.year, by=user.username, by_role=user.role, now=utcnow())
    print(f"{args.year} ranking {'withdrawn from' if args.withdraw else 'published on'} /public/ranking")


def cmd_score_decide(args: argparse.Namespace) -> None:
    from collector.scoring import review
    from collector.types import utcnow

    with database(args).transaction() as session:
        user = acting_user(session, args.by)
        row = review.decide_appeal(session, appeal_id=args.id, accept=args.accept, decision=args.decision,
                                   corrected_value=args.value, by=user.username, by_role=user.role, now=utcnow())
    print(f"appeal {row.id}: {row.status}")


def cmd_score_appeals(args: argparse.Namespace) -> None:
    from collector.scope import Scope
    from collector.scoring import review

    with database(args).session() as session:
        rows = review.appeals(session, scope=Scope.everything(), period=args.period, status=args.status)
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))
        return
    for r in rows:
        print(f"{r.id:>5} {r.period} unit {r.unit_id} {r.indicator:<3} {r.status:<9} {r.submitted_by}: {r.reason[:60]}")


def register(sub, command: Callable) -> None:
    score = sub.add_parser("score", help="unit information-security assurance score (CS-ATTT)") \
        .add_subparsers(dest="action", required=True)
    p = command("compute", cmd_score_compute, "compute and store every unit's indicators for one day", score)
    p.add_argument("--date", help="YYYY-MM-DD, a day that has ended (default: yesterday, Asia/Ho_Chi_Minh)")
    p = command("freeze", cmd_score_freeze, "freeze a month's snapshot (once; never rewritten)", score)
    p.add_argument("--month", required=True, help="YYYY-MM")
    p = command("show", cmd_score_show, "a unit's score and indicators for one day", score)
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--date", help="YYYY-MM-DD (default: yesterday)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = command("adjust", cmd_score_adjust, "grant a bonus or penalty on a unit's annual score", score)
    p.add_argument("--unit", required=True)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--kind", required=True, help="incident_from_overdue, incident_unreported, false_evidence, bonus")
    p.add_argument("--points", type=float, help="a bonus's points")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, help="the approving administrator (recorded)")
    p = command("publish", cmd_score_publish, "publish a year's ranking on the public page", score)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--withdraw", action="store_true")
    p.add_argument("--by", required=True, help="the administrator (recorded)")
    p = command("appeals", cmd_score_appeals, "appeals against frozen snapshot values", score)
    p.add_argument("--period", help="YYYY-MM")
    p.add_argument("--status", choices=["pending", "accepted", "rejected"])
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = command("decide", cmd_score_decide, "accept (with the corrected value) or reject an appeal", score)
    p.add_argument("id", type=int)
    decision = p.add_mutually_exclusive_group(required=True)
    decision.add_argument("--accept", action="store_true")
    decision.add_argument("--reject", dest="accept", action="store_false")
    p.add_argument("--value", type=float, help="the corrected value (0-100) when accepting")
    p.add_argument("--decision", required=True, help="why")
    p.add_argument("--by", required=True, help="the deciding administrator (recorded)")
    p = command("ranking", cmd_ranking, "the annual ranking per peer group from the year's frozen snapshots")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--format", choices=["table", "csv", "json", "xlsx"], default="table")
    p.add_argument("--output", help="write to this file (required for xlsx)")
