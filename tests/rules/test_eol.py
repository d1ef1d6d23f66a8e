"""OS end-of-life table: lookups, boundary days, unknown systems, and loader errors."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from pathlib import Path

import pytest

from rules import eol

D = date(2026, 11, 22)


def test_shipped_table_loads_and_covers_the_required_releases():
    table = eol.load_table()
    assert table.as_of >= date(2026, 1, 1)
    required = {"debian": ["10", "11", "12", "13"],
                "ubuntu": ["18.04", "20.04", "22.04", "22.10", "23.04", "23.10", "24.04", "24.10", "25.04",
                           "25.10", "26.04"],
                "rhel": ["7", "8", "9", "10"], "almalinux": ["8", "9", "10"], "rocky": ["8", "9", "10"],
                "windows_server": ["2012 R2", "2016", "2019", "2022", "2025"]}
    for os_id, versions in required.items():
        for version in versions:
            assert eol.eol_status(os_id, version, D).status != "unknown", (os_id, version)


@pytest.mark.parametrize(("os_id", "version", "product", "key", "eol_date"), [
    ("debian", "12", "Debian", "12", date(2028, 6, 30)),
    ("debian", "12.7", "Debian", "12", date(2028, 6, 30)),       # /etc/debian_version style
    ("debian", "bookworm", "Debian", "12", date(2028, 6, 30)),   # codename
    ("ubuntu", "22.04", "Ubuntu", "22.04", date(2027, 6, 1)),
    ("Ubuntu", "20.04", "Ubuntu", "20.04", date(2025, 5, 29)),
    ("rhel", "9.4", "Red Hat Enterprise Linux", "9", date(2032, 5, 31)),
    ("almalinux", "8.10", "AlmaLinux", "8", date(2029, 3, 1)),
    ("rocky", "9.5", "Rocky Linux", "9", date(2032, 5, 31)),
    ("centos", "7", "CentOS Linux / CentOS Stream", "7", date(2024, 6, 30)),
    ("windows", "2019Server", "Windows Server", "2019", date(2029, 1, 9)),      # platform.win32_ver()
    ("windows", "2012ServerR2", "Windows Server", "2012 R2", date(2023, 10, 10)),
    ("windows_server", "10.0.20348", "Windows Server", "2022", date(2031, 10, 14)),
])
def test_lookup(os_id, version, product, key, eol_date):
    status = eol.eol_status(os_id, version, D)
    assert (status.product, status.version, status.eol_date) == (product, key, eol_date)
    assert status.days_left == (eol_date - D).days


def test_extended_support_is_reported_but_does_not_change_the_status():
    status = eol.eol_status("ubuntu", "20.04", D)
    assert status.status == "eol" and status.extended == "Ubuntu Pro ESM" and status.extended_end == date(2030, 4, 23)


@pytest.mark.parametrize(("on", "status", "days_left"), [
    (date(2028, 6, 30), "eol_soon", 0),                          # the last supported day
    (date(2028, 7, 1), "eol", -1),                               # the day after
    (date(2028, 6, 30) - timedelta(days=180), "eol_soon", 180),  # "soon" includes the 180th day
    (date(2028, 6, 30) - timedelta(days=181), "supported", 181),
])
def test_boundaries(on, status, days_left):
    result = eol.eol_status("debian", "12", on)
    assert (result.status, result.days_left) == (status, days_left)


def test_soon_window_is_a_parameter():
    on = date(2028, 6, 30) - timedelta(days=100)
    assert eol.eol_status("debian", "12", on).status == "eol_soon"
    assert eol.eol_status("debian", "12", on, soon_days=30).status == "supported"


@pytest.mark.parametrize(("os_id", "version", "product"), [
    ("arch", "", None), ("", "", None), ("debian", "9", "Debian"), ("ubuntu", "21.04", "Ubuntu"),
    ("windows", "10.0.17763", None),  # a bare build could be Windows 10 LTSC: not guessed
    ("windows", "10", None),
    ("windows_server", "2008 R2", "Windows Server"),
])
def test_unknown(os_id, version, product):
    status = eol.eol_status(os_id, version, D)
    assert (status.status, status.eol_date, status.days_left, status.product) == ("unknown", None, None, product)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "os_eol.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("as_of: 2026-01-01\nproducts:\n  debian:\n    versions:\n      '12': {eol: soon}\n",
     r"products\.debian\.versions\.12\.eol: expected a date"),
    ("as_of: 2026-01-01\nproducts:\n  debian:\n    versions:\n      12: {eol: 2028-06-30}\n",
     r"products\.debian\.versions\.12: version keys must be quoted"),
    ("as_of: 2026-01-01\nproducts:\n  debian:\n    versions:\n      '12': {eol: 2028-06-30, eos: 2026-01-01}\n",
     r"unknown keys \['eos'\]"),
    ("as_of: 2026-01-01\nproducts:\n  debian:\n    versions:\n"
     "      '12': {eol: 2028-06-30, standard_end: 2029-01-01}\n",
     r"dates out of order"),
    ("as_of: 2026-01-01\nproducts:\n  a: {aliases: [x], versions: {}}\n  b: {aliases: [x], versions: {}}\n",
     r"products\.b\.aliases: alias 'x' is used twice"),
    ("products: {}\n", r"as_of: expected a date"),
    ("- just a list\n", r"top level"),
    ("as_of: [\n", r"os_eol\.yaml"),
])
def test_loader_errors_name_the_file_and_entry(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(eol.EolDataError, match=message) as info:
        eol.load_table(path)
    assert str(path) in str(info.value)


def test_custom_table():
    table = eol.load_table(Path(__file__).parent.parent.parent / "rules/data/os_eol.yaml")
    assert eol.eol_status("rhel", "7.9", D, table=table).status == "eol"


def test_rules_eol_imports_only_stdlib_and_yaml():
    tree = ast.parse(Path(eol.__file__).read_text())
    modules = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    allowed = {"__future__", "collections", "re", "dataclasses", "datetime", "functools", "pathlib", "typing", "yaml"}
    assert modules <= allowed


DISTRO_INFO = Path("/usr/share/distro-info")


@pytest.mark.skipif(not DISTRO_INFO.is_dir(), reason="distro-info-data not installed")
@pytest.mark.parametrize(("os_id", "column"), [("debian", "eol-lts"), ("ubuntu", "eol")])
def test_table_agrees_with_distro_info_data(os_id, column):
    """Debian's own release table (distro-info-data) is the source; the shipped rows must match it."""
    import csv

    with (DISTRO_INFO / f"{os_id}.csv").open() as rows:
        known = {r["version"].removesuffix(" LTS"): r.get(column) for r in csv.DictReader(rows)}
    table = eol.load_table()
    for key, release in table.releases[os_id].items():
        if known.get(key):  # an older distro-info-data may not list the newest release yet
            assert release.eol.isoformat() == known[key], (os_id, key)


@pytest.mark.parametrize(("row", "product", "version"), [
    ({"platform": "linux", "id": "debian", "version_id": "12", "version": "12 (bookworm)"}, "Debian", "12"),
    ({"platform": "windows", "id": "windows", "version": "2022Server", "version_id": "10.0.20348"},
     "Windows Server", "2022"),
    ({"platform": "linux", "id": "rhel", "version_id": "8.10"}, "Red Hat Enterprise Linux", "8"),
])
def test_eol_for_inventory_os_rows(row, product, version):
    status = eol.eol_for_os(row, D)
    assert (status.product, status.version) == (product, version) and status.status != "unknown"


def test_eol_for_unknown_rows():
    assert eol.eol_for_os({}, D).status == "unknown"
    assert eol.eol_for_os({"id": "windows", "version": "10", "version_id": "10.0.19045"}, D).status == "unknown"
