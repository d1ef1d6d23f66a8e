"""Plan goals (mục tiêu): the targets of ``rules/data/goals/`` as data, and a goal's progress and projection.

Goals are data, not code, because they come from directives and provincial plans that change by year
and are sometimes read from secondary copies: a province corrects a target, a deadline or the legal
reference in a YAML file, and every report records the goal ``version`` it was measured against.
Progress is a pure function of a metric's daily series so the console, the reports and the tests all
compute the same trend and projected date.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rules.detect.loader import data_files, read_yaml_file
from rules.detect.model import LoadError
from rules.detect.schema import Checker

DATA_DIR = Path(__file__).parent / "data" / "goals"
COMPARISONS = (">=", "<=", "==")
SCOPES = ("province", "unit")
REQUIRED = ("id", "version", "title", "metric", "comparison", "target", "deadline", "scope")
OPTIONAL = ("source", "scored", "description")
# The trend should follow the current effort, not a rollout two years ago.
TREND_DAYS = 90
# Percentages are computed with float division; "100 %" must still count as exactly 100.
EPSILON = 1e-9

# (metric, unit, vi, en). Indicator metrics are the 0–100 scores of the unit score (CS-ATTT).
_METRIC_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("indicator:A1", "percent", "Độ bao phủ giám sát", "Monitoring coverage"),
    ("indicator:A2", "percent", "Xử lý lỗ hổng đúng hạn", "Vulnerability remediation on time"),
    ("indicator:A3", "percent", "Cấu hình an toàn máy chủ", "Server hardening"),
    ("indicator:A4", "percent", "Phòng chống mã độc", "Malware protection"),
    ("indicator:A5", "percent", "Nhật ký & đồng bộ thời gian", "Logging and time"),
    ("indicator:A6", "percent", "Sao lưu & khôi phục", "Backup and recovery"),
    ("indicator:A7", "percent", "Bề mặt tấn công", "External exposure"),
    ("indicator:A8", "percent", "Phát hiện & xử lý sự cố", "Detection & incident handling"),
    ("indicator:M1", "percent", "Tuân thủ cấp độ", "Level compliance"),
    ("indicator:M2", "percent", "Đánh giá, đào tạo, diễn tập", "Assessment, training, drills"),
    ("indicator:M3", "percent", "SOC chuyên nghiệp & kết nối quốc gia", "Professional SOC & national connection"),
    ("systems_level_approved_pct", "percent", "Tỷ lệ hệ thống thông tin được phê duyệt cấp độ",
     "Information systems with an approved security level"),
    ("plans_fully_implemented_pct", "percent", "Tỷ lệ hệ thống triển khai đầy đủ phương án bảo đảm an toàn",
     "Information systems with the protection plan fully implemented"),
    ("servers_monitored_pct", "percent", "Tỷ lệ máy chủ được giám sát", "Servers monitored"),
    ("antimalware_managed_pct", "percent", "Tỷ lệ máy có phần mềm phòng chống mã độc quản lý tập trung",
     "Machines with centrally managed anti-malware"),
    ("overdue_p0_critical_count", "count", "Số lỗ hổng P0/nghiêm trọng quá hạn",
     "Overdue P0/critical vulnerabilities"),
    ("offline_backup_pct", "percent", "Tỷ lệ hệ thống có bản sao lưu ngoại tuyến",
     "Information systems with an offline backup"),
    ("officer_designated_pct", "percent", "Tỷ lệ đơn vị có cán bộ phụ trách an toàn thông tin",
     "Units with a designated security officer"),
    ("training_and_drill_pct", "percent", "Tỷ lệ đơn vị đã đào tạo và diễn tập trong năm",
     "Units trained and drilled this year"),
    ("incidents_reported_on_time_pct", "percent", "Tỷ lệ sự cố được báo cáo đúng hạn",
     "Incidents reported on time"),
    ("security_spending_pct", "percent", "Tỷ lệ chi cho an toàn thông tin trên ngân sách công nghệ thông tin",
     "Security spending as a share of the IT budget"),
)
METRICS: tuple[str, ...] = tuple(row[0] for row in _METRIC_TABLE)
METRIC_UNITS: dict[str, str] = {row[0]: row[1] for row in _METRIC_TABLE}
METRIC_LABELS: dict[str, dict[str, str]] = {row[0]: {"vi": row[2], "en": row[3]} for row in _METRIC_TABLE}


class GoalDataError(ValueError):
    """The goal files are malformed; ``errors`` name the file and line of each problem."""

    def __init__(self, errors: list[LoadError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Goal:
    id: str
    version: str
    title: Mapping[str, str]  # {vi, en}
    metric: str
    comparison: str
    target: float
    deadline: date
    scope: tuple[str, ...]
    scored: bool = True
    source: str | None = None
    description: Mapping[str, str] | None = None
    file: str = ""

    @property
    def unit(self) -> str:
        return METRIC_UNITS[self.metric]


@dataclass(frozen=True, slots=True)
class GoalSet:
    goals: tuple[Goal, ...]  # sorted by id

    def get(self, goal_id: str) -> Goal | None:
        return next((g for g in self.goals if g.id == goal_id), None)


@dataclass(frozen=True, slots=True)
class Progress:
    current: float | None
    met: bool | None
    trend_per_day: float | None
    projected_date: date | None
    on_track: bool | None
    days_left: int


def load_goals(directory: Path = DATA_DIR) -> GoalSet:
    """Parse and validate every goal file; every problem of the run is reported at once, with file and line."""
    errors: list[LoadError] = []
    files = data_files([Path(directory)], errors)
    if not files and not errors:
        errors.append(LoadError(str(directory), None, "no goals: the directory has no .yaml files"))
    goals: dict[str, Goal] = {}
    for file in files:
        check, goal = _load_file(file)
        errors.extend(check.errors)
        if goal is None:
            continue
        if goal.id in goals:
            # Only possible as x.yaml next to x.yml; the id is the key reports are stored under.
            errors.append(LoadError(str(file), check.lines.of(("id",)),
                                    f"duplicate id {goal.id!r}: also defined in {goals[goal.id].file}"))
            continue
        goals[goal.id] = goal
    if errors:
        raise GoalDataError(sorted(errors, key=lambda e: (e.file, e.line or 0)))
    return GoalSet(goals=tuple(sorted(goals.values(), key=lambda g: g.id)))


def _load_file(file: Path) -> tuple[Checker, Goal | None]:
    check, data = read_yaml_file(file)
    if data is None and check.errors:
        return check, None
    return check, build_goal(data, check, file.stem)


def build_goal(data: Any, check: Checker, stem: str) -> Goal | None:
    """Validate one parsed goal file; returns the Goal, or None with errors recorded in ``check``."""
    raw = check.mapping(data, (), "a goal file")
    if raw is None:
        return None
    before = len(check.errors)
    check.keys(raw, (), REQUIRED, OPTIONAL)
    goal_id = _goal_id(raw, check, stem)
    version = check.string(raw["version"], ("version",), "version") if "version" in raw else None
    title = check.text(raw["title"], ("title",), "title") if "title" in raw else None
    metric = _metric(raw, check)
    comparison = check.choice(raw["comparison"], ("comparison",), "comparison", COMPARISONS) \
        if "comparison" in raw else None
    target = _target(raw, check, metric)
    deadline = _deadline(raw, check)
    scope = _scope(raw, check)
    scored = raw.get("scored", True)
    if not isinstance(scored, bool):
        check.error(("scored",), f"scored must be true or false, not {scored!r}")
    source = check.string(raw["source"], ("source",), "source") if "source" in raw else None
    description = check.text(raw["description"], ("description",), "description") if "description" in raw \
        else None
    if len(check.errors) > before or None in (goal_id, version, title, metric, comparison, target, deadline, scope):
        return None
    return Goal(id=goal_id, version=version, title=title, metric=metric, comparison=comparison, target=target,
                deadline=deadline, scope=scope, scored=scored, source=source, description=description,
                file=check.file)


def _goal_id(raw: Mapping[str, Any], check: Checker, stem: str) -> str | None:
    if "id" not in raw:
        return None
    goal_id = check.string(raw["id"], ("id",), "id")
    if goal_id is not None and goal_id != stem:
        check.error(("id",), f"id {goal_id!r} does not match the file name {stem!r}")
        return None
    return goal_id


def _metric(raw: Mapping[str, Any], check: Checker) -> str | None:
    if "metric" not in raw:
        return None
    metric = raw["metric"]
    if isinstance(metric, str) and metric in METRICS:
        return metric
    check.error(("metric",), f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    return None


def _target(raw: Mapping[str, Any], check: Checker, metric: str | None) -> float | None:
    if "target" not in raw:
        return None
    target = raw["target"]
    # bool is an int in Python, and "target: yes" is a typo, not a target of 1.
    if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
        check.error(("target",), f"target must be a number, not {target!r}")
        return None
    unit = METRIC_UNITS.get(metric) if metric else None
    if unit == "percent" and not 0 <= target <= 100:
        check.error(("target",), f"target {target!r} of a percent metric must be between 0 and 100")
        return None
    if unit == "count" and target < 0:
        check.error(("target",), f"target {target!r} of a count metric must not be negative")
        return None
    return float(target)


def _deadline(raw: Mapping[str, Any], check: Checker) -> date | None:
    if "deadline" not in raw:
        return None
    value = raw["deadline"]
    # A timestamp is a datetime, itself a date; a deadline is a day, so a time of day is a mistake.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    check.error(("deadline",), f"deadline must be a date (YYYY-MM-DD), not {value!r}")
    return None


def _scope(raw: Mapping[str, Any], check: Checker) -> tuple[str, ...] | None:
    if "scope" not in raw:
        return None
    value = raw["scope"]
    if not isinstance(value, list) or not value:
        check.error(("scope",), f"scope must be a non-empty list of {', '.join(SCOPES)}")
        return None
    seen: list[str] = []
    ok = True
    for index, item in enumerate(value):
        if check.choice(item, ("scope", index), "scope", SCOPES) is None:
            ok = False
        elif item in seen:
            check.error(("scope", index), f"duplicate scope {item!r}")
            ok = False
        else:
            seen.append(item)
    return tuple(seen) if ok else None


def progress(goal: Goal, series: list[tuple[date, float]], *, today: date) -> Progress:
    """Where a goal stands: current value, met or not, the daily trend and when it reaches the target."""
    days_left = (goal.deadline - today).days
    by_day: dict[date, float] = {}
    for day, value in series:
        # A missing measurement (NaN) must not poison the trend; a re-computed day replaces the earlier one.
        if math.isfinite(value):
            by_day[day] = float(value)
    if not by_day:
        return Progress(current=None, met=None, trend_per_day=None, projected_date=None, on_track=None,
                        days_left=days_left)
    latest = max(by_day)
    current = by_day[latest]
    met = _met(goal, current)
    window = sorted((d, v) for d, v in by_day.items() if (latest - d).days < TREND_DAYS)
    slope = intercept = None
    if len(window) >= 2:
        # x relative to the latest day keeps the numbers small, and the intercept is the trend's value today.
        slope, intercept = statistics.linear_regression([(d - latest).days for d, _ in window],
                                                        [v for _, v in window])
    if met:
        return Progress(current=current, met=True, trend_per_day=slope, projected_date=today, on_track=True,
                        days_left=days_left)
    projected = _projected(goal, current, slope, intercept, latest, today)
    if projected is not None:
        on_track: bool | None = projected <= goal.deadline
    else:
        # One measurement says nothing about the direction; flat or wrong-way trends are off track.
        on_track = None if slope is None else False
    return Progress(current=current, met=False, trend_per_day=slope, projected_date=projected, on_track=on_track,
                    days_left=days_left)


def _met(goal: Goal, value: float) -> bool:
    if goal.comparison == ">=":
        return value >= goal.target - EPSILON
    if goal.comparison == "<=":
        return value <= goal.target + EPSILON
    return abs(value - goal.target) < EPSILON


def _projected(goal: Goal, current: float, slope: float | None, intercept: float | None, latest: date,
               today: date) -> date | None:
    if slope is None or intercept is None or slope == 0:
        return None
    # "==" moves like ">=" from below and like "<=" from above; the needed sign follows from the gap.
    rising = current < goal.target if goal.comparison == "==" else goal.comparison == ">="
    if (slope > 0) != rising:
        return None
    days = (goal.target - intercept) / slope
    # Whole days: the first day on which the trend line reaches the target, not a fraction of one.
    projected = latest + timedelta(days=max(0, math.ceil(days - EPSILON)))
    # A stale series may project into the past; the target is not met today, so it cannot be earlier than today.
    return max(projected, today)
