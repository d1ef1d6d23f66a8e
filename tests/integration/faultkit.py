"""What the fault tests drive: real agent processes (each its own host), auth logs they follow, and
counting what reached the server's database.

An agent here follows a test-owned auth log, so every line the test appends is one ``auth.failure``
item whose user name is unique: what was generated and what was stored can be compared exactly.
Several agents on one machine need distinct host identities (a second enrollment of the same host
revokes the first), so each runs in a private mount namespace where ``/etc/machine-id`` is its own.
Clock skew is LD_PRELOADed libfaketime (Debian package ``faketime``) on the agent process only.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from sqlmodel import select

from agent.spool import read_stats
from collector.agents.models import Agent as AgentRow
from collector.db import Database
from collector.events.models import Event
from collector.ingest.models import IngestBatch
from tests.collector import helpers as h


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A TOML agent config from plain values (strings, numbers, booleans, lists of strings)."""
    lines = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class AuthLog:
    """An auth log a test appends sshd failures to; each line names a unique user ``TAG-N``."""

    def __init__(self, path: Path, tag: str) -> None:
        self.path, self.tag = path, tag
        self.users: list[str] = []
        path.touch()

    def append(self, count: int) -> list[str]:
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        new = [f"{self.tag}-{len(self.users) + i}" for i in range(count)]
        with self.path.open("a") as fh:
            for n, user in enumerate(new, start=len(self.users)):
                fh.write(f"{now} web01 sshd[{1000 + n % 30000}]: Failed password for invalid user {user} "
                         f"from 10.77.{n // 250 % 250}.{n % 250 + 1} port {20000 + n % 40000} ssh2\n")
        self.users += new
        return new


def faketime_env(offset: str) -> dict[str, str]:
    """Environment giving a process a clock ``offset`` away (``+26h``), monotonic time left alone."""
    found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    if not found:
        pytest.fail("libfaketime is missing: install the Debian package 'faketime' (tests/run's apt list)")
    return {"LD_PRELOAD": found[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


class AgentProcess:
    """One real ``khien-agent`` with its own state dir, config, host identity and (optionally) clock."""

    started: ClassVar[list[AgentProcess]] = []  # for ``kill_leftovers`` after a failed test

    def __init__(self, root: Path, name: str, *, config: dict[str, dict[str, Any]],
                 clock_offset: str | None = None, state_dir: Path | None = None) -> None:
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        self.state = state_dir or root / f"{name}-state"
        self.log = root / f"{name}.log"
        self.config = write_config(root / f"{name}.toml", config)
        self.machine_id = root / f"{name}.machine-id"
        self.machine_id.write_text(uuid.uuid4().hex + "\n")
        self.env = os.environ | (faketime_env(clock_offset) if clock_offset else {})
        self.proc: subprocess.Popen | None = None

    def command(self, *args: str) -> list[str]:
        agent = [sys.executable, "-m", "agent", *args, "--state-dir", str(self.state), "--config", str(self.config)]
        # A private mount namespace: /etc/machine-id is this agent's own file, nothing else changes.
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/machine-id && exec "$@"', str(self.machine_id), *agent]

    def enroll(self, server, unit: str = "D1") -> dict[str, Any]:
        db = Database(server.db_url)
        token = h.enroll_token(db, unit)
        db.dispose()
        done = subprocess.run(self.command("enroll", "--server", server.url, "--token", token),
                              capture_output=True, text=True, timeout=120, env=self.env)
        assert done.returncode == 0, done.stderr
        return self.credentials

    @property
    def credentials(self) -> dict[str, Any]:
        return json.loads((self.state / "credentials.json").read_text())

    def start(self) -> None:
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(self.command("run"), stdout=out, stderr=out, env=self.env)
        AgentProcess.started.append(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    @classmethod
    def kill_leftovers(cls) -> None:
        """Kill every agent a test started and left running (it failed half-way)."""
        while cls.started:
            process = cls.started.pop()
            if process.alive():
                process.kill()

    def stop(self) -> None:
        """SIGTERM and wait: the agent finishes its send in flight and writes its last status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def spool(self) -> dict[str, Any]:
        return read_stats(self.state / "spool.db") or {}

    def log_position(self) -> int | None:
        """How far into its auth log the agent has saved its position (bytes)."""
        try:
            return json.loads((self.state / "authlog-position.json").read_text())["offset"]
        except (OSError, ValueError, KeyError):
            return None

    def status(self) -> dict[str, Any]:
        return json.loads((self.state / "status.json").read_text())

    def emitted(self) -> int:
        """Items the stopped agent put into its sink: each collector's items plus one agent.error per error."""
        collectors = self.status()["collectors"].values()
        return sum(c["items"] + c["errors"] for c in collectors)


def quiet(auth_log: Path | None = None, **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Config with heartbeat and inventory only, plus (given a log) the auth log followed every second."""
    config: dict[str, dict[str, Any]] = {
        "patches": {"enabled": False}, "facts": {"enabled": False}, "fim": {"enabled": False},
        "authlog": {"enabled": False},
        "sender": {"backoff_initial_s": 0.5, "backoff_max_s": 3.0, "timeout_s": 15.0},
    }
    if auth_log is not None:
        config["authlog"] = {"enabled": True, "paths": [str(auth_log)], "use_journal": False,
                             "start_at_end": False, "interval_s": 1.0}
    for name, options in sections.items():
        config[name] = config.get(name, {}) | options
    return config


# --- what the server stored -------------------------------------------------------------------------

def stored_users(db_url: str, host_id: int) -> Counter[str]:
    """How many times each user name arrived as an ``auth.failure`` of the host."""
    db = Database(db_url)
    try:
        with db.session() as s:
            rows = s.exec(select(Event.data).where(Event.host_id == host_id, Event.type == "auth.failure")).all()
    finally:
        db.dispose()
    return Counter(data["user"] for data in rows)


def stored_batches(db_url: str, agent_id: str) -> dict[str, int]:
    """The agent's batches the server accepted: batch id -> item count."""
    db = Database(db_url)
    try:
        with db.session() as s:
            rows = s.exec(select(IngestBatch.batch_id, IngestBatch.item_count)
                          .where(IngestBatch.agent_id == agent_id)).all()
    finally:
        db.dispose()
    assert len(rows) == len({b for b, _ in rows}), "a batch id stored twice"
    return dict(rows)


def last_heartbeat(db_url: str, agent_id: str) -> dict[str, Any] | None:
    db = Database(db_url)
    try:
        with db.session() as s:
            return s.exec(select(AgentRow.last_heartbeat).where(AgentRow.id == agent_id)).one()
    finally:
        db.dispose()


def reported_dropped(server_url: str) -> dict[str, float]:
    """``khien_agent_reported_dropped_items`` by reason, scraped from the server's /metrics."""
    text = httpx.get(f"{server_url}/metrics", timeout=30).text
    out = {}
    for line in text.splitlines():
        if line.startswith("khien_agent_reported_dropped_items{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('reason="', 1)[1].split('"', 1)[0]] = float(value)
    return out


def exactly_once(stored: Counter[str], generated: list[str]) -> None:
    """Every generated user arrived, none twice, nothing else."""
    missing = [u for u in generated if u not in stored]
    twice = {u: n for u, n in stored.items() if n > 1}
    assert not missing and not twice and len(stored) == len(generated), (
        f"{len(missing)} lost (e.g. {missing[:3]}), {len(twice)} duplicated (e.g. {list(twice.items())[:3]}), "
        f"{len(stored)} stored of {len(generated)} generated")
