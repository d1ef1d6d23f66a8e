"""Poll the systemd journal (``journalctl -o json``) for auth programs, from a persisted cursor."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.collectors.authlog.parser import IDENTIFIERS

MAX_ENTRY_BYTES = 64 << 10


class JournalError(Exception):
    """journalctl is missing, refused us, or failed."""


class JournalReader:
    """Bounded reads of new journal entries from the auth-related identifiers."""

    def __init__(self, state_file: Path, *, identifiers: Sequence[str] = IDENTIFIERS, max_entries: int = 5000,
                 start_at_end: bool = True, journalctl: str = "journalctl", timeout_s: float = 30.0) -> None:
        self.state_file = Path(state_file)
        self.identifiers = tuple(identifiers)
        self.max_entries, self.start_at_end, self.timeout_s = max_entries, start_at_end, timeout_s
        self.journalctl = journalctl
        self.counters: Counter[str] = Counter()
        self.status = "not started"
        self._state = self._load()
        self._pending: str | None = None

    def available(self) -> bool:
        """True when journalctl can be run here."""
        return shutil.which(self.journalctl) is not None

    def command(self) -> list[str]:
        """The journalctl invocation for the next read."""
        cmd = [self.journalctl, "-o", "json", "--no-pager"]  # no -q: it hides "insufficient permissions"
        cursor = self._state.get("cursor")
        if cursor:
            # With a cursor, -n counts forward from it (without one it would mean "the last N").
            cmd += [f"--after-cursor={cursor}", "-n", str(self.max_entries)]
        elif self._state.get("since") is not None:
            cmd += [f"--since=@{int(self._state['since'])}"]
        for ident in self.identifiers:
            cmd += ["-t", ident]
        return cmd

    def read(self) -> list[dict[str, Any]]:
        """Up to ``max_entries`` new entries, oldest first."""
        if not self._state.get("cursor") and self._state.get("since") is None and self.start_at_end:
            self._state["since"] = int(time.time())  # first start: from now on, not the whole history
            self._save()
        entries: list[dict[str, Any]] = []
        for line in self._run(self.command()):
            entry = _decode(line)
            if entry is None:
                self.counters["garbage"] += 1
                continue
            entries.append(entry)
            cursor = entry.get("__CURSOR")
            if isinstance(cursor, str):
                self._pending = cursor
        self.status = "following the journal"
        return entries

    def commit(self) -> None:
        """Persist the cursor of the last entry returned by ``read()``."""
        if self._pending:
            self._state = {"cursor": self._pending}
            self._save()

    def _run(self, cmd: list[str]) -> list[bytes]:
        """Run journalctl, keep at most ``max_entries`` lines, kill it when it takes too long."""
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise JournalError(f"cannot run {self.journalctl}: {exc.strerror or exc}") from None
        timer = threading.Timer(self.timeout_s, proc.kill)
        timer.start()
        lines: list[bytes] = []
        try:
            assert proc.stdout is not None
            while len(lines) < self.max_entries:
                line = proc.stdout.readline(MAX_ENTRY_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_ENTRY_BYTES:
                    self.counters["oversize"] += 1
                    _skip_rest(proc.stdout, line)
                    continue
                lines.append(line)
            if len(lines) >= self.max_entries:
                proc.kill()  # the rest is read next time, from the new cursor
            err = proc.stderr.read(4096) if proc.stderr else b""
            code = proc.wait()
        finally:
            timer.cancel()
        message = err.decode("utf-8", "replace").strip().splitlines()
        if code not in (0, -9) and not lines:
            raise JournalError(f"journalctl failed ({code}): {message[0] if message else 'no message'}")
        denied = [m for m in message if "insufficient permissions" in m]
        if not lines and denied:
            raise JournalError(f"journalctl: {denied[0]}")  # exits 0 but sees only the user's own journal
        return lines

    def _load(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state))
        tmp.replace(self.state_file)


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can follow
        return None
    return entry if isinstance(entry, dict) else None


def _skip_rest(stream: Any, line: bytes) -> None:
    """Discard the remainder of an oversize line without holding it in memory."""
    while line and not line.endswith(b"\n"):
        line = stream.readline(MAX_ENTRY_BYTES)
