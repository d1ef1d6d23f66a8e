"""The agent's .deb from install/build.sh: its control fields and files, and its maintainer scripts run
for real against the unpacked package in a throwaway root (offline, from the bundled wheels)."""

from __future__ import annotations

import os
import re
import subprocess

from tests.install.conftest import Built, root_env, run

INSTALLER = "./opt/khien-agent/installer/"


def version(built: Built) -> str:
    """The project's version, as the wheel's file name carries it."""
    return built.wheel.name.split("-")[1]


def dpkg_deb(*args: str) -> str:
    proc = subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_control_fields(built: Built):
    info = dpkg_deb("--info", str(built.deb))
    fields = dict(re.findall(r"^ ([A-Za-z-]+): (.*)$", info, re.MULTILINE))
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    assert fields["Package"] == "khien-agent" and fields["Version"] == f"{version(built)}-1"
    assert fields["Architecture"] == arch  # psutil's wheel is compiled for this architecture
    assert fields["Depends"] == "python3 (>= 3.11), python3-venv"
    assert fields["Section"] == "admin" and fields["Maintainer"] and int(fields["Installed-Size"]) > 1000
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*\s+{script}\s+#!/bin/sh$", info, re.MULTILINE), script


def test_contents(built: Built):
    rows = [line.split(maxsplit=5) for line in dpkg_deb("--contents", str(built.deb)).splitlines()]
    files = {row[5]: (row[0], row[1]) for row in rows}
    assert all(owner == "root/root" for _mode, owner in files.values())
    assert files[INSTALLER + "install.sh"][0] == "-rwxr-xr-x"
    for name in ("unit_dropin.py", "khien-agent.service", "agent.example.toml", "install.md"):
        assert files[INSTALLER + name][0] == "-rw-r--r--", name
    wheels = {path.rsplit("/", 1)[1].split("-", 1)[0] for path in files if path.startswith(INSTALLER + "wheelhouse/")}
    assert {"khien", "psutil", "watchdog", "apscheduler", "tzlocal", "scapy"} <= wheels
    assert "fastapi" not in wheels and "sqlmodel" not in wheels  # the agent's wheels only


def test_maintainer_scripts_install_upgrade_remove_and_purge(built: Built, tmp_path):
    root, control = tmp_path / "root", tmp_path / "control"
    dpkg_deb("-x", str(built.deb), str(root))
    dpkg_deb("-e", str(built.deb), str(control))
    env = root_env(KHIEN_ROOT=str(root))  # no PIP_* settings: only the bundled wheels can be used
    venv = root / "opt/khien-agent"
    unit = root / "etc/systemd/system/khien-agent.service"

    def script(name: str, *args: str) -> str:
        proc = run(control / name, *args, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out = script("postinst", "configure")
    assert "not enrolled" in out and "enabled and starts once this host is enrolled" in out
    assert run(venv / "bin/khien-agent", "--version").stdout.strip() == f"khien-agent {version(built)}"
    assert unit.is_file() and (root / "etc/khien/agent.toml").is_file()
    assert os.path.islink(root / "etc/systemd/system/multi-user.target.wants/khien-agent.service")

    (root / "var/lib/khien-agent").mkdir(parents=True)
    (root / "var/lib/khien-agent/credentials.json").write_text("{}")  # stands for an enrolled host
    out = script("postinst", "configure", f"{version(built)}-1")  # dpkg's upgrade call: the same package again
    assert f"upgraded to khien-agent {version(built)}" in out

    script("prerm", "remove")
    assert not (venv / "bin").exists() and not (venv / "pyvenv.cfg").exists() and not unit.exists()
    assert (venv / "installer/install.sh").is_file()  # dpkg removes its own files after prerm
    assert (root / "var/lib/khien-agent/credentials.json").is_file()  # kept until purge

    script("postrm", "purge")
    assert not (root / "var/lib/khien-agent").exists() and not (root / "etc/khien").exists()
