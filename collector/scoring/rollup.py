"""Roll-ups: the indicators of a unit together with every unit below it (a province sees its whole
tree), from the per-unit values, numerators and denominators the daily values and snapshots store.

Asset-weighted indicators pool their sums over every host of the subtree, so a large department
weighs more than a small commune and a single unit's cap does not carry up; A8 pools its alert counts
and averages the units' incident-reporting part; the attested ones are the mean of the units that have one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import fmean

from rules.scoring.model import ScoringModel

# Indicators whose numerator and denominator are asset-weighted sums over hosts: they pool across units.
POOLED = frozenset({"A1", "A2", "A3", "A4", "A5", "A7"})

# One unit's stored indicator: (value, value without exceptions, numerator, denominator).
Stored = tuple[float | None, float | None, float | None, float | None]


def children_of(parents: Iterable[tuple[int, int | None]]) -> dict[int | None, list[int]]:
    """``(unit id, parent id)`` pairs → each parent's children."""
    out: dict[int | None, list[int]] = {}
    for unit_id, parent_id in parents:
        out.setdefault(parent_id, []).append(unit_id)
    return out


def subtree(unit_id: int, children: Mapping[int | None, list[int]]) -> list[int]:
    """The unit and every unit below it."""
    found, stack = [unit_id], [unit_id]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def rollup(model: ScoringModel, units_values: Iterable[Mapping[str, Stored]]) -> dict[str, float | None]:
    units_values = list(units_values)
    out: dict[str, float | None] = {}
    for ident in model.indicators:
        entries = [v[ident] for v in units_values if ident in v]
        values = [e[0] for e in entries if e[0] is not None]
        if ident in POOLED:
            num = sum(e[2] or 0.0 for e in entries)
            den = sum(e[3] or 0.0 for e in entries)
            out[ident] = 100 * num / den if den else (fmean(values) if values else None)
        elif ident == "A8":
            out[ident] = _a8(model, entries)
        else:
            out[ident] = fmean(values) if values else None
    return {k: (round(v, 4) if v is not None else None) for k, v in out.items()}


def _a8(model: ScoringModel, entries: list[Stored]) -> float | None:
    """The alert half pooled over every alert of the subtree; the incident half is each unit's value
    minus its alert half (what the unit earned for reporting incidents), averaged."""
    if not entries:
        return None
    share = model.indicators["A8"].components["alerts_handled"]
    incident_parts = [e[0] - 100 * share * ((e[2] or 0.0) / e[3] if e[3] else 1.0)
                      for e in entries if e[0] is not None]
    handled, alerts = sum(e[2] or 0.0 for e in entries), sum(e[3] or 0.0 for e in entries)
    alert_part = 100 * share * (handled / alerts if alerts else 1.0)
    incident_part = fmean(incident_parts) if incident_parts else 100 * (1 - share)
    return alert_part + incident_part


def corrected(stored: Stored, value: float | None) -> Stored:
    """A stored indicator with an accepted appeal's corrected value: a pooled numerator is rescaled so
    the roll-up carries the correction too."""
    _, raw, num, den = stored
    if value is not None and den:
        num = value * den / 100
    return (value, raw, num, den)
