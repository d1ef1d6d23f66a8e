"""apt: parsing ``apt-get -s upgrade`` (Debian 12, Ubuntu 22.04), history, list age, reboot flag."""

from __future__ import annotations

import gzip
import os
from datetime import datetime
from pathlib import Path

import pytest

from agent.collectors.patches import apt

FIXTURES = Path(__file__).parent / "fixtures" / "patches"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def lynis_security_names(text: str) -> set[str]:
    """What Lynis counts: Inst lines of the simulation that mention "security"."""
    return {line.split()[1].partition(":")[0] for line in text.splitlines()
            if line.startswith("Inst ") and "security" in line.lower()}


def test_debian12_simulation():
    text = fixture("debian12_apt_upgrade.txt")
    pending, held = apt.parse_apt_simulation(text)
    by_name = {r["name"]: r for r in pending}
    assert list(by_name) == ["base-files", "bash", "libc6", "libc-bin", "libgcrypt20-dev", "libgcrypt20",
                             "liblzma5", "openssh-client", "tzdata"]  # Conf lines add nothing
    assert held == ["linux-image-amd64"]
    assert {n for n, r in by_name.items() if r["security"]} == {"libc6", "libc-bin", "liblzma5", "openssh-client"}
    assert by_name["openssh-client"] == {
        "name": "openssh-client", "installed_version": "1:9.2p1-2+deb12u2", "candidate_version": "1:9.2p1-2+deb12u3",
        "arch": "amd64", "origin": "Debian:12.7/stable, Debian-Security:12/stable-security", "security": True}
    assert by_name["tzdata"]["arch"] == "all" and by_name["tzdata"]["security"] is False
    assert by_name["libgcrypt20-dev"]["candidate_version"] == "1.10.1-3+deb12u1"  # trailing "[]" ignored


def test_ubuntu2204_simulation_with_esm_and_multiarch():
    text = fixture("ubuntu2204_apt_upgrade.txt")
    pending, held = apt.parse_apt_simulation(text)
    by_name = {r["name"]: r for r in pending}
    assert len(pending) == 7
    assert held == ["linux-generic", "linux-headers-generic", "linux-image-generic"]
    assert {n for n, r in by_name.items() if r["security"]} == {"libssl3", "openssl", "libmagickcore-6.q16-6"}
    magick = by_name["libmagickcore-6.q16-6"]
    assert magick["arch"] == "amd64" and magick["candidate_version"].endswith("+esm5")
    assert by_name["ubuntu-advantage-tools"]["installed_version"] == "31.2~22.04"


@pytest.mark.parametrize("name", ["debian12_apt_upgrade.txt", "ubuntu2204_apt_upgrade.txt"])
def test_security_flag_matches_lynis(name):
    text = fixture(name)
    pending, _held = apt.parse_apt_simulation(text)
    assert {r["name"] for r in pending if r["security"]} == lynis_security_names(text)


@pytest.mark.parametrize(("origin", "security"), [
    ("Debian-Security:12/stable-security", True),
    ("Debian-Security:12/bookworm-security", True),
    ("Debian:12.7/stable, Debian-Security:12/stable-security", True),
    ("Ubuntu:22.04/jammy-security", True),
    ("UbuntuESM:20.04/focal-infra-security", True),
    ("UbuntuESMApps:22.04/jammy-apps-security", True),
    ("Debian:12.7/stable", False),
    ("Debian:12-updates/stable-updates", False),
    ("Ubuntu:22.04/jammy-updates", False),
    ("", False),
])
def test_is_security_origin(origin, security):
    assert apt.is_security_origin(origin) is security


def test_phased_block_local_origin_and_new_installs():
    text = ("The following upgrades have been deferred due to phasing:\n  ubuntu-drivers-common\n"
            "The following packages will be upgraded:\n  foo\n"
            "Inst foo [1.0] (1.1 [amd64])\n"
            "Inst libnew1 (2.0-1 Debian:12.7/stable [amd64])\n")
    pending, held = apt.parse_apt_simulation(text)
    assert held == ["ubuntu-drivers-common"]
    assert [(r["name"], r["installed_version"], r["origin"]) for r in pending] == [
        ("foo", "1.0", None), ("libnew1", None, "Debian:12.7/stable")]


def test_last_upgrade_is_the_last_transaction_that_upgraded():
    found = apt.last_upgrade_from_history(fixture("apt_history.log"))
    assert found is not None
    when = datetime.fromisoformat(found)
    assert when.tzinfo is not None  # aware: local wall time with this host's offset
    assert when.replace(tzinfo=None) == datetime(2024, 5, 2, 10, 11, 12)
    assert apt.last_upgrade_from_history("Start-Date: 2024-05-01  09:00:01\nEnd-Date: 2024-05-01  09:00:05\n") is None


def test_last_upgrade_falls_back_to_the_rotated_log(tmp_path):
    logs = tmp_path / "var/log/apt"
    logs.mkdir(parents=True)
    (logs / "history.log").write_text("Start-Date: 2024-06-01  09:00:00\nInstall: x:amd64 (1)\n"
                                      "End-Date: 2024-06-01  09:00:01\n")
    (logs / "history.log.1.gz").write_bytes(gzip.compress(fixture("apt_history.log").encode()))
    assert apt.last_upgrade(tmp_path).startswith("2024-05-02T10:11:12")
    assert apt.last_upgrade(tmp_path / "nowhere") is None


def test_lists_age_and_last_update(tmp_path):
    lists = tmp_path / apt.LISTS_DIR
    lists.mkdir(parents=True)
    for name, mtime in [("deb.debian.org_debian_dists_bookworm_InRelease", 1_000_000),
                        ("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", 1_000_500),
                        ("lock", 2_000_000)]:  # the lock file is not a list
        (lists / name).write_text("x")
        os.utime(lists / name, (mtime, mtime))
    assert apt.lists_age(tmp_path, now=1_003_600) == (3100.0, None)
    assert apt.last_update_iso(tmp_path) == "1970-01-12T13:55:00+00:00"
    stamp = tmp_path / apt.UPDATE_STAMP
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    os.utime(stamp, (1_003_000, 1_003_000))
    assert apt.last_update_iso(tmp_path) == "1970-01-12T14:36:40+00:00"  # the periodic stamp wins


def test_no_lists_is_unknown_not_fresh(tmp_path):
    age, error = apt.lists_age(tmp_path, now=1.0)
    assert age is None and "no package lists" in error
    assert apt.last_update_iso(tmp_path) is None


def test_reboot_required_flag_and_packages(tmp_path):
    assert apt.reboot_required(tmp_path) == (False, [])
    run = tmp_path / "var/run"
    run.mkdir(parents=True)
    (run / "reboot-required").write_text("*** System restart required ***\n")
    (run / "reboot-required.pkgs").write_text("linux-image-6.1.0-25-amd64\nlibc6\nlibc6\n")
    assert apt.reboot_required(tmp_path) == (True, ["linux-image-6.1.0-25-amd64", "libc6"])
