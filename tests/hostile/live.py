"""A real ``khien server`` process on a loopback port, with the environment a hostile-input test needs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

from tests.e2e.server import LiveServer


@dataclass
class HostileServer(LiveServer):
    """tests/e2e's LiveServer (readiness wait, SIGTERM stop, log), started with extra ``KHIEN_*`` settings."""

    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        command = [sys.executable, "-m", "khien.cli", "server", "--data-dir", str(self.data_dir),
                   "--database-url", self.db_url, "--host", "127.0.0.1", "--port", str(self.port)]
        # Plain HTTP on loopback, so httpx keeps the session cookie; no scheduler changing data underneath.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KHIEN_")} | {
            "KHIEN_SCHEDULER": "0", "KHIEN_INSECURE_COOKIES": "1"} | self.env
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self._wait_until_ready()

    def server_errors(self) -> list[str]:
        """Tracebacks the server logged: a 5xx always leaves one."""
        return [line for line in self.log_text().splitlines() if line.startswith("Traceback")]
