"""Why a unit scored what it did on a day: the score by indicator, and the evidence behind lost points.

For every indicator: its value, weight, the points it gave and the points lost, and the hosts that
lost the most (weighted), with what each host's contribution was computed from. For A2 the overdue
findings and for A3 the failed checks behind the hosts. Read through the caller's scope like
everything else; a unit's explanation names its own hosts only.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from collector.compliance.models import CheckResultRow
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.scope import Scope
from collector.scoring import service as scoring
from collector.scoring.activity import local_day
from collector.scoring.cache import TimedCache, database_of
from collector.scoring.indicators import SCORED_CLASSES, VULN_KINDS, Window
from collector.types import utcnow
from collector.units import service as units
from rules.scoring.model import ScoringModel, builtin_model

TOP = 20

# A finished day's explanation costs seconds on a large unit and barely changes once the day is over
# (only late agent data or triage about that day moves it): kept ten minutes per unit, day and model.
EXPLANATIONS: TimedCache[dict[str, Any]] = TimedCache(ttl_s=600, max_entries=256)


def explain_cached(session: Session, *, scope: Scope, unit_code: str, day: date,
                   model: ScoringModel | None = None) -> dict[str, Any]:
    """``explain()``, reused for a day that has ended. The viewer's scope is checked on every call,
    before the cache; today's explanation is always computed, since the day is still moving."""
    model = model or builtin_model()
    unit = units.get_visible(session, scope=scope, code=unit_code)
    if day >= local_day(utcnow()):
        return explain(session, scope=scope, unit_code=unit.code, day=day, model=model)
    found = EXPLANATIONS.get_or_compute(
        (database_of(session), unit.id, day, model.version),
        lambda: explain(session, scope=scope, unit_code=unit.code, day=day, model=model))
    return copy.deepcopy(found)  # callers may shape what they were given; the cached entry stays whole


def explain(session: Session, *, scope: Scope, unit_code: str, day: date,
            model: ScoringModel | None = None) -> dict[str, Any]:
    model = model or builtin_model()
    unit = units.get_visible(session, scope=scope, code=unit_code)
    result = scoring.compute(session, day=day, model=model, unit_ids=frozenset({unit.id}))[unit.id]
    score = result.score(model)
    window = Window.of(day)
    names = dict(session.execute(select(Host.id, Host.hostname).where(Host.unit_id == unit.id)).all())
    indicators: dict[str, Any] = {}
    for ident, m in result.measures.items():
        weight = model.indicators[ident].weight
        value = m.value
        lost = [p for p in m.parts if p[0] != "cap" and p[2] < 1]
        lost.sort(key=lambda p: p[1] * (1 - p[2]), reverse=True)
        indicators[ident] = {
            "label": model.indicators[ident].label, "kind": model.indicators[ident].kind, "weight": weight,
            "value": value, "value_without_exceptions": m.value_without_exceptions,
            "points": round(weight * (value or 0) / 100, 2),
            "points_lost": round(weight * (100 - (value or 0)) / 100, 2),
            "numerator": round(m.numerator, 4), "denominator": round(m.denominator, 4),
            "caps": [p[3] for p in m.parts if p[0] == "cap"],
            "losing": [_part(p, names) for p in lost[:TOP]], "losing_total": len(lost),
        }
    indicators["A2"]["overdue_findings"] = _overdue(session, unit_id=unit.id, window=window, names=names)
    indicators["A3"]["failed_checks"] = _failed_checks(session, unit_id=unit.id, window=window, names=names)
    band = model.grade_for(score)
    return {"unit": unit.code, "name": unit.name, "day": day.isoformat(), "model_version": model.version,
            "score": score, "score_without_exceptions": result.score(model, with_exceptions=False),
            "grade": band.grade, "grade_label": band.label, "indicators": indicators}


def _part(part: tuple, names: dict[int, str]) -> dict[str, Any]:
    ident, weight, score, detail = part
    kind, _, key = str(ident).partition(":")
    out: dict[str, Any] = {"weight": round(weight, 4), "score": round(score, 4), "detail": detail}
    if kind == "host" and key.isdigit():
        out |= {"host_id": int(key), "hostname": names.get(int(key))}
    elif kind == "addr":
        out["address"] = key
    else:
        out["item"] = ident
    return out


def _overdue(session: Session, *, unit_id: int, window: Window, names: dict[int, str]) -> list[dict[str, Any]]:
    """The unit's findings that were overdue in the window, most overdue first."""
    f = Finding
    rows = session.execute(select(f.id, f.host_id, f.rule, f.location, f.finding_class, f.due_at, f.fixed_at).where(
        f.unit_id == unit_id, f.kind.in_(VULN_KINDS), f.finding_class.in_(SCORED_CLASSES),
        f.first_seen < window.at, or_(f.fixed_at.is_(None), f.fixed_at >= window.start),
        f.due_at < window.at, or_(f.fixed_at.is_(None), f.fixed_at > f.due_at)).order_by(f.due_at).limit(TOP * 5))
    out = []
    for fid, host_id, rule, location, cls, due_at, fixed_at in rows:
        until = min(fixed_at or window.at, window.at)
        out.append({"finding_id": fid, "host_id": host_id, "hostname": names.get(host_id), "rule": rule,
                    "package": location, "class": cls, "due_at": due_at.isoformat(),
                    "overdue_days": round((until - due_at) / timedelta(days=1), 1),
                    "fixed_at": fixed_at.isoformat() if fixed_at else None})
    return out


def _failed_checks(session: Session, *, unit_id: int, window: Window, names: dict[int, str]) -> list[dict[str, Any]]:
    c = CheckResultRow
    rows = session.execute(select(c.host_id, c.check_id, c.critical, c.severity).where(
        c.unit_id == unit_id, c.status.in_(("fail", "error")), c.valid_from < window.at,
        or_(c.valid_to.is_(None), c.valid_to >= window.at)).order_by(c.critical.desc(), c.host_id, c.check_id)
        .limit(TOP * 10))
    return [{"host_id": h, "hostname": names.get(h), "check_id": check, "critical": bool(critical),
             "severity": severity} for h, check, critical, severity in rows]

