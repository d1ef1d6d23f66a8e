"""Plan goals: the shipped defaults, every load error with its file and line, and the progress projection."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from rules.goals import (
    DATA_DIR,
    METRIC_LABELS,
    METRIC_UNITS,
    METRICS,
    Goal,
    GoalDataError,
    Progress,
    load_goals,
    progress,
)

TODAY = date(2026, 11, 22)
VALID = """\
id: {id}
version: "2026.1"
title: {{vi: "100 % máy chủ được giám sát", en: "100 % of servers monitored"}}
source: "Directive 09/CT-TTg (2024)"
metric: servers_monitored_pct
comparison: ">="
target: 100
deadline: 2026-12-31
scope: [province, unit]
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(directory: Path) -> list[tuple[str, int | None, str]]:
    with pytest.raises(GoalDataError) as err:
        load_goals(directory)
    return [(Path(e.file).name, e.line, e.message) for e in err.value.errors]


def goal(comparison: str = ">=", target: float = 100, metric: str = "servers_monitored_pct",
         deadline: date = date(2026, 12, 31)) -> Goal:
    return Goal(id="g", version="1", title={"vi": "g", "en": "g"}, metric=metric, comparison=comparison,
                target=target, deadline=deadline, scope=("province",))


def daily(start: date, values: list[float]) -> list[tuple[date, float]]:
    return [(start + timedelta(days=i), v) for i, v in enumerate(values)]


# --- the shipped defaults ---------------------------------------------------------------------------------

def test_defaults_load_with_ids_equal_to_file_names_and_known_metrics():
    goals = load_goals().goals
    files = sorted(p.stem for p in DATA_DIR.glob("*.yaml"))
    assert [g.id for g in goals] == files
    assert {g.id for g in goals} >= {"systems_level_approved", "plans_fully_implemented", "servers_monitored",
                                     "antimalware_managed", "overdue_p0_critical", "offline_backup",
                                     "officer_designated", "training_and_drill", "incidents_reported_on_time",
                                     "security_spending"}
    for g in goals:
        assert g.metric in METRICS and Path(g.file).stem == g.id
        assert g.title["vi"] != g.title["en"]  # a Vietnamese title, not a copy of the English one
    by_id = {g.id: g for g in goals}
    overdue = by_id["overdue_p0_critical"]
    assert (overdue.comparison, overdue.target, overdue.unit) == ("<=", 0, "count")
    spending = by_id["security_spending"]
    assert (spending.target, spending.scored) == (10, False)
    assert all(g.scored for g in goals if g.id != "security_spending")


def test_every_metric_has_a_unit_and_both_labels():
    assert len(set(METRICS)) == len(METRICS)
    assert {f"indicator:{i}" for i in ("A1", "A8", "M1", "M3")} <= set(METRICS)
    for metric in METRICS:
        assert METRIC_UNITS[metric] in ("percent", "count")
        assert METRIC_LABELS[metric]["vi"] and METRIC_LABELS[metric]["en"]


def test_a_minimal_goal_gets_the_defaults(tmp_path):
    write(tmp_path, "b_goal", VALID.format(id="b_goal").replace('source: "Directive 09/CT-TTg (2024)"\n', ""))
    write(tmp_path, "a_goal", VALID.format(id="a_goal").replace("2026-12-31", '"2027-06-30"'))
    goals = load_goals(tmp_path).goals
    assert [g.id for g in goals] == ["a_goal", "b_goal"]  # sorted by id
    assert goals[0].deadline == date(2027, 6, 30)  # a quoted date is accepted too
    assert goals[1].scored is True and goals[1].source is None and goals[1].description is None


