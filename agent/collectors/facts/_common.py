"""Shared pieces of the fact kinds: reading under a root, the command runner, small parsers.

Every fact kind is a pure function of a filesystem root and a command runner, so tests run it on
fixture trees with canned command output. Nothing here writes, and nothing raises on a missing or
unreadable file: it becomes a reported fact.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Callable
from pathlib import Path

from agent.collectors.commands import CommandResult, run_command
from agent.collectors.commands import failure as command_failure

MAX_TEXT = 1024  # the collector caps every fact string at 1024 characters
MAX_LIST = 1000  # and every fact list at 2000 items; the agent stays well below
DEFAULT_TIMEOUT_S = 10.0
ROOT = Path("/")

__all__ = ["CommandResult", "Run", "run_command"]  # re-exported for the fact kinds and their tests


Run = Callable[[list[str]], CommandResult]


def make_runner(timeout_s: float = DEFAULT_TIMEOUT_S) -> Run:
    """A runner bound to a timeout."""
    return lambda argv: run_command(argv, timeout_s)


def no_commands(argv: list[str]) -> CommandResult:
    """The runner for a root other than ``/``: commands would describe this host, not the tree."""
    return CommandResult(-1, error=f"{argv[0]}: not run for a non-host root", missing=True)


def runner_for(root: Path, run: Run | None) -> Run:
    """``run`` if given, else the real runner for ``/`` and none for any other root."""
    if run is not None:
        return run
    return make_runner() if Path(root) == ROOT else no_commands


def failure(label: str, result: CommandResult) -> str:
    """One short line saying why a command gave no usable answer."""
    return command_failure(label, result, MAX_TEXT)


def clip(value: str | None, limit: int = MAX_TEXT) -> str | None:
    """Cap a string; a longer one would reject the whole batch."""
    return value[:limit] if value is not None else None


def under(root: Path, path: str) -> Path:
    """``path`` (absolute, e.g. ``/etc/passwd``) inside ``root``."""
    return Path(root) / path.lstrip("/")


def read_file(root: Path, path: str, max_bytes: int = 4 << 20) -> tuple[str | None, str | None]:
    """(text, None), or (None, "missing") / (None, "unreadable: ...") — the reason is a fact too."""
    try:
        # O_NONBLOCK + a regular-file check: a FIFO or device planted where a config file belongs must
        # not hang the collector (opening a FIFO for reading blocks until a writer appears).
        fd = os.open(under(root, path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None, "unreadable: not a regular file"
            return _read_capped(fh, max_bytes).decode("utf-8", errors="replace"), None
    except FileNotFoundError:
        return None, "missing"
    except IsADirectoryError:
        return None, "unreadable: is a directory"
    except OSError as exc:
        return None, clip(f"unreadable: {exc.strerror or exc}")


def _read_capped(fh, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` in 64 KiB reads: /proc/sys answers one huge read() with ENOMEM."""
    chunks, left = [], max_bytes
    while left > 0:
        chunk = fh.read(min(left, 64 << 10))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_text(root: Path, path: str) -> str | None:
    """Whole file as text, None when missing or unreadable."""
    return read_file(root, path)[0]


def exists(root: Path, path: str) -> bool:
    return os.path.lexists(under(root, path))


def glob_under(root: Path, pattern: str) -> list[str]:
    """Absolute paths (as on the host) matching ``pattern`` inside ``root``, sorted."""
    base = str(Path(root))
    found = glob.glob(str(under(root, pattern)))
    strip = len(base.rstrip("/"))
    return sorted("/" + p[strip:].lstrip("/") for p in found)


def strip_comment(line: str, marker: str = "#") -> str:
    """The line without a trailing comment, stripped."""
    index = line.find(marker)
    return (line[:index] if index >= 0 else line).strip()


def key_values(text: str, *, sep: str | None = None, lower: bool = False) -> dict[str, str]:
    """``KEY value`` (or ``key = value`` with ``sep="="``) lines; later lines win; comments skipped."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = strip_comment(raw)
        if not line or line.startswith(("[", ";")):
            continue
        if sep is None:
            parts = line.split(None, 1)
        elif sep not in line:
            parts = [line, ""]  # a bare flag such as ``enforce_for_root``
        else:
            parts = [p.strip() for p in line.split(sep, 1)]
        key = parts[0].strip()
        if not key or len(key) > 128:
            continue
        value = parts[1].strip() if len(parts) > 1 else ""
        found[key.lower() if lower else key] = clip(value.strip('"'))
    return found


def to_int(value: object) -> int | None:
    """int of numeric text (sign allowed), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def yes(value: str | None) -> bool | None:
    """systemd/ini style booleans; None for anything else."""
    if value is None:
        return None
    lowered = value.strip().strip('"').lower()
    if lowered in ("1", "yes", "true", "on", "y"):
        return True
    if lowered in ("0", "no", "false", "off", "n"):
        return False
    return None


def unavailable(error: str, **extra: object) -> dict:
    """The result of a kind that could not be determined here."""
    return {"available": False, "error": clip(error), **extra}


def proc_names(root: Path) -> set[str]:
    """Process names (``/proc/*/comm``) under ``root``; empty when /proc is not there."""
    names: set[str] = set()
    proc = under(root, "/proc")
    try:
        entries = [e for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        return names
    for entry in entries:
        try:
            with open(os.path.join(entry.path, "comm"), encoding="utf-8", errors="replace") as fh:
                names.add(fh.read().strip())
        except OSError:
            continue
    return names
