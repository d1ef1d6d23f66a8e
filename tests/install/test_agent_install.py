"""install/agent/install.sh for real, into a throwaway root: virtualenv, config, enrollment with a real
server, a run of the installed agent, a second install, upgrade, reconfigure, uninstall and purge."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from collector.db import Database
from tests.collector import helpers as h
from tests.install.conftest import INSTALL_SH, Built, run, self_signed
from tests.integration.conftest import server  # noqa: F401 - the real khien server fixture


class Root:
    """Where install.sh puts things under a root prefix."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.venv = path / "opt/khien-agent"
        self.agent = self.venv / "bin/khien-agent"
        self.config = path / "etc/khien/agent.toml"
        self.state = path / "var/lib/khien-agent"
        self.credentials = self.state / "credentials.json"
        self.unit = path / "etc/systemd/system/khien-agent.service"
        self.dropin = path / "etc/systemd/system/khien-agent.service.d/50-modules.conf"
        self.wants = path / "etc/systemd/system/multi-user.target.wants/khien-agent.service"
        self.link = path / "usr/local/bin/khien-agent"

    def install(self, *args: str) -> str:
        proc = run(INSTALL_SH, "--root", self.path, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def run_once(self) -> None:
        proc = run(self.agent, "run", "--once", "--config", self.config, "--state-dir", self.state, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def hosts(srv) -> list[dict]:
    token = h.api_token(Database(srv.db_url), "admin1")
    reply = httpx.get(f"{srv.url}/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["items"]


def test_install_enroll_run_then_reinstall_upgrade_reconfigure_uninstall_purge(server, built: Built,  # noqa: F811
                                                                               tmp_path):
    root = Root(tmp_path / "root")
    token = h.enroll_token(Database(server.db_url), "D1")  # single use: a second install must not spend another
    offline = ("--wheel", str(built.wheel), "--wheelhouse", str(built.wheelhouse))

    ca, _key = self_signed(tmp_path)  # a private CA, given as a path the service could not see
    out = root.install("--server", server.url, "--token", token, "--ca-file", str(ca), *offline)
    assert "enrolling with" in out
    assert (root.path / "etc/khien/server-ca.pem").read_bytes() == ca.read_bytes()
    assert 'ca_file = "/etc/khien/server-ca.pem"' in root.config.read_text()
    assert root.venv.joinpath("pyvenv.cfg").is_file() and os.access(root.agent, os.X_OK)
    assert os.readlink(root.link) == str(root.agent)
    # An agent host never gets the server's stack (DESIGN.md §3).
    assert run(root.venv / "bin/python", "-c", "import fastapi").returncode != 0
    assert mode(root.config) == 0o640 and f'url = "{server.url}"' in root.config.read_text()
    assert mode(root.state) == 0o700 and mode(root.credentials) == 0o600
    assert root.unit.is_file() and "CapabilityBoundingSet=CAP_DAC_READ_SEARCH" in root.dropin.read_text()
    # systemctl --root enabled the unit inside the throwaway root, nothing on this machine.
    assert os.readlink(root.wants) == "/etc/systemd/system/khien-agent.service"

    root.run_once()
    [host] = hosts(server)
    assert host["unit"] == "D1" and host["last_seen"]
    credentials = root.credentials.read_bytes()

    # A second install (the token is spent by now): nothing breaks, nothing is enrolled again.
    out = root.install("--server", server.url, "--token", token, "--no-systemd", *offline)
    assert "already enrolled" in out and "keeping the existing" in out
    assert root.credentials.read_bytes() == credentials

    root.config.write_text(root.config.read_text() + "\n")  # an operator's edit survives the upgrade
    edited = root.config.read_bytes()
    out = root.install("--upgrade", *offline)
    assert "credentials and spool kept" in out
    assert root.credentials.read_bytes() == credentials and root.config.read_bytes() == edited
    assert (root.state / "spool.db").is_file()
    root.run_once()  # the upgraded agent still talks to the server with the same credentials
    assert [x["id"] for x in hosts(server)] == [host["id"]]

    before, netwatch, after = root.config.read_text().partition("[netwatch]\n")
    root.config.write_text(before + netwatch + after.replace("enabled = false", "enabled = true", 1))
    root.install("--reconfigure")
    dropin = root.dropin.read_text()
    assert "AF_PACKET" in dropin and "CAP_NET_RAW" in dropin

    out = root.install("--uninstall")
    assert not root.venv.exists() and not root.unit.exists() and not root.dropin.exists()
    assert not root.link.is_symlink() and not root.wants.is_symlink()
    assert root.config.is_file() and root.credentials.read_bytes() == credentials  # kept for a reinstall

    root.install("--uninstall", "--purge")
    assert not root.state.exists() and not (root.path / "etc/khien").exists()


def test_bad_input_is_refused_with_one_line_and_changes_nothing(built: Built, tmp_path):
    root = tmp_path / "root"
    for args, message in [
        (("--wheel", str(tmp_path / "missing.whl")), "wheel not found"),
        (("--token", "abc"), "--token needs --server"),
        (("--server", "ftp://x", "--token", "abc"), "must be an http(s):// URL"),
        (("--purge",), "--purge goes with --uninstall"),
        (("--upgrade", "--wheel", str(built.wheel)), "not installed"),
        (("--frobnicate",), "unknown option"),
    ]:
        proc = run(INSTALL_SH, "--root", root, *args)
        assert proc.returncode != 0, args
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (root / "opt").exists() and not (root / "etc").exists()