# --- load errors: each names the file and the line ------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "line", "needle"), [
    ("id: bad", "id: other", 1, "does not match the file name 'bad'"),
    ("metric: servers_monitored_pct", "metric: servers_watched_pct", 5, "unknown metric 'servers_watched_pct'"),
    ("target: 100", "target: 150", 7, "between 0 and 100"),
    ("target: 100", "target: true", 7, "target must be a number"),
    ("target: 100", 'target: "100"', 7, "target must be a number"),
    ("deadline: 2026-12-31", 'deadline: "31/12/2026"', 8, "deadline must be a date"),
    ("deadline: 2026-12-31", "deadline: 2026-12-31T08:00:00", 8, "deadline must be a date"),
    ("deadline: 2026-12-31", "deadline: 2026-02-30", 8, "day is out of range"),
    ("scope: [province, unit]", "scope:\n  - unit\n  - unit", 11, "duplicate scope 'unit'"),
    ("scope: [province, unit]", "scope: []", 9, "non-empty list"),
    ("scope: [province, unit]", "scope: [province, district]", 9, "scope must be one of province, unit"),
    ('comparison: ">="', 'comparison: ">"', 6, "comparison must be one of"),
    ("scope: [province, unit]", "scope: [province, unit]\nscored: maybe", 10, "scored must be true or false"),
    ("scope: [province, unit]", "scope: [province, unit]\nowner: ubnd", 10, "unknown key 'owner'"),
    ('version: "2026.1"\n', "", 1, "missing key 'version'"),
    ('title: {vi: "100 % máy chủ được giám sát", en: "100 % of servers monitored"}',
     'title: {vi: "100 % máy chủ được giám sát"}', 3, "missing key 'en'"),
])
def test_a_bad_value_names_file_and_line(tmp_path, old, new, line, needle):
    text = VALID.format(id="bad")
    assert old in text
    write(tmp_path, "bad", text.replace(old, new))
    errors = errors_of(tmp_path)
    assert len(errors) == 1, errors
    assert errors[0][:2] == ("bad.yaml", line) and needle in errors[0][2], errors


def test_a_count_metric_takes_any_non_negative_target(tmp_path):
    text = VALID.format(id="few").replace("servers_monitored_pct", "overdue_p0_critical_count")
    write(tmp_path, "few", text.replace("target: 100", "target: 250"))
    assert load_goals(tmp_path).goals[0].target == 250
    write(tmp_path, "few", text.replace("target: 100", "target: -1"))
    assert errors_of(tmp_path) == [("few.yaml", 7, "target -1 of a count metric must not be negative")]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    write(tmp_path, "broken", VALID.format(id="broken").replace("scope: [province, unit]", "scope: [province, unit"))
    [(name, line, message)] = errors_of(tmp_path)
    # The parser stops on line 10 (end of file); the message also points at where the list began.
    assert (name, line) == ("broken.yaml", 10)
    assert "YAML syntax error" in message and "flow sequence on line 9" in message


def test_an_empty_file_and_a_list_are_not_goals(tmp_path):
    write(tmp_path, "empty", "")
    write(tmp_path, "listed", "- id: listed\n")
    errors = errors_of(tmp_path)
    assert [e[0] for e in errors] == ["empty.yaml", "listed.yaml"]
    assert all("a goal file must be a mapping" in e[2] for e in errors)


def test_every_problem_of_a_run_is_reported(tmp_path):
    write(tmp_path, "good", VALID.format(id="good"))
    write(tmp_path, "two", VALID.format(id="zwei").replace("target: 100", "target: 150"))
    write(tmp_path, "three", VALID.format(id="three").replace("servers_monitored_pct", "nope")
          .replace("scope: [province, unit]", "scope: [unit, unit]"))
    write(tmp_path, "syntax", "id: syntax\ntitle: {vi: a\n")
    errors = errors_of(tmp_path)
    found = {(name, line) for name, line, _ in errors}
    assert {("two.yaml", 1), ("two.yaml", 7), ("three.yaml", 5), ("three.yaml", 9)} <= found
    assert ("syntax.yaml", 3) in found
    assert not any(name == "good.yaml" for name, _, _ in errors)
    with pytest.raises(GoalDataError) as err:
        load_goals(tmp_path)
    text = str(err.value)
    assert f"{tmp_path / 'two.yaml'}:7:" in text  # the message a maintainer reads names file:line


def test_the_same_id_twice_is_reported(tmp_path):
    write(tmp_path, "twin", VALID.format(id="twin"))
    (tmp_path / "twin.yml").write_text(VALID.format(id="twin"), encoding="utf-8")
    [(name, line, message)] = errors_of(tmp_path)
    assert line == 1 and "duplicate id 'twin'" in message and name in ("twin.yaml", "twin.yml")


def test_an_empty_directory_has_no_goals(tmp_path):
    [(_, line, message)] = errors_of(tmp_path)
    assert line is None and "no goals" in message
    assert "no such file" in errors_of(tmp_path / "missing")[0][2]


