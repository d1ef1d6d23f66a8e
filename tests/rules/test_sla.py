"""The SLA table: every cell of the assurance model's deadline table, the column rules, and load errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rules.distro import distro_key
from rules.sla import CLASSES, SlaDataError, builtin_sla, class_for_cvss, column_for, deadline, load_sla, worst

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)

# (class) -> (exposed-or-L3, internal L1–2, L4–5) as (fix, mitigate) — the reference table, cell by cell.
TABLE = {
    "P0": ((7 * D, 48 * H), (7 * D, None), (72 * H, 24 * H)),
    "P1": ((15 * D, None), (30 * D, None), (7 * D, None)),
    "P2": ((30 * D, None), (60 * D, None), (15 * D, None)),
    "P3": ((90 * D, None), (90 * D, None), (60 * D, None)),
    "P4": ((180 * D, None), (180 * D, None), (180 * D, None)),
    "critical_misconfig": ((72 * H, None), (7 * D, None), (24 * H, None)),
    "failed_check": ((30 * D, None), (30 * D, None), (15 * D, None)),
    "eol": ((180 * D, 30 * D), (180 * D, 30 * D), (30 * D, None)),
}


@pytest.mark.parametrize("cls", CLASSES)
def test_every_cell_matches_the_reference_table(cls):
    table = builtin_sla()
    hosts = ((3, False), (1, False), (5, False))  # exposed/L3, internal L1–2, L4–5
    for (level, facing), (fix, mitigate) in zip(hosts, TABLE[cls], strict=True):
        due = deadline(table, cls, level=level, internet_facing=facing, clock_start=T0)
        assert due.due_at == T0 + fix, (cls, level)
        assert due.mitigate_by == (T0 + mitigate if mitigate else None), (cls, level)


def test_columns():
    assert column_for(level=2, internet_facing=True) == "exposed"
    assert column_for(level=2, internet_facing=False) == "internal"
    assert column_for(level=None, internet_facing=False) == "exposed"  # unknown level counts as level 3
    assert column_for(level=4, internet_facing=True) == "strict"  # the strictest column wins


def test_cvss_bands_and_worst():
    assert [class_for_cvss(s) for s in (9.8, 9.0, 8.9, 7.0, 6.9, 4.0, 3.9, None)] == \
        ["P1", "P1", "P2", "P2", "P3", "P3", "P4", None]
    assert worst(["P3", "eol", "P0"]) == "P0" and worst([]) is None


def test_broken_table_names_file_and_line(tmp_path):
    bad = tmp_path / "sla.yaml"
    bad.write_text('version: "x"\nclasses:\n  P0:\n    label: {vi: a, en: b}\n    exposed: {fix: soon}\n'
                   "    internal: {fix: 7d, mitigate: 8d}\n    strict: {fix: 1d}\n")
    with pytest.raises(SlaDataError) as err:
        load_sla(bad)
    text = str(err.value)
    assert f"{bad}:5:" in text and "duration" in text
    assert "mitigate milestone must not come after" in text
    assert "missing class 'P1'" in text


@pytest.mark.parametrize(("os_row", "key"), [
    ({"id": "debian", "version_id": "12"}, "debian:12"),
    ({"id": "debian", "codename": "trixie"}, "debian:13"),
    ({"id": "ubuntu", "version_id": "22.04"}, "ubuntu:22.04"),
    ({"id": "rocky", "version_id": "9.3"}, "rocky:9"),
    ({"id": "almalinux", "version_id": "8.10"}, "alma:8"),
    ({"id": "alpine", "version_id": "3.18.4"}, "alpine:3.18"),
    ({"id": "windows", "version_id": "10.0"}, None),
    ({"id": "debian"}, None),
])
def test_distro_keys(os_row, key):
    assert distro_key(os_row) == key
