"""Services: systemctl output parsing (fixtures, a stand-in systemctl) and the unit-file fallback."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from agent.collectors.inventory import services
from agent.collectors.inventory.services import (
    ServicesError,
    collect_services,
    from_systemctl,
    from_unit_files,
    parse_unit_files,
    parse_units,
)

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
ROOT = FIXTURES / "root"


def test_parse_unit_files_handles_two_and_three_columns():
    states = parse_unit_files((FIXTURES / "systemctl_list_unit_files.txt").read_text())
    assert states["ssh.service"] == "enabled" and states["telnet.service"] == "masked"
    assert states["apt-daily.service"] == "static" and states["sshd.service"] == "alias"
    assert parse_unit_files("old.service enabled\n\n12 unit files listed.\n") == {"old.service": "enabled"}


def test_parse_units_strips_status_markers_and_keeps_descriptions():
    units = parse_units((FIXTURES / "systemctl_list_units.txt").read_text())
    assert units["nginx.service"] == ("failed", "A high performance web server and a reverse proxy server")
    assert units["postfix.service"] == ("inactive", "postfix.service")
    assert units["systemd-timesyncd.service"] == ("activating", "Network Time Synchronization")
    assert units["getty@tty1.service"] == ("active", "Getty on tty1")
    assert parse_units("garbage\nx.socket loaded active running Not a service\n") == {}


def fake_systemctl(tmp_path: Path, body: str) -> str:
    path = tmp_path / "systemctl"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_rows_from_a_running_systemd(tmp_path):
    systemctl = fake_systemctl(tmp_path, f"""case "$1" in
  list-unit-files) cat {FIXTURES / "systemctl_list_unit_files.txt"} ;;
  list-units) cat {FIXTURES / "systemctl_list_units.txt"} ;;
esac""")
    rows = {r["name"]: r for r in from_systemctl(systemctl)}
    assert rows["ssh.service"] == {"name": "ssh.service", "enabled": "enabled", "active": "active",
                                   "description": "OpenBSD Secure Shell server"}
    assert rows["nginx.service"]["active"] == "failed"
    assert rows["rsync.service"] == {"name": "rsync.service", "enabled": "disabled", "active": "inactive",
                                     "description": None}
    assert rows["getty@.service"]["active"] is None  # templates are never active themselves
    assert rows["getty@tty1.service"]["enabled"] is None and rows["getty@tty1.service"]["active"] == "active"
    assert rows["postfix.service"]["enabled"] is None


def test_systemctl_failure_raises_instead_of_reporting_nothing(tmp_path):
    with pytest.raises(ServicesError, match="exited 1"):
        from_systemctl(fake_systemctl(tmp_path, "echo 'Failed to connect to bus' >&2; exit 1"))


def test_systemctl_used_only_when_systemd_runs(tmp_path, monkeypatch):
    systemctl = fake_systemctl(tmp_path, f"cat {FIXTURES / 'systemctl_list_unit_files.txt'}")
    monkeypatch.setattr(services.shutil, "which", lambda name: systemctl)
    monkeypatch.setattr(services, "systemd_running", lambda root: True)
    assert {r["active"] for r in collect_services()} <= {"inactive", None}
    monkeypatch.setattr(services, "systemd_running", lambda root: False)
    assert {r["active"] for r in collect_services()} <= {"unknown"}


def build_unit_tree(tmp_path: Path) -> Path:
    """The fixture unit files plus the symlinks systemctl enable/mask would create."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "lib", root / "lib")
    shutil.copytree(ROOT / "etc/systemd", root / "etc/systemd")
    etc = root / "etc/systemd/system"
    (etc / "multi-user.target.wants").mkdir()
    (etc / "multi-user.target.wants/ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    (etc / "getty.target.wants").mkdir()
    (etc / "getty.target.wants/getty@tty1.service").symlink_to("/lib/systemd/system/getty@.service")
    (etc / "sshd.service").symlink_to("/lib/systemd/system/ssh.service")
    (root / "lib/systemd/system/cron.service").rename(root / "lib/systemd/system/cron.service.orig")
    (root / "lib/systemd/system/cron.service").symlink_to("/dev/null")
    return root


def test_fallback_reads_unit_files_and_wants_symlinks(tmp_path):
    rows = {r["name"]: r for r in from_unit_files(build_unit_tree(tmp_path))}
    assert {n: r["enabled"] for n, r in rows.items()} == {
        "apt-daily.service": "static", "cron.service": "masked", "getty@.service": "enabled",
        "ssh.service": "enabled", "sshd.service": "alias", "telnet.service": "disabled",
    }
    assert {r["active"] for r in rows.values()} == {"unknown"}
    assert rows["ssh.service"]["description"] == "OpenBSD Secure Shell server"
    assert rows["telnet.service"]["description"] == "Telnet server (admin override)"  # /etc wins over /lib


def test_fallback_is_what_collect_services_uses_on_a_fixture_root(tmp_path):
    root = build_unit_tree(tmp_path)
    assert collect_services(root) == from_unit_files(root)


@pytest.mark.skipif(os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"),
                    reason="needs systemctl installed but systemd not running (offline mode)")
def test_fallback_agrees_with_offline_systemctl_on_this_host():
    out = subprocess.run(["systemctl", "list-unit-files", "--type=service", "--no-legend", "--no-pager"],
                         capture_output=True, text=True, check=True).stdout
    assert {r["name"]: r["enabled"] for r in collect_services()} == parse_unit_files(out)
