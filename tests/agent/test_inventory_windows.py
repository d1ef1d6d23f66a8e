"""Windows inventory: the row builders on fixtures, and "unsupported" everywhere but Windows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agent.collectors.base import ListSink
from agent.collectors.inventory.windows import (
    WINDOWS_SECTIONS,
    WindowsInventoryCollector,
    package_row_from_uninstall,
    service_row_from_info,
)
from agent.wire import INVENTORY_SECTIONS
from collector.ingest.schema import row_models

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"


def test_uninstall_entries_become_package_rows():
    entries = json.loads((FIXTURES / "windows_uninstall.json").read_text())
    rows = [row for row in (package_row_from_uninstall(e, "x64") for e in entries) if row]
    assert [r["name"] for r in rows] == ["Mozilla Firefox (x64 en-US)", "7-Zip 23.01 (x64)"]
    assert rows[1] == {"name": "7-Zip 23.01 (x64)", "version": "23.01", "arch": "x64",
                       "source": "7-Zip 23.01 (x64)", "source_version": "23.01", "manager": "windows"}
    for row in rows:
        row_models()["packages"].model_validate(row)


def test_windows_services_map_to_systemd_like_words():
    infos = json.loads((FIXTURES / "windows_services.json").read_text())
    rows = {r["name"]: r for r in map(service_row_from_info, infos)}
    assert rows["wuauserv"] == {"name": "wuauserv", "enabled": "manual", "active": "active",
                                "description": "Windows Update"}
    assert (rows["Spooler"]["enabled"], rows["Spooler"]["active"]) == ("enabled", "inactive")
    assert rows["RemoteRegistry"]["enabled"] == "disabled"
    for row in rows.values():
        row_models()["services"].model_validate(row)


def test_declaration_covers_every_section_and_matches_the_collector():
    assert set(WINDOWS_SECTIONS) == set(INVENTORY_SECTIONS)
    collected = {name for name, how in WINDOWS_SECTIONS.items() if how}
    assert set(WindowsInventoryCollector.section_functions) == collected


@pytest.mark.skipif(sys.platform.startswith("win"), reason="checks the non-Windows behaviour")
def test_windows_collector_is_unsupported_here_and_does_not_raise():
    collector = WindowsInventoryCollector()
    sink = ListSink()
    stats = collector.run(sink)
    assert sink.items == [] and stats.status == "unsupported" and stats.errors == 0
    assert stats.last_error.startswith("unsupported on this platform")
