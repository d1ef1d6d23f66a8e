"""Windows: Get-HotFix and WUA JSON parsers on fixtures; the collector is unsupported on Linux."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.collectors.base import ListSink
from agent.collectors.patches import windows
from agent.collectors.patches._common import CommandResult
from tests.agent.test_patches_collector import validate_items

FIXTURES = Path(__file__).parent / "fixtures" / "patches"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_hotfix_single_object():
    assert windows.parse_hotfixes(fixture("hotfix_single.json")) == [
        {"id": "KB5034439", "installed_on": "2024-01-16", "description": "Security Update"}]


def test_hotfix_array_with_every_date_rendering():
    rows = windows.parse_hotfixes(fixture("hotfix_array.json"))
    assert [(r["id"], r["installed_on"]) for r in rows] == [
        ("KB5034439", "2024-01-16"), ("KB5011497", "2022-03-08"), ("KB4535680", None)]


@pytest.mark.parametrize(("value", "expected"), [
    ({"value": "/Date(1705363200000)/"}, "2024-01-16"),
    ("3/8/2022 12:00:00", "2022-03-08"),
    ({"DateTime": "Tuesday, January 16, 2024 12:00:00 AM"}, "2024-01-16"),
    ("", None), (None, None), ("soon", None),
])
def test_installed_on(value, expected):
    assert windows.installed_on(value) == expected


def test_empty_output_means_none():
    assert windows.parse_hotfixes("") == [] and windows.parse_wua_pending("  ") == ([], False)


def test_wua_pending():
    rows, reboot = windows.parse_wua_pending(fixture("wua_pending.json"))
    assert [(r["name"], r["security"]) for r in rows] == [
        ("KB5037782", True), ("KB2267602", False), ("KB5037930", False)]
    assert rows[0]["origin"].startswith("2024-05 Cumulative Update") and reboot is True


def test_wua_single_update_with_unrolled_arrays():
    text = '{"Title": "Update (KB5037765)", "KBArticleIDs": "5037765", "Categories": "Security Updates"}'
    rows, reboot = windows.parse_wua_pending(text)
    assert [(r["name"], r["security"]) for r in rows] == [("KB5037765", True)] and reboot is False


def fake_powershell(argv: list[str], timeout_s: float) -> CommandResult:
    script = argv[-1]
    if script.startswith("Get-HotFix"):
        return CommandResult(0, fixture("hotfix_array.json"))
    if "Microsoft.Update.Session" in script:
        return CommandResult(0, fixture("wua_pending.json"))
    return CommandResult(0, "False\r\n")


@pytest.mark.skipif(sys.platform.startswith("win"), reason="checks the non-Windows behaviour")
def test_windows_collector_is_unsupported_here_but_its_items_validate():
    sink = ListSink()
    collector = windows.WindowsPatchCollector(runner=fake_powershell)
    assert collector.run(sink).status == "unsupported" and sink.items == []
    [item] = list(collector.collect())
    data = item.data
    assert (data["manager"], data["pending_count"], data["security_count"]) == ("windows", 3, 1)
    assert len(data["hotfixes"]) == 3 and data["reboot_required"] is True and data["errors"] == []
    validate_items([item])


def test_windows_collector_reports_failures():
    def broken(argv, timeout_s):
        return CommandResult(1, "", "Access is denied.") if "Microsoft.Update" in argv[-1] else CommandResult(0, "{")
    [item] = list(windows.WindowsPatchCollector(runner=broken).collect())
    assert any(e.startswith("Get-HotFix: unreadable JSON") for e in item.data["errors"])
    assert "Windows Update search: exited 1: Access is denied." in item.data["errors"]
    validate_items([item])
