"""InventoryCollector: full/delta/periodic-full sends, per-section failures, platforms, schema, speed."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest

from agent.collectors import base
from agent.collectors.base import ListSink
from agent.collectors.inventory import (
    InventoryCollector,
    accounts,
    collect_identity,
    collect_sections,
    hardware,
    identity,
    interfaces,
    os_info,
    packages,
    ports,
)
from agent.collectors.inventory import services as services_module
from agent.collectors.inventory.sections import LINUX_SECTIONS
from agent.wire import INVENTORY_SECTIONS, SECTION_FIELDS, Batch, section_hash
from collector.ingest.schema import parse_batch, row_models

ROOT = Path(__file__).parent / "fixtures" / "inventory" / "root"
FILE_SECTIONS = ("users", "groups", "packages")  # sections read only from files under the root


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FileOnlyInventory(InventoryCollector):
    """The real section functions that read only the root tree, so runs are deterministic."""

    section_functions: ClassVar[dict] = {name: LINUX_SECTIONS[name] for name in FILE_SECTIONS}


def run(collector: InventoryCollector) -> list:
    sink = ListSink()
    collector.run(sink)
    return sink.items


@pytest.fixture
def root(tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(ROOT, copy)
    return copy


def test_full_then_nothing_then_only_changed_then_full_again(root):
    clock = FakeClock()
    collector = FileOnlyInventory(root=root, full_every_s=3600, clock=clock)

    [first] = run(collector)
    assert first.type == "inventory.snapshot" and first.data["full"] is True
    assert set(first.data["sections"]) == set(FILE_SECTIONS)
    for name, section in first.data["sections"].items():
        assert section["hash"] == section_hash(section["rows"]), name

    clock.now += 60
    assert run(collector) == []

    with (root / "etc/group").open("a") as group:
        group.write("docker:x:999:alice\n")
    clock.now += 60
    [delta] = run(collector)
    assert delta.data["full"] is False and set(delta.data["sections"]) == {"groups"}
    assert {"name": "docker", "gid": 999, "members": ["alice"]} in delta.data["sections"]["groups"]["rows"]

    clock.now += 60
    assert run(collector) == []

    clock.now += 3600
    [full] = run(collector)
    assert full.data["full"] is True and set(full.data["sections"]) == set(FILE_SECTIONS)
    assert collector.stats.status == "ok" and collector.stats.errors == 0


def test_reset_forces_a_full_send(root):
    collector = FileOnlyInventory(root=root, clock=FakeClock())
    run(collector)
    assert run(collector) == []
    collector.reset()
    [again] = run(collector)
    assert again.data["full"] is True and set(again.data["sections"]) == set(FILE_SECTIONS)


def test_a_failing_section_does_not_lose_the_others(root):
    state = {"broken": True}

    def flaky_users(path: Path) -> list[dict]:
        if state["broken"]:
            raise PermissionError("cannot read /etc/passwd")
        return accounts.collect_users(path)

    class Flaky(FileOnlyInventory):
        section_functions: ClassVar[dict] = {**FileOnlyInventory.section_functions, "users": flaky_users}

    collector = Flaky(root=root, clock=FakeClock())
    sink = ListSink()
    collector.run(sink)
    snapshot, error = sink.items
    assert snapshot.type == "inventory.snapshot" and set(snapshot.data["sections"]) == {"groups", "packages"}
    assert error.type == "agent.error" and "users: PermissionError" in error.data["error"]
    assert collector.stats.status == "error"

    state["broken"] = False  # recovered: the missing section is sent even though no full is due
    [recovered] = run(collector)
    assert recovered.data["full"] is False and set(recovered.data["sections"]) == {"users"}
    assert collector.stats.status == "ok"


def test_collect_sections_survives_a_raising_section(monkeypatch):
    def boom(root: Path) -> list[dict]:
        raise RuntimeError("boom")

    monkeypatch.setitem(LINUX_SECTIONS, "packages", boom)
    sections = collect_sections(ROOT)
    assert "packages" not in sections
    assert set(sections) == set(INVENTORY_SECTIONS) - {"packages"}


def test_unsupported_platform_reports_without_raising(monkeypatch):
    monkeypatch.setattr(base, "current_platform", lambda: "windows")
    collector = InventoryCollector(root=ROOT)
    sink = ListSink()
    stats = collector.run(sink)
    assert sink.items == [] and stats.status == "unsupported"
    assert "unsupported on this platform" in stats.last_error


def test_collect_sections_has_every_section_in_order():
    sections = collect_sections()
    assert tuple(sections) == INVENTORY_SECTIONS
    assert all(len(sections[name]) == 1 for name in ("identity", "os", "hardware"))
    assert sections["identity"] == [collect_identity()]


def test_every_row_validates_against_the_collector_schema():
    models = row_models()
    for root in (Path("/"), ROOT):
        for name, rows in collect_sections(root).items():
            assert rows or name in ("listening_ports", "services"), name
            for row in rows:
                models[name].model_validate(row)


def test_a_full_snapshot_passes_the_collectors_batch_validation():
    sink = ListSink()
    InventoryCollector().run(sink)
    [item] = sink.items
    batch = parse_batch(gzip.decompress(Batch(items=[item.to_dict()]).encode()))
    sections = batch.items[0].data.sections
    assert all(getattr(sections, name) is not None for name in INVENTORY_SECTIONS)


def test_module_field_lists_match_the_wire_contract():
    declared = {
        "identity": identity.FIELDS, "os": os_info.FIELDS, "hardware": hardware.FIELDS,
        "interfaces": interfaces.FIELDS, "listening_ports": ports.FIELDS, "users": accounts.USER_FIELDS,
        "groups": accounts.GROUP_FIELDS, "services": services_module.FIELDS, "packages": packages.FIELDS,
    }
    assert declared == SECTION_FIELDS
    for name, rows in collect_sections(ROOT).items():
        for row in rows:
            assert tuple(row) == SECTION_FIELDS[name], name
    assert InventoryCollector.fields == {"inventory.snapshot": ("full", "sections")}


def test_full_inventory_takes_under_a_second():
    collect_sections()  # warm the page cache and imports
    best = min(timed(collect_sections) for _ in range(3))
    assert best < 1.0, f"full inventory took {best:.3f}s"


def timed(function) -> float:
    started = time.perf_counter()
    json.dumps(function())
    return time.perf_counter() - started


RSS_PROBE = """
import gc, psutil
from agent.collectors.base import ListSink
from agent.collectors.inventory import InventoryCollector
collector = InventoryCollector()
for _ in range(5):
    collector.run(ListSink())
gc.collect()
print(psutil.Process().memory_info().rss)
"""


def test_steady_state_rss_stays_small():
    out = subprocess.run([sys.executable, "-c", RSS_PROBE], capture_output=True, text=True, check=True)
    rss_mb = int(out.stdout) / 2**20
    # The whole agent must stay under 35 MB; inventory may use well under half of that budget.
    assert rss_mb < 30, f"{rss_mb:.1f} MB after five inventory runs"
