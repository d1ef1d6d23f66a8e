"""Identity, os, hardware and interfaces sections: fixture trees for the file parsing, this host for psutil."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from agent.collectors.inventory import collect_identity
from agent.collectors.inventory.hardware import collect_hardware, cpu_model, virtualization
from agent.collectors.inventory.identity import normalize_mac, physical_macs
from agent.collectors.inventory.interfaces import collect_interfaces
from agent.collectors.inventory.os_info import collect_os, parse_os_release

ROOT = Path(__file__).parent / "fixtures" / "inventory" / "root"


def test_identity_from_fixture_tree_normalises_ids():
    row = collect_identity(ROOT)
    assert set(row) == {"hostname", "machine_id", "product_uuid", "macs"}
    assert row["machine_id"] == "0123456789abcdef0123456789abcdef"
    assert row["product_uuid"] == "4c4c4544-0042-3510-8051-b7c04f4e3132"
    assert row["hostname"] == socket.gethostname()


def test_identity_falls_back_to_dbus_machine_id_and_rejects_blank_uuid(tmp_path):
    (tmp_path / "var/lib/dbus").mkdir(parents=True)
    (tmp_path / "var/lib/dbus/machine-id").write_text("FEDCBA9876543210fedcba9876543210\n")
    (tmp_path / "sys/class/dmi/id").mkdir(parents=True)
    (tmp_path / "sys/class/dmi/id/product_uuid").write_text("00000000-0000-0000-0000-000000000000\n")
    row = collect_identity(tmp_path)
    assert row["machine_id"] == "fedcba9876543210fedcba9876543210"
    assert row["product_uuid"] is None


def test_identity_macs_are_sorted_lowercase_and_never_loopback_or_zero():
    macs = collect_identity()["macs"]
    assert macs == sorted(set(macs))
    assert "00:00:00:00:00:00" not in macs
    all_macs = {normalize_mac(a.address) for name, addrs in psutil.net_if_addrs().items() if name != "lo"
                for a in addrs if a.family == psutil.AF_LINK} - {None, "00:00:00:00:00:00"}
    assert set(macs) <= all_macs
    assert bool(macs) == bool(all_macs)  # falls back rather than reporting none


def test_random_and_virtual_interfaces_are_left_out_when_a_physical_one_exists():
    sysfs = Path("/sys/class/net")
    links = [p.name for p in sysfs.iterdir()] if sysfs.is_dir() else []
    virtual = [n for n in links if "/devices/virtual/" in str((sysfs / n).resolve())]
    physical = [n for n in links if n not in virtual]
    if not physical or not virtual:
        pytest.skip("needs both a physical and a virtual interface")
    macs = set(physical_macs())
    for name in virtual:
        mac = normalize_mac((sysfs / name / "address").read_text())
        if mac not in {normalize_mac((sysfs / p / "address").read_text()) for p in physical}:
            assert mac not in macs


@pytest.mark.parametrize(("raw", "expected"), [
    ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"), ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"),
    ("", None), ("aa:bb:cc", None), ("zz:bb:cc:dd:ee:ff", None), ("00:11:22:33:44:55:66:77", None),
])
def test_normalize_mac(raw, expected):
    assert normalize_mac(raw) == expected


def test_os_row_from_fixture_os_release():
    [row] = collect_os(ROOT)
    assert row["platform"] == "linux"
    assert (row["id"], row["id_like"], row["version_id"], row["codename"]) == ("ubuntu", "debian", "22.04", "jammy")
    assert row["pretty_name"] == "Ubuntu 22.04.4 LTS"
    assert row["version"] == "22.04.4 LTS (Jammy Jellyfish)"
    assert row["kernel"] == os.uname().release and row["arch"] == os.uname().machine
    boot = datetime.fromisoformat(row["boot_time"])
    assert boot.tzinfo is not None and boot.utcoffset().total_seconds() == 0
    assert abs(boot.timestamp() - psutil.boot_time()) < 2


def test_os_row_on_this_host_matches_os_release():
    release = parse_os_release(Path("/etc/os-release").read_text())
    [row] = collect_os()
    assert row["id"] == release["ID"] and row["pretty_name"] == release["PRETTY_NAME"]


def test_os_release_parser_tolerates_bad_lines():
    values = parse_os_release('A="x y"\nnot a pair\nB=\'q\'\nC="unbalanced\n# D=1\n')
    assert values == {"A": "x y", "B": "q", "C": "unbalanced"}


def test_hardware_from_fixture_dmi_and_this_host():
    [row] = collect_hardware(ROOT)
    assert row["cpu_model"] == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    assert (row["vendor"], row["board_serial"]) == ("QEMU", "BRD-0042")
    assert row["product_serial"] is None  # "To be filled by O.E.M." is a placeholder, not a serial
    assert row["virtualization"] == "qemu"
    assert row["cpu_threads"] == psutil.cpu_count() and row["ram_bytes"] == psutil.virtual_memory().total
    assert row["disks"], "this host has at least its root filesystem"
    devices = [d["device"] for d in row["disks"]]
    assert len(devices) == len(set(devices))
    for disk in row["disks"]:
        assert disk["total_bytes"] >= disk["used_bytes"] >= 0


def test_hardware_dmi_missing_means_none_and_container_is_detected(tmp_path):
    (tmp_path / ".dockerenv").write_text("")
    [row] = collect_hardware(tmp_path)
    assert row["vendor"] is row["product_serial"] is row["board_serial"] is row["cpu_model"] is None
    assert row["virtualization"] == "container"
    assert virtualization(tmp_path / "nothing") is None


def test_cpu_model_on_arm_uses_the_model_line(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nBogoMIPS\t: 48.00\nCPU part\t: 0xd08\n\n"
                                           "Hardware\t: BCM2835\nModel\t: Raspberry Pi 4\n")
    assert cpu_model(tmp_path) == "BCM2835"


def test_interfaces_match_psutil():
    rows = collect_interfaces()
    assert {r["name"] for r in rows} == set(psutil.net_if_addrs())
    lo = next(r for r in rows if r["name"] == "lo")
    assert {"family": "ipv4", "address": "127.0.0.1", "netmask": "255.0.0.0"} in lo["addresses"]
    assert lo["is_up"] is True and lo["mtu"] > 0
    json.dumps(rows)  # plain JSON types only


def test_interface_macs_match_sysfs():
    for row in collect_interfaces():
        address = Path(f"/sys/class/net/{row['name']}/address")
        if address.exists() and row["mac"]:
            assert row["mac"] == address.read_text().strip().lower()
