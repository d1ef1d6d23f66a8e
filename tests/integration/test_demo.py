"""``khien demo``: seeds, serves, enrolls a local agent, shows this host; Ctrl-C stops both cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psutil

from tests.conftest import free_port


def test_demo_runs_the_whole_system_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = os.environ | {"KHIEN_INSECURE_COOKIES": "1"}
    env.pop("KHIEN_DATABASE_URL", None)
    log = tmp_path / "demo.log"
    proc = subprocess.Popen([sys.executable, "-m", "khien.cli", "demo", "--data-dir", str(tmp_path / "data"),
                             "--port", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # the history takes ~25 s alone; far longer on a busy machine
        hosts = []
        while time.monotonic() < deadline and not hosts:
            time.sleep(1)
            assert proc.poll() is None, log.read_text()
            text = log.read_text()
            match = re.search(r"Password:\s+(\S+)", text)
            if not match or "Khiên demo is running" not in text:
                continue
            client = httpx.Client(base_url=base, follow_redirects=True, timeout=10)
            page = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            client.post("/login", data={"username": "admin", "password": match.group(1), "csrf_token": csrf})
            # the department the agent enrolled in: the synthetic province's hosts come first by name
            listing = client.get("/hosts", params={"unit": "DEMO-SKHCN"})
            hosts = re.findall(r'href="/hosts/(\d+)"', listing.text)
        assert hosts, log.read_text()
        # The host exists from enrollment on; its inventory arrives with the agent's first send.
        shown = False
        while time.monotonic() < deadline and not shown:
            page = client.get(f"/hosts/{hosts[0]}")
            shown = "openssl" in page.text or "python3" in page.text  # real packages of this machine
            time.sleep(0 if shown else 1)
        assert shown, log.read_text()
        assert "DEMO" in log.read_text()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("agent" in " ".join(c.cmdline()) for c in children)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = proc.wait(timeout=60)
    out = log.read_text()
    assert code in (0, 130), out
    assert "Traceback" not in out, out
    assert all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children)
    # A second start reuses the data and does not print a new admin password.
    again = subprocess.run([sys.executable, "-m", "khien.cli", "demo", "--seed-only", "--data-dir",
                            str(tmp_path / "data")], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0 and "Password:" not in again.stdout and "already created" in again.stdout
