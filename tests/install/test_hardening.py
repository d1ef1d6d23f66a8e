"""The units' restrictions, applied by hand where systemd cannot run (this container): the kernel
mechanisms systemd itself uses, set with setpriv and prctl, around the real processes.

- khien-server.service: no capability at all, no new privileges, no writable-and-executable memory
  (MemoryDenyWriteExecute; PR_SET_MDWE is the kernel's own form of it). A real server serves the
  console (argon2 login) and a real agent (ingest) under all three.
- khien-agent.service: the capability bounding set the drop-in derives from agent.toml is what the
  agent needs — CAP_SYS_PTRACE names the process behind another user's listening port and
  CAP_DAC_READ_SEARCH reads a log only its owner may read; without them both are lost.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from agent.config import parse_config
from collector.db import Database
from tests.collector import helpers as h
from tests.conftest import free_port
from tests.install.conftest import INSTALL
from tests.integration.conftest import quiet_config

SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
pytestmark = pytest.mark.skipif(not Path(SETPRIV).exists(), reason="setpriv not installed (util-linux)")
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
# Sets MemoryDenyWriteExecute's kernel equivalent, proves it holds, then becomes the real command.
MDWE_EXEC = f"""
import ctypes, mmap, os, sys
if ctypes.CDLL(None, use_errno=True).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE: not supported by this kernel (Linux 6.3+)")
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("PR_SET_MDWE set but a writable executable mapping was still allowed")
except PermissionError:
    pass
os.execv(sys.argv[1], sys.argv[1:])
"""


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split()[1]
    raise AssertionError(f"{name} not in /proc/{pid}/status")


def test_server_works_with_no_capability_no_new_privileges_and_no_wx_memory(db_url, tmp_path):
    db = Database(db_url)
    h.seed_units(db)
    h.add_user(db, "admin1", "admin")
    token = h.enroll_token(db, "D1")
    db.dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("ab")
    command = [SETPRIV, "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--",
               sys.executable, "-c", MDWE_EXEC, sys.executable, "-m", "khien.cli", "server",
               "--database-url", db_url, "--data-dir", str(tmp_path / "data"), "--port", str(port)]
    server = subprocess.Popen(command, stdout=log, stderr=log,
                              env=os.environ | {"KHIEN_INSECURE_COOKIES": "1", "KHIEN_AGENT_HEARTBEAT_S": "10"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start:\n" + (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        pid = server.pid  # setpriv and the MDWE wrapper exec in place: this is the server itself
        assert psutil.Process(pid).cmdline()[1:4] == ["-m", "khien.cli", "server"]
        assert status_field(pid, "CapEff") == status_field(pid, "CapBnd") == "0000000000000000"
        assert status_field(pid, "NoNewPrivs") == "1"

        with httpx.Client(base_url=url, timeout=30) as browser:  # argon2 verifies the password
            page = browser.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            browser.post("/login", data={"username": "admin1", "password": h.PASSWORD, "csrf_token": csrf})
            assert "khien_session" in browser.cookies
        state, config = tmp_path / "agent", quiet_config(tmp_path)
        agent = [sys.executable, "-m", "agent"]
        opts = ["--state-dir", str(state), "--config", str(config)]
        for args in (["enroll", "--server", url, "--token", token], ["run", "--once"]):
            proc = subprocess.run([*agent, *args, *opts], capture_output=True, text=True, timeout=180)
            assert proc.returncode == 0, proc.stderr
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)


def load_dropin_module():
    spec = importlib.util.spec_from_file_location("unit_dropin", INSTALL / "agent" / "unit_dropin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bounded(caps: list[str], *command: str) -> subprocess.CompletedProcess:
    """``command`` as root under the unit's bounding set: uid 0 keeps only ``caps`` after exec."""
    bounding = ",".join(["-all", *(f"+{c.removeprefix('CAP_').lower()}" for c in caps)])
    return subprocess.run([SETPRIV, "--no-new-privs", f"--bounding-set={bounding}", "--inh-caps=-all", "--",
                           *command], capture_output=True, text=True, timeout=180)


def postgres_listener() -> tuple[int, str] | None:
    """(port, process name) of a loopback listener owned by a user other than root, e.g. PostgreSQL."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid and conn.laddr.port == 5432:
            proc = psutil.Process(conn.pid)
            if proc.uids().real != 0:
                return conn.laddr.port, proc.name()
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="the agent's unit runs as root; so must this test")
def test_agent_capability_set_is_what_its_modules_need(tmp_path):
    listener = postgres_listener()
    if listener is None:
        pytest.skip("no listener of another user on port 5432 here (PostgreSQL runs as its own user in tests/run)")
    port, process = listener
    caps = load_dropin_module().capabilities(parse_config({}))
    nobody = 65534
    secret_log = tmp_path / "auth.log"  # like /var/log/auth.log: syslog:adm, unreadable to others
    secret_log.write_text("Jan  5 10:00:00 web01 sshd[1234]: Failed password for root from 203.0.113.9 "
                          "port 52113 ssh2\n")
    os.chown(secret_log, nobody, nobody)
    secret_log.chmod(0o600)
    agent = [sys.executable, "-m", "agent"]

    def port_owner(with_caps: list[str]) -> str | None:
        proc = bounded(with_caps, *agent, "inventory")
        assert proc.returncode == 0, proc.stderr
        [row] = [r for r in json.loads(proc.stdout)["listening_ports"] if r["port"] == port and r["proto"] == "tcp"]
        return row["process"]

    def parse(with_caps: list[str]) -> subprocess.CompletedProcess:
        return bounded(with_caps, *agent, "parse-log", "--source", "auth", str(secret_log))

    assert port_owner(caps) == process
    granted = parse(caps)
    assert granted.returncode == 0 and json.loads(granted.stdout)["type"] == "auth.failure", granted.stderr
    # The controls: without the capability each ability is gone, so the grants are not decoration.
    assert port_owner([c for c in caps if c != "CAP_SYS_PTRACE"]) is None
    denied = parse([c for c in caps if c != "CAP_DAC_READ_SEARCH"])
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
