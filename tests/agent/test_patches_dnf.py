"""dnf/yum: check-update (wraps, obsoletes), updateinfo security list, needs-restarting, rpm log."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.patches import dnf
from agent.collectors.patches._common import CommandResult

FIXTURES = Path(__file__).parent / "fixtures" / "patches"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_check_update_joins_wrapped_lines_and_skips_obsoletes():
    rows = dnf.parse_check_update(fixture("dnf_check_update.txt"))
    names = [r["name"] for r in rows]
    assert names == ["NetworkManager", "NetworkManager-libnm", "bind-libs", "kernel", "kernel-core",
                     "python3-libselinux-with-a-rather-long-name", "openssl-libs", "tzdata"]
    assert "grub2-tools" not in names  # only in "Obsoleting Packages"
    wrapped = rows[5]
    assert (wrapped["arch"], wrapped["candidate_version"], wrapped["origin"]) == ("x86_64", "3.6-1.el9", "baseos")
    assert rows[2]["candidate_version"] == "32:9.16.23-18.el9_4.6" and rows[2]["origin"] == "appstream"
    assert rows[-1]["arch"] == "noarch"
    assert all(r["installed_version"] is None and r["security"] is False for r in rows)


def test_yum_check_update_skips_plugin_banner():
    rows = dnf.parse_check_update(fixture("yum_check_update.txt"))
    assert [(r["name"], r["candidate_version"]) for r in rows] == [
        ("bash", "4.2.46-35.el7_9"), ("kernel", "3.10.0-1160.119.1.el7")]


def test_updateinfo_security_marks_by_name_and_arch():
    banner = "Last metadata expiration check: 0:41:07 ago on Mon 02 Sep 2024 09:12:01 AM UTC.\n"
    security = dnf.parse_updateinfo_security(banner + fixture("dnf_updateinfo_security.txt"))
    assert len(security) == 5
    assert security[("bind-libs", "x86_64")] == "RHSA-2024:4928"
    assert ("openssl-libs", "i686") in security
    rows = dnf.parse_check_update(fixture("dnf_check_update.txt"))
    dnf.mark_security(rows, security)
    assert {r["name"] for r in rows if r["security"]} == {"bind-libs", "kernel", "kernel-core", "openssl-libs"}


@pytest.mark.parametrize(("nevra", "expected"), [
    ("bind-libs-32:9.16.23-18.el9_4.6.x86_64", ("bind-libs", "x86_64")),
    ("kernel-core-5.14.0-427.31.1.el9_4.x86_64", ("kernel-core", "x86_64")),
    ("tzdata-2024a-1.el9.noarch", ("tzdata", "noarch")),
])
def test_nevra_name_arch(nevra, expected):
    assert dnf.nevra_name_arch(nevra) == expected


@pytest.mark.parametrize(("code", "ok"), [(0, True), (100, True), (1, False)])
def test_check_update_exit_codes(code, ok):
    assert dnf.check_update_ok(CommandResult(code)) is ok
    assert dnf.check_update_ok(CommandResult(-1, error="dnf: timed out after 1s")) is False


def test_needs_restarting():
    reboot = CommandResult(1, fixture("needs_restarting_reboot.txt"))
    assert dnf.parse_needs_restarting(reboot) == (True, ["glibc", "kernel", "systemd"])
    fine = CommandResult(0, "No core libraries or services have been updated since boot-up.\n"
                            "Reboot should not be necessary.\n")
    assert dnf.parse_needs_restarting(fine) == (False, [])
    assert dnf.parse_needs_restarting(CommandResult(2, "", "usage")) == (None, [])


def test_last_upgrade_from_rpm_log():
    log = ("2024-05-01T09:00:00+0000 SUBDEBUG Installed: jq-1.6-16.el9.x86_64\n"
           "2024-05-02T10:11:12+0200 SUBDEBUG Upgrade: bash-5.1.8-9.el9.x86_64\n"
           "2024-05-02T10:11:13+0200 SUBDEBUG Upgraded: bash-5.1.8-6.el9.x86_64\n"
           "2024-05-03T08:00:00+0000 SUBDEBUG Erase: nano-5.6.1-5.el9.x86_64\n")
    assert dnf.last_upgrade_from_rpm_log(log) == "2024-05-02T10:11:13+02:00"
    assert dnf.last_upgrade_from_rpm_log("") is None