# --- progress --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("comparison", "target", "value", "met"), [
    (">=", 100, 100.0, True), (">=", 100, 99.5, False), (">=", 100, 100 - 1e-12, True),
    ("<=", 0, 0.0, True), ("<=", 0, 1.0, False),
    ("==", 50, 50.0, True), ("==", 50, 50.1, False), ("==", 50, 49.9, False),
])
def test_met_for_each_comparison(comparison, target, value, met):
    result = progress(goal(comparison, target), [(TODAY, value)], today=TODAY)
    assert result.current == value and result.met is met
    assert result.trend_per_day is None  # one point has no trend
    assert result.projected_date == (TODAY if met else None)
    assert result.on_track is (True if met else None)


def test_a_linear_rise_is_projected_to_the_exact_day():
    start = TODAY - timedelta(days=30)
    series = daily(start, [50 + i for i in range(31)])  # 50 -> 80 over 30 days: +1 a day
    result = progress(goal(), list(reversed(series)), today=TODAY)  # any order
    assert result.current == 80 and result.met is False
    assert result.trend_per_day == pytest.approx(1.0)
    assert result.projected_date == TODAY + timedelta(days=20)
    assert result.on_track is True and result.days_left == 39
    late = progress(goal(deadline=TODAY + timedelta(days=19)), series, today=TODAY)
    assert late.projected_date == TODAY + timedelta(days=20) and late.on_track is False


def test_a_fractional_crossing_rounds_up_to_the_first_whole_day():
    series = daily(TODAY - timedelta(days=2), [90, 93, 96])  # +3 a day: 100 is passed during day 4
    result = progress(goal(), series, today=TODAY)
    assert result.trend_per_day == pytest.approx(3.0)
    assert result.projected_date == TODAY + timedelta(days=2)


def test_only_the_last_90_days_set_the_trend():
    old = daily(TODAY - timedelta(days=200), [0.0] * 50)  # a flat past long before the window
    recent = daily(TODAY - timedelta(days=89), [10 + 0.5 * i for i in range(90)])
    result = progress(goal(), old + recent, today=TODAY)
    assert result.trend_per_day == pytest.approx(0.5)


def test_a_trend_the_wrong_way_or_flat_is_off_track():
    falling = daily(TODAY - timedelta(days=10), [90 - i for i in range(11)])
    result = progress(goal(), falling, today=TODAY)
    assert result.trend_per_day == pytest.approx(-1.0)
    assert result.projected_date is None and result.on_track is False and result.met is False
    flat = progress(goal(), daily(TODAY - timedelta(days=5), [70.0] * 6), today=TODAY)
    assert flat.trend_per_day == 0 and flat.projected_date is None and flat.on_track is False


def test_an_empty_series_has_no_answers():
    result = progress(goal(deadline=TODAY - timedelta(days=3)), [], today=TODAY)
    assert result == Progress(current=None, met=None, trend_per_day=None, projected_date=None, on_track=None,
                              days_left=-3)


def test_a_count_goal_going_down_to_zero():
    g = goal("<=", 0, metric="overdue_p0_critical_count")
    series = daily(TODAY - timedelta(days=4), [12, 10, 8, 6, 4])  # -2 a day
    result = progress(g, series, today=TODAY)
    assert result.trend_per_day == pytest.approx(-2.0)
    assert result.projected_date == TODAY + timedelta(days=2) and result.on_track is True
    done = progress(g, [*series, (TODAY + timedelta(days=1), 0)], today=TODAY + timedelta(days=1))
    assert done.met is True and done.projected_date == TODAY + timedelta(days=1) and done.on_track is True


def test_equality_goal_projects_from_either_side():
    g = goal("==", 50)
    from_below = progress(g, daily(TODAY - timedelta(days=1), [40, 45]), today=TODAY)
    from_above = progress(g, daily(TODAY - timedelta(days=1), [60, 55]), today=TODAY)
    away = progress(g, daily(TODAY - timedelta(days=1), [55, 60]), today=TODAY)
    assert from_below.projected_date == from_above.projected_date == TODAY + timedelta(days=1)
    assert away.projected_date is None and away.on_track is False


def test_a_stale_series_is_not_projected_into_the_past():
    series = daily(TODAY - timedelta(days=40), [80, 85, 90, 95])  # would have reached 100 on day 4
    result = progress(goal(), series, today=TODAY)
    assert result.met is False and result.projected_date == TODAY


def test_a_recomputed_day_replaces_the_earlier_value_and_nan_is_ignored():
    series = [(TODAY - timedelta(days=1), 50.0), (TODAY, 60.0), (TODAY, 70.0), (TODAY, float("nan"))]
    result = progress(goal(), series, today=TODAY)
    assert result.current == 70.0 and result.trend_per_day == pytest.approx(20.0)
