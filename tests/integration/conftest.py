"""A real ``khien server`` (uvicorn) subprocess and real ``khien-agent`` processes, on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from collector.db import Database
from tests.collector import helpers as h
from tests.conftest import free_port


@dataclass
class Server:
    url: str
    db_url: str
    data_dir: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log: Path = field(default=Path("/dev/null"))

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "khien.cli", "server", "--database-url", self.db_url, "--data-dir",
             str(self.data_dir), "--port", str(self.port)], env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    db = Database(db_url)
    h.seed_units(db)
    h.add_user(db, "admin1", "admin")
    db.dispose()
    port = free_port()
    # httpx (unlike browsers on localhost) will not return Secure cookies over plain http.
    env = os.environ | {"KHIEN_AGENT_HEARTBEAT_S": "10", "KHIEN_INSECURE_COOKIES": "1", "KHIEN_MATCH_TICK_S": "1"}
    srv = Server(url=f"http://127.0.0.1:{port}", db_url=db_url, data_dir=tmp_path / "server", port=port,
                 env=env, log=tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()


def quiet_config(tmp_path: Path) -> Path:
    """Agent config with only heartbeat and inventory, for tests that count items exactly."""
    path = tmp_path / "agent.toml"
    path.write_text("[patches]\nenabled = false\n\n[authlog]\nenabled = false\n\n[fim]\nenabled = false\n\n"
                    "[facts]\nenabled = false\n")
    return path


def _options(state_dir: Path, config: Path | None) -> list[str]:
    return ["--state-dir", str(state_dir), *(["--config", str(config)] if config else [])]


def agent(*args: str, state_dir: Path, config: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", *args, *_options(state_dir, config)],
                          capture_output=True, text=True, timeout=timeout)


def spawn_agent(*args: str, state_dir: Path, log: Path, config: Path | None = None) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "agent", *args, *_options(state_dir, config)],
                            stdout=out, stderr=out)
