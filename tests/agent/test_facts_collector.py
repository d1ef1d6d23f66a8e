"""FactsCollector: one valid ``facts.snapshot`` per due run, the server validator's caps, the CLI, a real run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.collectors.base import ListSink
from agent.collectors.facts import FACTS_FIELDS, KIND_NAMES, FactsCollector, collect_facts
from agent.collectors.facts import kinds as kinds_module
from agent.config import ConfigError, parse_config
from agent.wire import ITEM_TYPES, Item
from collector.errors import InvalidInput
from collector.ingest.items import facts as facts_model
from collector.ingest.schema import item_data_models
from tests.agent.test_facts_support import DEBIAN, FakeRunner, output, validate

REPO = Path(__file__).resolve().parents[2]
FULL_RUNNER = {("sshd", "-T"): output("sshd_T.txt"), ("nft",): output("nft_ruleset.txt"),
               ("auditctl", "-s"): output("auditctl_s.txt"), ("auditctl", "-l"): output("auditctl_l.txt"),
               ("chronyc",): output("chronyc_tracking.txt"), ("lsblk",): output("lsblk.json"),
               ("systemctl", "list-unit-files"): output("systemctl_unit_files.txt"),
               ("systemctl", "list-units"): output("systemctl_units.txt")}


def test_declared_fields_match_the_validator():
    assert "facts.snapshot" in ITEM_TYPES
    assert FactsCollector.fields == {"facts.snapshot": FACTS_FIELDS}
    assert tuple(item_data_models()["facts.snapshot"].model_fields) == FACTS_FIELDS
    assert facts_model.KIND_NAMES == KIND_NAMES


def test_one_valid_snapshot_on_the_fixture_host_then_nothing_until_due():
    clock = [1000.0]
    collector = FactsCollector(root=DEBIAN, run=FakeRunner(FULL_RUNNER), every_s=43200, clock=lambda: clock[0])
    sink = ListSink()
    assert collector.run(sink).status == "ok"
    assert [i.type for i in sink.items] == ["facts.snapshot"]
    data = sink.items[0].data
    assert set(data["kinds"]) == set(KIND_NAMES) and all("available" in k for k in data["kinds"].values())
    assert data["kinds"]["sshd"]["source"] == "sshd -T" and data["kinds"]["firewall"]["backend"] == "nftables"
    batch = validate(sink.items)
    assert set(batch.items[0].data.kinds) == set(KIND_NAMES)
    clock[0] += 600
    collector.run(sink)
    assert len(sink.items) == 1  # not due yet
    collector.request()
    collector.run(sink)
    clock[0] += 43200
    collector.run(sink)
    assert len(sink.items) == 3


def test_a_broken_kind_becomes_unavailable_and_the_snapshot_still_goes(monkeypatch):
    def boom(root, run):
        raise RuntimeError("parser bug")

    monkeypatch.setitem(kinds_module.KINDS, "sudoers", boom)
    data = collect_facts(DEBIAN, run=FakeRunner())
    assert data["kinds"]["sudoers"] == {"available": False, "error": "RuntimeError: parser bug"}
    assert "sudoers: RuntimeError: parser bug" in data["errors"]
    validate([Item("facts.snapshot", data)])


def test_skip_and_non_host_root_never_runs_commands():
    collector = FactsCollector(root=DEBIAN, skip=["accounts", "files"])
    sink = ListSink()
    collector.run(sink)
    kinds = sink.items[0].data["kinds"]
    assert "accounts" not in kinds and "files" not in kinds and len(kinds) == len(KIND_NAMES) - 2
    assert kinds["sshd"]["source"] == "config"  # sshd -T was not run against this machine


def snapshot(kinds: dict, **extra) -> list[Item]:
    return [Item("facts.snapshot", {"kinds": kinds, "collected_in_ms": 5, "errors": [], **extra})]


@pytest.mark.parametrize(("kinds", "needle"), [
    ({"rootkit": {"available": True}}, "kinds.rootkit"),
    ({"sshd": {"settings": {}}}, "sshd.available: required"),
    ({"sshd": {"available": True, "banner": "x" * 1025}}, "sshd.banner: string longer than 1024"),
    ({"accounts": {"available": True, "users": list(range(2001))}}, "accounts.users: list longer than 2000"),
    ({"files": {"available": True, "files": {f"/f{i}": 1 for i in range(501)}}}, "files.files: more than 500 keys"),
    ({"pam": {"available": True, "a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}}, "nested deeper than 6"),
    ({"sysctl": {"available": True, "values": {"": 1}}}, "keys must be 1-256 characters"),
    ({"sysctl": {"available": True, "big": 2**64}}, "sysctl.big: integer out of range"),
])
def test_the_validator_refuses_hostile_snapshots(kinds, needle):
    with pytest.raises(InvalidInput, match=needle.replace(".", r"\.").replace("(", r"\(")):
        validate(snapshot(kinds))


def test_the_validator_caps_the_total_size_and_unknown_fields():
    wide = {name: {"available": True, **{f"k{i}": list(range(1000)) for i in range(8)}} for name in KIND_NAMES}
    with pytest.raises(InvalidInput, match="more than 100000 values"):
        validate(snapshot(wide))
    with pytest.raises(InvalidInput, match="hashes"):
        validate(snapshot({}, hashes=["$6$..."]))


def test_config_section_and_unknown_kind():
    config = parse_config({"facts": {"every_s": 3600, "skip": ["antimalware"]}})
    assert (config.facts.every_s, config.facts.skip, config.facts.timeout_s) == (3600, ["antimalware"], 10.0)
    with pytest.raises(ConfigError, match=r"facts\.skip: unknown fact kind 'rootkit'"):
        parse_config({"facts": {"skip": ["rootkit"]}})
    with pytest.raises(ConfigError, match=r"facts\.every_s must be greater than 0"):
        parse_config({"facts": {"every_s": 0}})


def test_real_run_on_this_machine_is_fast_and_complete():
    started = time.perf_counter()
    sink = ListSink()
    stats = FactsCollector(timeout_s=5).run(sink)
    assert stats.status == "ok", stats.last_error
    assert time.perf_counter() - started < 5
    kinds = sink.items[0].data["kinds"]
    assert set(kinds) == set(KIND_NAMES)
    assert all(isinstance(k["available"], bool) for k in kinds.values())
    assert kinds["accounts"]["available"] and any(u["uid"] == 0 for u in kinds["accounts"]["users"])
    validate(sink.items)


def test_cli_prints_the_facts_as_json():
    done = subprocess.run([sys.executable, "-m", "agent", "facts"], capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data["kinds"]) == set(KIND_NAMES) and isinstance(data["collected_in_ms"], int)
    one = subprocess.run([sys.executable, "-m", "agent", "facts", "--kind", "sysctl"], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False)
    assert one.returncode == 0 and "values" in json.loads(one.stdout)
    bad = subprocess.run([sys.executable, "-m", "agent", "facts", "--kind", "rootkit"], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_a_fifo_where_a_config_file_belongs_does_not_hang_the_collector(tmp_path):
    import os

    from agent.collectors.facts._common import read_file

    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc" / "login.defs")
    assert read_file(tmp_path, "/etc/login.defs") == (None, "unreadable: not a regular file")


def test_kernel_parameters_of_this_host_are_read():
    from pathlib import Path

    from agent.collectors.facts.sysctl import collect_sysctl

    # /proc/sys answers one large read() with ENOMEM: the reader must ask for modest chunks.
    values = collect_sysctl()["values"]
    expected = int(Path("/proc/sys/kernel/randomize_va_space").read_text())
    assert values["kernel.randomize_va_space"] == expected
