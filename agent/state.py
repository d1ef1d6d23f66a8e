"""What the agent keeps in its state directory besides the spool: credentials and a status file.

``credentials.json`` (mode 0600) is written by ``enroll``; ``status.json`` is rewritten by the running
agent so ``khien-agent status`` can report without talking to it. Both are replaced atomically
(write a temp file, fsync, rename) so a kill never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from agent.config import AgentError

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.json"
STATUS_FILE = "status.json"
CREDENTIAL_REJECTED = "credential rejected — re-enroll"


class NotEnrolled(AgentError):
    """No usable credentials in the state directory."""


@dataclass(frozen=True)
class Credentials:
    server: str
    agent_id: str
    secret: str
    ca_file: str = ""
    enrolled_at: str = ""
    host_id: int | None = None
    unit: str = ""

    @property
    def bearer(self) -> str:
        """The ``Authorization`` header value."""
        return f"Bearer {self.agent_id}.{self.secret}"


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory (0700: it holds a secret) if it does not exist."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise AgentError(f"cannot create state directory {state_dir}: {exc.strerror or exc}") from None
    return state_dir


def write_json_atomic(path: Path, payload: dict[str, Any], *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``payload`` as JSON, atomically and with ``mode`` from the start."""
    # A pid-named temp file instead of the tempfile module, which costs ~1 MB of RSS to import.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if hasattr(os, "fchmod"):  # POSIX: O_CREAT's mode went through the umask; set it exactly
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if the file is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_credentials(state_dir: Path, creds: Credentials) -> Path:
    """Store credentials as ``credentials.json`` with mode 0600."""
    ensure_state_dir(state_dir)
    path = state_dir / CREDENTIALS_FILE
    write_json_atomic(path, asdict(creds), mode=0o600)
    return path


def load_credentials(state_dir: Path) -> Credentials:
    """The stored credentials; NotEnrolled if there are none or they are damaged."""
    path = state_dir / CREDENTIALS_FILE
    if not path.exists():
        raise NotEnrolled(f"not enrolled: no {CREDENTIALS_FILE} in {state_dir} "
                          "(run 'khien-agent enroll --server URL --token TOKEN')")
    data = read_json(path)
    known = {f.name for f in fields(Credentials)}
    if not data or not all(isinstance(data.get(k), str) and data[k] for k in ("server", "agent_id", "secret")):
        raise NotEnrolled(f"not enrolled: {path} is unreadable or incomplete; enroll again")
    return Credentials(**{k: v for k, v in data.items() if k in known})


def credentials_mtime(state_dir: Path) -> float | None:
    """Modification time of the credentials file, to notice a re-enrollment while running."""
    try:
        return (state_dir / CREDENTIALS_FILE).stat().st_mtime
    except OSError:
        return None


class StatusBook:
    """The running agent's status, kept in memory and flushed to ``status.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATUS_FILE
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {
            "pid": os.getpid(),
            "started_at": time.time(),
            "last_send_at": None,
            "last_send_result": None,
            "last_success_at": None,
            "last_error": None,
            "credential_rejected": False,
        }

    def update(self, **values: Any) -> None:
        """Merge ``values`` into the status (not yet written)."""
        with self._lock:
            self._data.update(values)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the current status."""
        with self._lock:
            return dict(self._data)

    def flush(self, **values: Any) -> None:
        """Merge ``values`` and write ``status.json``; a failure to write never stops the agent."""
        with self._lock:
            self._data.update(values, updated_at=time.time())
            payload = dict(self._data)
        try:
            write_json_atomic(self.path, payload)
        except OSError as exc:  # a full or read-only disk must not kill collection
            log.warning("cannot write %s: %s", self.path, exc)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The last status the agent wrote, or None if it never ran here."""
    return read_json(state_dir / STATUS_FILE)


def collect_status(state_dir: Path) -> dict[str, Any]:
    """Everything ``khien-agent status`` shows, read from the state directory alone."""
    from agent.spool import read_stats

    try:
        creds = load_credentials(state_dir)
    except NotEnrolled:
        creds = None
    status = read_status(state_dir) or {}
    spool = read_stats(state_dir / "spool.db") or status.get("spool") or {}
    public = None if creds is None else {k: v for k, v in asdict(creds).items() if k != "secret"}
    return {"state_dir": str(state_dir), "enrolled": creds is not None, "credentials": public,
            "agent_state": _agent_state(status), "status": status, "spool": spool}


def _agent_state(status: dict[str, Any]) -> str:
    # A live pid alone could be a reused one; a recent status write confirms it is really the agent.
    pid, updated = status.get("pid"), status.get("updated_at")
    if not pid or not updated:
        return "never ran here"
    age = time.time() - float(updated)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(updated)))
    try:
        import psutil

        alive = psutil.pid_exists(int(pid))
    except ImportError:
        alive = False
    if alive and age < 3 * 60:
        return f"running (pid {pid}, status written {int(age)} s ago)"
    return f"not running (last status {when})"
