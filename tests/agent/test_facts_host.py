"""antimalware, logging, upgrades and storage fact kinds over fixture trees."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from agent.collectors.facts._common import CommandResult
from agent.collectors.facts.antimalware import collect_antimalware
from agent.collectors.facts.logs import collect_logging
from agent.collectors.facts.storage import LSBLK, collect_storage, parse_lsblk
from agent.collectors.facts.upgrades import collect_upgrades
from tests.agent.test_facts_support import DEBIAN, RHEL, FakeRunner, output


def test_antimalware_by_path_and_process_with_clamav_signature_age(tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(DEBIAN, root, symlinks=True)
    now = time.time()
    os.utime(root / "var/lib/clamav/daily.cld", (now - 3 * 86_400, now - 3 * 86_400))
    os.utime(root / "var/lib/clamav/main.cvd", (now - 40 * 86_400, now - 40 * 86_400))
    facts = collect_antimalware(root, now=now)
    products = {p["id"]: p for p in facts["products"]}
    assert set(products) == {"kaspersky", "clamav"}
    assert products["kaspersky"]["installed"] and products["kaspersky"]["running"]
    assert products["clamav"]["evidence"] == ["/usr/bin/clamscan", "clamd"]
    assert 2.9 < products["clamav"]["signature_age_days"] < 3.1
    assert products["kaspersky"]["signature_age_days"] is None
    assert facts["any_running"] and facts["running_count"] == 2
    assert {"bkav", "eset", "trendmicro", "symantec", "mdatp", "wazuh"} <= set(facts["checked"])


def test_antimalware_nothing_found_is_still_an_answer(tmp_path: Path):
    facts = collect_antimalware(tmp_path)
    assert facts["available"] and facts["products"] == [] and facts["any_running"] is False


def test_logging_forwarding_targets_and_retention():
    facts = collect_logging(DEBIAN)
    targets = [(t["host"], t["port"], t["protocol"]) for t in facts["remote_targets"]]
    assert targets == [("siem.soc.example.gov.vn", 6514, "tcp"), ("10.20.30.40", 514, "udp"),
                       ("logs.soc.example.gov.vn", 10514, "tcp")]
    assert facts["forwarding"] and facts["rsyslog"]["files"] == ["/etc/rsyslog.conf", "/etc/rsyslog.d/60-forward.conf"]
    journald = facts["journald"]
    assert journald["storage"] == "persistent" and journald["persistent"] is True
    assert journald["max_retention_sec"] == "1year" and journald["forward_to_syslog"] is False
    logrotate = facts["logrotate"]
    assert (logrotate["period"], logrotate["rotate"], logrotate["retention_days"], logrotate["compress"]) == \
        ("weekly", 4, 28, True)
    assert logrotate["syslog"] == {"period": "weekly", "rotate": 52, "retention_days": 364}


def test_logging_on_an_empty_host(tmp_path: Path):
    facts = collect_logging(tmp_path)
    assert facts["available"] and facts["forwarding"] is False and facts["remote_targets"] == []
    assert facts["journald"]["storage"] == "auto" and facts["journald"]["persistent"] is False
    assert facts["logrotate"]["installed"] is False


def test_syslog_ng_destination(tmp_path: Path):
    conf = tmp_path / "etc/syslog-ng/syslog-ng.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text('destination d_soc { network("10.9.9.9" transport("tcp") port(601)); };\n'
                    'log { source(s_src); destination(d_soc); };\n')
    facts = collect_logging(tmp_path)
    assert [(t["daemon"], t["host"], t["port"], t["protocol"]) for t in facts["remote_targets"]] == [
        ("syslog-ng", "10.9.9.9", 601, "tcp")]


def test_unattended_upgrades():
    facts = collect_upgrades(DEBIAN)
    assert facts["tool"] == "unattended-upgrades" and facts["enabled"] and facts["update_lists"]
    assert facts["apply_updates"] and facts["security_origins"]


def test_dnf_automatic():
    facts = collect_upgrades(RHEL)
    assert (facts["tool"], facts["enabled"], facts["security_only"], facts["timer_enabled"]) == \
        ("dnf-automatic", True, True, True)


def test_no_automatic_updates(tmp_path: Path):
    facts = collect_upgrades(tmp_path)
    assert facts["available"] and facts["tool"] is None and facts["enabled"] is False


def test_storage_luks_and_mount_options():
    facts = collect_storage(DEBIAN, FakeRunner({tuple(LSBLK): output("lsblk.json")}))
    assert facts["luks_devices"] == ["sda2"] and facts["root_encrypted"] is True
    assert facts["encrypted_mounts"] == ["/", "/home", "[SWAP]"]
    mounts = facts["mounts"]
    assert mounts["/tmp"]["separate"] and mounts["/tmp"]["noexec"] and mounts["/tmp"]["nosuid"]
    assert mounts["/home"]["nodev"] and not mounts["/home"]["nosuid"]
    assert mounts["/var/tmp"] == {"separate": False, "device": None, "fstype": None, "options": [],
                                  "nodev": False, "nosuid": False, "noexec": False}


def test_storage_lsblk_garbage_or_missing_is_reported(tmp_path: Path):
    facts = collect_storage(DEBIAN, FakeRunner({("lsblk",): "{not json"}))
    assert facts["available"] and facts["luks_devices"] is None and "unreadable output" in facts["errors"][0]
    facts = collect_storage(tmp_path, FakeRunner({("lsblk",): CommandResult(1, "", "lsblk: failed")}))
    assert facts["available"] is False and facts["error"] == "/proc/mounts: missing"
    assert parse_lsblk(json.loads('{"blockdevices": [1, {"name": "x", "children": "bad"}]}')) == {
        "luks_devices": [], "encrypted_mounts": [], "root_encrypted": False}
