"""A real ``khien server`` process on a free loopback port, waited for and stopped like an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 120  # imports, migration check and app build; slow on a loaded CI machine
STOP_TIMEOUT_S = 15


@dataclass
class LiveServer:
    url: str
    db_url: str
    data_dir: Path
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        # `python -m khien.cli` is the `khien` command's own entry point, run by this very interpreter
        # (so the venv under test, whatever PATH says).
        command = [sys.executable, "-m", "khien.cli", "server", "--data-dir", str(self.data_dir),
                   "--database-url", self.db_url, "--host", "127.0.0.1", "--port", str(self.port)]
        # No KHIEN_INSECURE_COOKIES: the browser gets the production cookie policy (Secure, __Host-),
        # which Chromium accepts from http://127.0.0.1 because loopback counts as a secure context.
        # The scheduler (nightly matching, scans, score computation) is off: it is not what these flows
        # test, and it must not change the data under them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KHIEN_")} | {"KHIEN_SCHEDULER": "0"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """Poll /healthz until the server answers that it and its database are up."""
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"khien server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).json().get("status") == "ok":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)  # polling interval of the readiness probe, not a timing assumption
        self.stop()
        raise AssertionError(f"khien server not ready after {READY_TIMEOUT_S} s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-20_000:] if self.log.exists() else ""
