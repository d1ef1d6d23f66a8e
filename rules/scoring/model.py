"""The CS-ATTT scoring model (``rules/data/scoring/model.yaml``) as validated data.

Everything a province may tune — indicator weights and parameters, asset weights, grade bands,
adjustments, peer groups, the snapshot day, tie-breaks — is read from the file, never written into
code; ``load_model`` collects every problem in one run, each with its file and line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rules.detect.loader import read_yaml_file
from rules.detect.model import LoadError

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "scoring" / "model.yaml"
MEASURED = ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8")
ATTESTED = ("M1", "M2", "M3")
INDICATORS = MEASURED + ATTESTED
LEVELS = (1, 2, 3, 4, 5)
UNIT_KINDS = ("province", "department", "commune", "district")
GRADES = ("A", "B", "C", "D", "E")
RATINGS = ("dat", "dat_mot_phan", "chua_dat")
ADJUSTMENTS = ("incident_from_overdue", "incident_unreported", "false_evidence", "bonus")
TIE_BREAK_KEYS = ("overdue_p0_critical_days", *(f"mean:{i}" for i in INDICATORS))
# Parameters each indicator's computation reads; a missing or unknown one is a load error, so a
# typo in the file cannot silently fall back to a default.
PARAMS: dict[str, tuple[str, ...]] = {
    "A1": ("min_reporting_days_pct", "last_report_hours", "include_unmanaged"),
    "A2": ("s_P0", "s_P1", "s_P2", "s_P3", "cap_exposed_p0_overdue", "cap_p0_p1_exception"),
    "A3": ("critical_fail_cap",),
    "A4": ("signature_max_age_days", "stale_credit", "central_management_from_level"),
    "A5": ("forwarding_hours", "ntp_max_offset_s"),
    "A6": ("backup_max_age_hours",),
    "A7": ("risky_service", "ssh_password", "weak_tls", "vulnerable_web", "defacement"),
    "A8": ("acknowledge_hours", "initial_report_hours", "full_report_hours"),
}
COMPONENTS: dict[str, tuple[str, ...]] = {
    "A5": ("audit", "forwarding", "retention", "ntp"),
    "A6": ("recent_backup", "offline_copy", "restore_test"),
    "A8": ("alerts_handled", "incidents_reported"),
    "M1": ("level_approved", "plan_implemented", "rules_and_officer"),
    "M2": ("independent_assessment", "training", "drill"),
    "M3": ("soc_coverage", "national_connection"),
}
EPSILON = 1e-9


class ScoringModelError(ValueError):
    """The scoring model file is malformed; ``errors`` name the file and line of each problem."""

    def __init__(self, errors: list[LoadError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    kind: str  # measured | attested
    weight: float
    label: dict[str, str]
    params: dict[str, float]
    components: dict[str, float]  # shares summing to 1 (empty when the indicator has none)
    # A7: the packages that make a web component (shell-style patterns, e.g. "php*"); empty elsewhere.
    web_components: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Band:
    grade: str
    min: float
    label: dict[str, str]


@dataclass(frozen=True, slots=True)
class Adjustment:
    id: str
    label: dict[str, str]
    points: float = 0.0
    max_points: float | None = None
    grade: str | None = None  # forces this grade
    grade_cap: str | None = None  # the grade can be no better than this


@dataclass(frozen=True, slots=True)
class PeerGroup:
    id: str
    kinds: tuple[str, ...]
    label: dict[str, str]


@dataclass(frozen=True, slots=True)
class TieBreak:
    key: str
    order: str  # asc | desc


@dataclass(frozen=True, slots=True)
class ScoringModel:
    version: str
    name: dict[str, str]
    level_weights: dict[int, float]
    unknown_level_weight: float
    exposed_weight: float
    internal_weight: float
    indicators: dict[str, Indicator]
    ratings: dict[str, float]
    rating_labels: dict[str, dict[str, str]]
    bands: tuple[Band, ...]  # highest first
    not_enough_data_label: dict[str, str]
    min_valid_months: int
    valid_month_min_a1: float
    adjustments: dict[str, Adjustment]
    snapshot_day: int
    appeal_working_days: int
    peer_groups: dict[str, PeerGroup]
    tie_breaks: tuple[TieBreak, ...]

    def asset_weight(self, *, level: int | None, internet_facing: bool) -> float:
        """w(a) = L(a) × E(a); an undeclared level has its own weight (and is flagged elsewhere)."""
        base = self.level_weights.get(level, self.unknown_level_weight) if level is not None \
            else self.unknown_level_weight
        return base * (self.exposed_weight if internet_facing else self.internal_weight)

    def grade_for(self, score: float) -> Band:
        for band in self.bands:
            if score >= band.min - EPSILON:
                return band
        return self.bands[-1]

    def peer_group_of(self, unit_kind: str) -> PeerGroup | None:
        return next((g for g in self.peer_groups.values() if unit_kind in g.kinds), None)


# ---- loading -------------------------------------------------------------------------------------

def load_model(path: Path = DATA_FILE) -> ScoringModel:
    """Parse and validate the model; every problem is reported at once, with file and line."""
    check, data = read_yaml_file(path)
    if data is None:
        raise ScoringModelError(check.errors)
    root = check.mapping(data, (), "the scoring model")
    required = ("version", "name", "asset_weights", "indicators", "ratings", "grades", "not_enough_data",
                "adjustments", "snapshot", "peer_groups", "tie_breaks")
    if root is None or not check.keys(root, (), required, ()):
        raise ScoringModelError(check.errors)
    r = _Reader(check)
    version = check.string(root["version"], ("version",), "version") or ""
    name = r.label(root["name"], ("name",))
    levels, unknown, exposed, internal = r.asset_weights(root["asset_weights"])
    indicators = r.indicators(root["indicators"])
    ratings, rating_labels = r.ratings(root["ratings"])
    bands = r.bands(root["grades"])
    nod_label, min_valid, valid_a1 = r.not_enough_data(root["not_enough_data"])
    adjustments = r.adjustments(root["adjustments"])
    day, appeal_days = r.snapshot(root["snapshot"])
    groups = r.peer_groups(root["peer_groups"])
    ties = r.tie_breaks(root["tie_breaks"])
    if check.errors:
        raise ScoringModelError(check.errors)
    return ScoringModel(
        version=version, name=name, level_weights=levels, unknown_level_weight=unknown, exposed_weight=exposed,
        internal_weight=internal, indicators=indicators, ratings=ratings, rating_labels=rating_labels, bands=bands,
        not_enough_data_label=nod_label, min_valid_months=min_valid, valid_month_min_a1=valid_a1,
        adjustments=adjustments, snapshot_day=day, appeal_working_days=appeal_days, peer_groups=groups,
        tie_breaks=ties)


@lru_cache(maxsize=1)
def builtin_model() -> ScoringModel:
    return load_model()


class _Reader:
    """Section readers; each records its errors on the shared checker and returns what it could read."""

    def __init__(self, check: Any) -> None:
        self.check = check

    def number(self, raw: Any, path: tuple, what: str, *, low: float | None = None, high: float | None = None,
               integer: bool = False) -> float | None:
        ok_type = isinstance(raw, int) if integer else isinstance(raw, (int, float))
        if isinstance(raw, bool) or not ok_type or (isinstance(raw, float) and not math.isfinite(raw)):
            self.check.error(path, f"{what} must be {'an integer' if integer else 'a number'}, not {raw!r}")
            return None
        if (low is not None and raw < low) or (high is not None and raw > high):
            bounds = f"{low if low is not None else '-∞'}..{high if high is not None else '∞'}"
            self.check.error(path, f"{what} must be within {bounds}, not {raw!r}")
            return None
        return raw

    def label(self, raw: Any, path: tuple) -> dict[str, str]:
        label = self.check.mapping(raw, path, "a label")
        if label is None or not self.check.keys(label, path, ("vi", "en"), ()):
            return {}
        out = {}
        for lang in ("vi", "en"):
            text = self.check.string(label[lang], (*path, lang), f"the {lang} label")
            if text is not None:
                out[lang] = text
        return out

    def asset_weights(self, raw: Any) -> tuple[dict[int, float], float, float, float]:
        path = ("asset_weights",)
        m = self.check.mapping(raw, path, "asset_weights")
        if m is None or not self.check.keys(m, path, ("level", "unknown_level", "internet_facing", "internal"), ()):
            return {}, 0.0, 0.0, 0.0
        levels: dict[int, float] = {}
        lv = self.check.mapping(m["level"], (*path, "level"), "level weights") or {}
        for key, value in lv.items():
            if key not in LEVELS:
                self.check.error((*path, "level", key), f"unknown security level {key!r}; levels are 1-5")
                continue
            w = self.number(value, (*path, "level", key), f"the weight of level {key}", low=EPSILON)
            if w is not None:
                levels[key] = w
        if lv and set(lv) >= set(LEVELS):
            ordered = [levels[k] for k in LEVELS if k in levels]
            if ordered != sorted(ordered):
                self.check.error((*path, "level"), "level weights must not decrease with the level")
        for missing in sorted(set(LEVELS) - set(lv)):
            self.check.error((*path, "level"), f"missing the weight of level {missing}")
        values = [self.number(m[k], (*path, k), k, low=EPSILON) or 0.0
                  for k in ("unknown_level", "internet_facing", "internal")]
        return levels, values[0], values[1], values[2]

    def indicators(self, raw: Any) -> dict[str, Indicator]:
        path = ("indicators",)
        m = self.check.mapping(raw, path, "indicators")
        if m is None:
            return {}
        out: dict[str, Indicator] = {}
        for ident, body in m.items():
            ipath = (*path, ident)
            if ident not in INDICATORS:
                self.check.error(ipath, f"unknown indicator {ident!r}; known: {', '.join(INDICATORS)}")
                continue
            item = self.indicator(ident, body, ipath)
            if item is not None:
                out[ident] = item
        for missing in [i for i in INDICATORS if i not in m]:
            self.check.error(path, f"missing indicator {missing}")
        if len(out) == len(INDICATORS):
            total = sum(i.weight for i in out.values())
            if abs(total - 100) > EPSILON:
                self.check.error(path, f"indicator weights must sum to 100, not {total:g}")
        return out

    def indicator(self, ident: str, raw: Any, path: tuple) -> Indicator | None:
        check = self.check
        body = check.mapping(raw, path, f"indicator {ident}")
        optional = ("params", "components", "web_components") if ident == "A7" else ("params", "components")
        if body is None or not check.keys(body, path, ("kind", "weight", "label"), optional):
            return None
        kind = check.choice(body["kind"], (*path, "kind"), "kind", ("measured", "attested"))
        expected = "measured" if ident in MEASURED else "attested"
        if kind is not None and kind != expected:
            check.error((*path, "kind"), f"{ident} is {expected} (A1–A8 are measured, M1–M3 attested)")
        weight = self.number(body["weight"], (*path, "weight"), f"the weight of {ident}", low=0, high=100)
        label = self.label(body["label"], (*path, "label"))
        params = self.named_numbers(body.get("params", {}), (*path, "params"), PARAMS.get(ident, ()), "parameter")
        components = self.named_numbers(body.get("components", {}), (*path, "components"),
                                        COMPONENTS.get(ident, ()), "component", low=0, high=1)
        if ident in COMPONENTS and len(components) == len(COMPONENTS[ident]):
            total = sum(components.values())
            if abs(total - 1) > EPSILON:
                check.error((*path, "components"), f"the component shares of {ident} must sum to 1, not {total:g}")
        web: tuple[str, ...] = ()
        if "web_components" in body:
            web = check.string_list(body["web_components"], (*path, "web_components"), "web_components") or ()
            for pattern in web:
                if not re.fullmatch(r"[a-z0-9][a-z0-9.+_-]*\*?", pattern):
                    check.error((*path, "web_components"), f"{pattern!r} is not a package name, optionally "
                                "ending in * (lower-case letters, digits, . + _ -)")
        if weight is None or kind is None:
            return None
        return Indicator(id=ident, kind=kind, weight=weight, label=label, params=params, components=components,
                         web_components=web)

    def named_numbers(self, raw: Any, path: tuple, names: tuple[str, ...], what: str, *, low: float | None = 0,
                      high: float | None = None) -> dict[str, float]:
        """Exactly ``names`` as numbers: a missing or unknown one is an error."""
        m = self.check.mapping(raw, path, f"the {what}s")
        if m is None:
            return {}
        out: dict[str, float] = {}
        for key, value in m.items():
            if key not in names:
                known = ", ".join(names) or f"none (this indicator takes no {what}s)"
                self.check.error((*path, key), f"unknown {what} {key!r}; known: {known}")
                continue
            number = self.number(value, (*path, key), f"{what} {key}", low=low, high=high)
            if number is not None:
                out[key] = number
        for missing in [n for n in names if n not in m]:
            self.check.error(path, f"missing {what} {missing!r}")
        return out

    def ratings(self, raw: Any) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
        path = ("ratings",)
        m = self.check.mapping(raw, path, "ratings")
        if m is None or not self.check.keys(m, path, RATINGS, ()):
            return {}, {}
        values, labels = {}, {}
        for key in RATINGS:
            body = self.check.mapping(m[key], (*path, key), f"rating {key}")
            if body is None or not self.check.keys(body, (*path, key), ("value", "label"), ()):
                continue
            value = self.number(body["value"], (*path, key, "value"), f"the value of {key}", low=0, high=1)
            if value is not None:
                values[key] = value
            labels[key] = self.label(body["label"], (*path, key, "label"))
        return values, labels

    def bands(self, raw: Any) -> tuple[Band, ...]:
        path = ("grades",)
        if not isinstance(raw, list) or not raw:
            self.check.error(path, "grades must be a non-empty list of bands, highest first")
            return ()
        bands: list[Band] = []
        for i, body in enumerate(raw):
            bpath = (*path, i)
            b = self.check.mapping(body, bpath, "a grade band")
            if b is None or not self.check.keys(b, bpath, ("grade", "min", "label"), ()):
                continue
            grade = self.check.choice(b["grade"], (*bpath, "grade"), "grade", GRADES)
            low = self.number(b["min"], (*bpath, "min"), "min", low=0, high=100)
            label = self.label(b["label"], (*bpath, "label"))
            if grade is not None and low is not None:
                if bands and low >= bands[-1].min:
                    self.check.error((*bpath, "min"), "bands must be listed highest first, each min lower")
                bands.append(Band(grade=grade, min=low, label=label))
        if bands and bands[-1].min != 0:
            self.check.error((*path, len(raw) - 1, "min"), "the lowest band must start at 0 so every score has a grade")
        if len({b.grade for b in bands}) != len(bands):
            self.check.error(path, "each grade may appear once")
        return tuple(bands)

    def not_enough_data(self, raw: Any) -> tuple[dict[str, str], int, float]:
        path = ("not_enough_data",)
        m = self.check.mapping(raw, path, "not_enough_data")
        if m is None or not self.check.keys(m, path, ("label", "min_valid_months", "valid_month_min_a1"), ()):
            return {}, 0, 0.0
        months = self.number(m["min_valid_months"], (*path, "min_valid_months"), "min_valid_months", low=1, high=12,
                             integer=True)
        a1 = self.number(m["valid_month_min_a1"], (*path, "valid_month_min_a1"), "valid_month_min_a1", low=0,
                         high=100)
        return self.label(m["label"], (*path, "label")), int(months or 0), float(a1 or 0)

    def adjustments(self, raw: Any) -> dict[str, Adjustment]:
        path = ("adjustments",)
        m = self.check.mapping(raw, path, "adjustments")
        if m is None or not self.check.keys(m, path, ADJUSTMENTS, ()):
            return {}
        out: dict[str, Adjustment] = {}
        for ident in ADJUSTMENTS:
            apath = (*path, ident)
            body = self.check.mapping(m[ident], apath, f"adjustment {ident}")
            if body is None or not self.check.keys(body, apath, ("label",),
                                                   ("points", "max_points", "grade", "grade_cap")):
                continue
            points = self.number(body.get("points", 0), (*apath, "points"), "points", low=-100, high=100) or 0.0
            max_points = (self.number(body["max_points"], (*apath, "max_points"), "max_points", low=0, high=100)
                          if "max_points" in body else None)
            grade = self.check.choice(body["grade"], (*apath, "grade"), "grade", GRADES) if "grade" in body else None
            cap = (self.check.choice(body["grade_cap"], (*apath, "grade_cap"), "grade_cap", GRADES)
                   if "grade_cap" in body else None)
            out[ident] = Adjustment(id=ident, label=self.label(body["label"], (*apath, "label")), points=points,
                                    max_points=max_points, grade=grade, grade_cap=cap)
        return out

    def snapshot(self, raw: Any) -> tuple[int, int]:
        path = ("snapshot",)
        m = self.check.mapping(raw, path, "snapshot")
        if m is None or not self.check.keys(m, path, ("day", "appeal_working_days"), ()):
            return 0, 0
        # Day 28 at most: every month has it, so a snapshot is never skipped.
        day = self.number(m["day"], (*path, "day"), "the snapshot day", low=1, high=28, integer=True)
        appeal = self.number(m["appeal_working_days"], (*path, "appeal_working_days"), "appeal_working_days", low=0,
                             high=60, integer=True)
        return int(day or 0), int(appeal or 0)

    def peer_groups(self, raw: Any) -> dict[str, PeerGroup]:
        path = ("peer_groups",)
        m = self.check.mapping(raw, path, "peer_groups")
        if m is None or not m:
            if m is not None:
                self.check.error(path, "at least one peer group is needed for a ranking")
            return {}
        out: dict[str, PeerGroup] = {}
        owner: dict[str, str] = {}
        for ident, body in m.items():
            gpath = (*path, ident)
            g = self.check.mapping(body, gpath, f"peer group {ident}")
            if g is None or not self.check.keys(g, gpath, ("kinds", "label"), ()):
                continue
            kinds = self.check.string_list(g["kinds"], (*gpath, "kinds"), "kinds") or ()
            for kind in kinds:
                if kind not in UNIT_KINDS:
                    self.check.error((*gpath, "kinds"), f"unknown unit kind {kind!r}; known: {', '.join(UNIT_KINDS)}")
                elif kind in owner:
                    self.check.error((*gpath, "kinds"), f"unit kind {kind!r} is already in peer group {owner[kind]}")
                else:
                    owner[kind] = ident
            out[ident] = PeerGroup(id=str(ident), kinds=kinds, label=self.label(g["label"], (*gpath, "label")))
        return out

    def tie_breaks(self, raw: Any) -> tuple[TieBreak, ...]:
        path = ("tie_breaks",)
        if not isinstance(raw, list):
            self.check.error(path, "tie_breaks must be a list")
            return ()
        out = []
        for i, body in enumerate(raw):
            tpath = (*path, i)
            t = self.check.mapping(body, tpath, "a tie-break")
            if t is None or not self.check.keys(t, tpath, ("key", "order"), ()):
                continue
            key = self.check.choice(t["key"], (*tpath, "key"), "key", TIE_BREAK_KEYS)
            order = self.check.choice(t["order"], (*tpath, "order"), "order", ("asc", "desc"))
            if key is not None and order is not None:
                out.append(TieBreak(key=key, order=order))
        return tuple(out)
