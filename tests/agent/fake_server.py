"""A tiny real HTTP server implementing the agent-facing contract, with switchable misbehaviour.

Used in-process by the sender and CLI tests (127.0.0.1, ephemeral port) and standalone for the RSS
measurement: ``python -m tests.agent.fake_server`` prints its URL and serves until killed.
Batches are validated with the collector's own validators, so a pass here means the wire is right.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from collector.errors import InvalidInput
from collector.ingest.schema import parse_batch

GOOD_TOKEN = "good-token"
CONFIG = {"heartbeat_interval_s": 60, "inventory_interval_s": 3600, "inventory_full_interval_s": 86400,
          "batch_max_items": 500, "batch_max_bytes": 1048576, "send_interval_s": 5, "fim_paths": ["/etc"]}


@dataclass
class Scripted:
    """One canned answer to the next batch request."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    detail: str = "scripted"


class FakeCollector:
    """State and behaviour switches of the fake server."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.agents: dict[str, str] = {}  # agent_id -> secret
        self.revoked: set[str] = set()
        self.script: deque[Scripted] = deque()
        self.max_items: int | None = None  # 413 above this many items in a batch
        self.lose_replies = 0  # store the next N batches, then drop the connection (reply lost)
        self.config = dict(CONFIG)
        self.batches: dict[str, int] = {}  # 'agent_id/batch_id' (the dedup key) -> item count
        self.items: list[str] = []  # canonical JSON of every stored item
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, tls: ssl.SSLContext | None = None) -> FakeCollector:
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._httpd = httpd
        return self

    def stop(self) -> None:
        """Stop listening (the port is refused until ``start()`` again)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # --- helpers for tests ------------------------------------------------------------------------

    def add_agent(self) -> tuple[str, str]:
        agent_id, secret = str(uuid.uuid4()), uuid.uuid4().hex
        self.agents[agent_id] = secret
        return agent_id, secret

    def distinct_items(self) -> int:
        return len(set(self.items))

    def statuses(self, path: str = "/api/v1/agent/batches") -> list[int]:
        return [status for _method, p, status in self.requests if p == path]

    # --- behaviour --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, dict]:
        if method == "POST" and path == "/api/v1/agent/enroll":
            return self._enroll(body)
        if not self._authorized(headers.get("Authorization", "")):
            return 401, {}, {"detail": "invalid or revoked agent credential"}
        if method == "GET" and path == "/api/v1/agent/config":
            return 200, {}, self.config
        if method == "POST" and path == "/api/v1/agent/batches":
            agent_id = headers.get("Authorization", "").partition(" ")[2].partition(".")[0]
            return self._batch(agent_id, headers, body)
        return 404, {}, {"detail": "not found"}

    def _enroll(self, body: bytes) -> tuple[int, dict, dict]:
        request = json.loads(body)
        if request.get("token") != GOOD_TOKEN:
            return 401, {}, {"detail": "enrollment token invalid or expired"}
        if not request.get("hostname") or "macs" not in request or "agent_version" not in request:
            return 422, {}, {"detail": "hostname: field required"}
        agent_id, secret = self.add_agent()
        return 201, {}, {"agent_id": agent_id, "secret": secret, "host_id": 7, "unit": "SO-TEST"}

    def _authorized(self, header: str) -> bool:
        scheme, _, credential = header.partition(" ")
        agent_id, _, secret = credential.partition(".")
        return (scheme == "Bearer" and self.agents.get(agent_id) == secret
                and agent_id not in self.revoked)

    def _batch(self, agent_id: str, headers: Any, body: bytes) -> tuple[int, dict, dict]:
        if self.script:
            canned = self.script.popleft()
            return canned.status, canned.headers, {"detail": canned.detail}
        if headers.get("Content-Encoding") != "gzip":
            return 415, {}, {"detail": "gzip body required"}
        raw = gzip.decompress(body)
        try:
            batch = parse_batch(raw)
        except InvalidInput as exc:
            return 422, {}, {"detail": str(exc)}
        items = json.loads(raw)["items"]
        if self.max_items is not None and len(items) > self.max_items:
            return 413, {}, {"detail": "batch too large"}
        with self.lock:
            key = f"{agent_id}/{batch.batch_id}"
            if key in self.batches:
                return 202, {}, {"accepted": 0, "duplicate": True}
            self.batches[key] = len(items)
            self.items.extend(json.dumps(i, sort_keys=True) for i in items)
        return 202, {}, {"accepted": len(items), "duplicate": False}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeCollector = self.server.fake  # type: ignore[attr-defined]
        status, headers, payload = fake.handle(method, self.path, self.headers, body)
        with fake.lock:
            fake.requests.append((method, self.path, status))
            lose = status == 202 and fake.lose_replies > 0
            fake.lose_replies -= lose
        if lose:  # stored, but the agent never hears so: it must resend the same batch id
            self.close_connection = True
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


if __name__ == "__main__":
    import sys
    import time

    server = FakeCollector(int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def in_process_agent(server: FakeCollector, state: Path):
    """An agent runner (a context manager) enrolled with ``server``, state in ``state``; heartbeat and
    inventory only, which is enough to exercise the runner."""
    # Imported here: run standalone (the RSS measurement) this module must stay a bare HTTP server.
    from agent.config import Config
    from agent.runner import Agent
    from agent.state import Credentials, save_credentials

    config = Config()
    config.agent.state_dir = str(state)
    config.patches.enabled = config.authlog.enabled = config.fim.enabled = config.facts.enabled = False
    agent_id, secret = server.add_agent()
    creds = Credentials(server=server.url, agent_id=agent_id, secret=secret)
    save_credentials(state, creds)
    return Agent(config, creds)
