"""The per-unit annual security report: what the yearly report to the province asks for, from the data.

Systems and their levels, plan implementation and the other attested items as rated, the annual
score with its breakdown and rank, the open findings past their deadline, and the plans' goals.
Read through the caller's scope like every other unit view.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from collector.attestations.models import Attestation
from collector.errors import NotFound
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.incidents import service as incidents
from collector.scope import Scope
from collector.scoring import goals, ranking
from collector.scoring.activity import LOCAL_TZ, local_day
from collector.scoring.indicators import VULN_KINDS
from collector.units import service as units
from rules.scoring.model import ATTESTED, builtin_model

OVERDUE_LISTED = 25


def annual_report(session: Session, *, scope: Scope, unit_code: str, year: int, now: datetime) -> dict[str, Any]:
    unit = units.get_visible(session, scope=scope, code=unit_code)
    model = builtin_model()
    hosts = session.execute(select(Host.security_level, Host.internet_facing).where(Host.unit_id == unit.id)).all()
    levels = Counter(level for level, _ in hosts)
    systems = {"total": len(hosts), "internet_facing": sum(1 for _, exposed in hosts if exposed),
               "by_level": [(lvl, levels.get(lvl, 0)) for lvl in (1, 2, 3, 4, 5)], "undeclared": levels.get(None, 0)}
    attested = _attested(session, unit_id=unit.id, year=year, model=model)
    score = _score(session, unit_id=unit.id, year=year, now=now)
    return {"unit": unit, "year": year, "model": model, "systems": systems, "attested": attested,
            "score": score, "overdue": _overdue(session, unit_id=unit.id, now=now),
            "incidents": _incidents(session, scope=scope, unit_id=unit.id, year=year, now=now, model=model),
            "goals": goals.goal_progress(session, scope=scope, today=min(local_day(now), date(year, 12, 31)),
                                         unit_code=unit.code)["goals"],
            "generated_at": now}


def _attested(session: Session, *, unit_id: int, year: int, model) -> list[dict[str, Any]]:
    """Each attested item's latest rating for the year (None: not rated), in the model's order."""
    latest: dict[str, Attestation] = {}
    for row in session.scalars(select(Attestation).where(Attestation.unit_id == unit_id, Attestation.period == year,
                                                         Attestation.status == "rated")
                               .order_by(Attestation.reviewed_at, Attestation.id)):
        latest[row.item] = row
    out = []
    for ident in ("A6", *ATTESTED):
        for item in model.indicators[ident].components:
            row = latest.get(item)
            out.append({"indicator": ident, "item": item, "rating": row.rating if row else None,
                        "label": model.rating_labels[row.rating] if row else None,
                        "comment": row.review_comment if row else None})
    return out


def _incidents(session: Session, *, scope: Scope, unit_id: int, year: int, now: datetime, model) -> list[dict]:
    """The year's incidents with whether each serious one was reported on time (the model's A8 hours)."""
    p = model.indicators["A8"].params
    start = datetime(year, 1, 1, tzinfo=LOCAL_TZ)
    rows = incidents.list_(session, scope=scope, unit_id=unit_id, since=start,
                           until=datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ))
    return [{"incident": row, "on_time": incidents.on_time(row, at=now, initial_hours=p["initial_report_hours"],
                                                          full_hours=p["full_report_hours"])} for row in rows]


def _score(session: Session, *, unit_id: int, year: int, now: datetime) -> dict[str, Any] | None:
    """The unit's annual result from the ranking (None when no month of the year is frozen)."""
    try:
        report = ranking.annual(session, year=year, now=now)
    except NotFound:
        return None
    for group_id, ranked in report.groups.items():
        for r in ranked:
            if r.unit_id == unit_id:
                return {"group": report.model.peer_groups[group_id].label, "rank": r.rank, "of": len(ranked),
                        "result": r.result, "provisional": report.provisional, "periods": report.periods,
                        "synthetic": report.synthetic}
    return None


def _overdue(session: Session, *, unit_id: int, now: datetime) -> dict[str, Any]:
    """Open findings past their deadline now: counts by class and the most overdue ones."""
    open_overdue = (Finding.unit_id == unit_id, Finding.status.in_(("open", "reopened")), Finding.due_at < now)
    counts = dict(session.execute(select(Finding.finding_class, func.count()).where(*open_overdue)
                                  .group_by(Finding.finding_class)).all())
    rows = session.execute(select(Finding.rule, Finding.location, Finding.finding_class, Finding.kind, Finding.due_at,
                                  Host.hostname).outerjoin(Host, Host.id == Finding.host_id).where(*open_overdue)
                           .order_by(Finding.due_at).limit(OVERDUE_LISTED)).all()
    listed = [{"rule": rule, "location": location, "class": cls, "vulnerability": kind in VULN_KINDS,
               "due_at": due_at, "days": (now - due_at) // timedelta(days=1), "hostname": hostname}
              for rule, location, cls, kind, due_at, hostname in rows]
    return {"counts": dict(sorted(counts.items())), "total": sum(counts.values()), "listed": listed}
