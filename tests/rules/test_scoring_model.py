"""The scoring model file: the shipped defaults, and every kind of mistake reported with file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.scoring.model import DATA_FILE, INDICATORS, ScoringModelError, load_model


def broken(tmp_path: Path, old: str, new: str, count: int = 1) -> list[str]:
    """The errors of the shipped model with ``old`` replaced by ``new`` (as 'line: message')."""
    text = DATA_FILE.read_text(encoding="utf-8")
    assert text.count(old) >= count, old
    path = tmp_path / "model.yaml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    with pytest.raises(ScoringModelError) as info:
        load_model(path)
    assert all(e.file == str(path) for e in info.value.errors)
    return [f"{e.line}: {e.message}" for e in info.value.errors]


def line_of(needle: str) -> int:
    for number, line in enumerate(DATA_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_the_shipped_model_is_the_reference_model():
    model = load_model()
    assert model.version and set(model.indicators) == set(INDICATORS)
    assert sum(i.weight for i in model.indicators.values()) == 100
    assert {i: model.indicators[i].weight for i in ("A1", "A2", "A3", "M1")} == {"A1": 8, "A2": 18, "A3": 14, "M1": 10}
    # w(a) = L × E
    assert model.asset_weight(level=5, internet_facing=True) == 9.0
    assert model.asset_weight(level=1, internet_facing=False) == 1.0
    assert model.asset_weight(level=None, internet_facing=False) == 2.0
    # bands: Tốt >= 85, Khá 70–84, Trung bình 50–69, Yếu 30–49, Kém < 30
    assert [model.grade_for(s).grade for s in (100, 85, 84.99, 70, 69.5, 50, 49, 30, 29.9, 0)] == \
        ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"]
    assert model.grade_for(60).label["vi"] == "Trung bình"
    assert model.peer_group_of("commune").id == "communes" and model.peer_group_of("province") is None
    assert model.snapshot_day == 14 and model.min_valid_months == 10
    assert model.ratings == {"dat": 1, "dat_mot_phan": 0.5, "chua_dat": 0}
    assert model.adjustments["incident_unreported"].grade_cap == "C"
    assert [t.key for t in model.tie_breaks] == ["overdue_p0_critical_days", "mean:A2", "mean:A1"]


def test_weights_not_summing_to_100(tmp_path):
    errors = broken(tmp_path, "    weight: 18\n", "    weight: 19\n")
    assert errors == [f"{line_of('indicators:') + 1}: indicator weights must sum to 100, not 101"]


def test_unknown_and_missing_indicators(tmp_path):
    errors = broken(tmp_path, "  A8:\n", "  A9:\n")
    known = "A1, A2, A3, A4, A5, A6, A7, A8, M1, M2, M3"
    assert f"{line_of('  A8:') + 1}: unknown indicator 'A9'; known: {known}" in errors
    assert f"{line_of('indicators:') + 1}: missing indicator A8" in errors


def test_parameters_components_and_kinds(tmp_path):
    errors = broken(tmp_path, "params: {critical_fail_cap: 0.5}", "params: {critical_fail_kap: 0.5}")
    line = line_of("critical_fail_cap")
    assert f"{line}: unknown parameter 'critical_fail_kap'; known: critical_fail_cap" in errors
    assert f"{line}: missing parameter 'critical_fail_cap'" in errors
    errors = broken(tmp_path, "components: {audit: 0.3,", "components: {audit: 0.4,")
    assert errors == [f"{line_of('components: {audit')}: the component shares of A5 must sum to 1, not 1.1"]
    errors = broken(tmp_path, "    kind: attested\n    weight: 10", "    kind: measured\n    weight: 10")
    assert errors == [f"{line_of('kind: attested')}: M1 is attested (A1–A8 are measured, M1–M3 attested)"]
    errors = broken(tmp_path, "s_P0: 20", "s_P0: yes")
    assert errors == [f"{line_of('s_P0')}: parameter s_P0 must be a number, not True"]


def test_web_components_are_package_patterns_and_only_for_a7(tmp_path):
    line = line_of("web_components:")
    errors = broken(tmp_path, "web_components: [apache2*,", "web_components: [\"Apache%\",")
    assert errors == [f"{line}: 'Apache%' is not a package name, optionally ending in * "
                      "(lower-case letters, digits, . + _ -)"]
    errors = broken(tmp_path, "web_components: [apache2*,", "web_components: [[apache2*],")
    assert errors == [f"{line}: web_components must be a list of strings"]
    errors = broken(tmp_path, "    components: {alerts_handled",
                    "    web_components: [nginx]\n    components: {alerts_handled")  # on A8
    assert any("web_components" in e and "unknown" in e.lower() for e in errors), errors


def test_bands_ratings_peer_groups_tie_breaks_and_snapshot(tmp_path):
    errors = broken(tmp_path, "{grade: B, min: 70,", "{grade: B, min: 90,")
    assert errors == [f"{line_of('grade: B')}: bands must be listed highest first, each min lower"]
    errors = broken(tmp_path, "{grade: E, min: 0,", "{grade: E, min: 10,")
    assert errors == [f"{line_of('grade: E')}: the lowest band must start at 0 so every score has a grade"]
    errors = broken(tmp_path, "dat_mot_phan: {value: 0.5,", "dat_mot_phan: {value: 1.5,")
    assert errors == [f"{line_of('dat_mot_phan:')}: the value of dat_mot_phan must be within 0..1, not 1.5"]
    errors = broken(tmp_path, "kinds: [commune]", "kinds: [department, hamlet]")
    line = line_of("kinds: [commune]")
    assert f"{line}: unit kind 'department' is already in peer group departments" in errors
    assert f"{line}: unknown unit kind 'hamlet'; known: province, department, commune, district" in errors
    errors = broken(tmp_path, 'key: "mean:A2"', 'key: "mean:A9"')
    assert len(errors) == 1 and errors[0].startswith(f"{line_of('mean:A2')}: key must be one of")
    errors = broken(tmp_path, "  day: 14 ", "  day: 31 ")
    assert errors == [f"{line_of('  day: 14')}: the snapshot day must be within 1..28, not 31"]


def test_all_problems_of_one_file_in_one_run(tmp_path):
    text = DATA_FILE.read_text(encoding="utf-8")
    text = text.replace("    weight: 18\n", "    weight: 17\n").replace("s_P0: 20", "s_P0: -1")
    text = text.replace("  internal: 1\n", "  internal: 0\n").replace("  appeal_working_days: 10", "  appeals: 10")
    path = tmp_path / "model.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScoringModelError) as info:
        load_model(path)
    messages = str(info.value)
    assert "indicator weights must sum to 100, not 99" in messages
    assert "parameter s_P0 must be within 0..∞, not -1" in messages
    assert re.search(r"internal must be within 1e-09\.\.∞, not 0", messages)
    assert "unknown key 'appeals'" in messages and "missing key 'appeal_working_days'" in messages
    assert len(info.value.errors) == 5


def test_unreadable_and_syntax_errors(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("version: '1'\nindicators: [\n", encoding="utf-8")
    with pytest.raises(ScoringModelError) as info:
        load_model(path)
    assert info.value.errors[0].line is not None and "YAML syntax error" in info.value.errors[0].message
    with pytest.raises(ScoringModelError, match="cannot read"):
        load_model(tmp_path / "missing.yaml")
