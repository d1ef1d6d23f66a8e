"""Shared pieces of the patch collectors: the command runner and small row helpers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_TEXT = 256  # the collector caps every string at 256 characters
MAX_PENDING = 20_000
MAX_ERRORS = 50


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command left behind; ``error`` is set when it could not run at all."""

    returncode: int
    stdout: str = ""
    stderr: str = ""
    error: str | None = None


Runner = Callable[[list[str], float], CommandResult]


def run_command(argv: list[str], timeout_s: float) -> CommandResult:
    """Run ``argv`` with LANG=C (parsers read English output); never raises."""
    env = dict(os.environ, LANG="C", LC_ALL="C", LANGUAGE="C")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout_s,
                              check=False, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return CommandResult(-1, error=f"{argv[0]}: timed out after {timeout_s:g}s")
    except OSError as exc:
        return CommandResult(-1, error=f"{argv[0]}: {exc}")
    return CommandResult(done.returncode, done.stdout, done.stderr)


def failure(label: str, result: CommandResult) -> str:
    """One short line saying why a command gave no usable answer."""
    if result.error:
        return clip(f"{label}: {result.error}")
    detail = (result.stderr.strip().splitlines() or [""])[-1]
    return clip(f"{label}: exited {result.returncode}: {detail}".rstrip(": "))


def clip(value: str | None) -> str | None:
    """Cap a string at the collector's limit; a longer one would reject the whole batch."""
    return value[:MAX_TEXT] if value is not None else None


def pending_row(name: str, candidate: str | None, *, installed: str | None = None, arch: str | None = None,
                origin: str | None = None, security: bool = False) -> dict:
    """One pending update in the wire shape."""
    return {"name": clip(name), "installed_version": clip(installed), "candidate_version": clip(candidate),
            "arch": clip(arch), "origin": clip(origin), "security": security}


def iso_from_epoch(seconds: float | None) -> str | None:
    """An mtime as ISO 8601 UTC, None stays None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


# The data fields of a ``patch.status`` item, mirrored by collector/ingest/items/patch.py.
PATCH_FIELDS: tuple[str, ...] = (
    "manager", "pending", "pending_count", "security_count", "held_back", "lists_age_s", "last_update",
    "last_upgrade", "running_kernel", "newest_kernel", "kernel_outdated", "reboot_required",
    "reboot_packages", "hotfixes", "errors",
)


def empty_status(manager: str) -> dict:
    """A ``patch.status`` payload with every field at its "unknown/none" value."""
    return {"manager": manager, "pending": [], "pending_count": 0, "security_count": 0, "held_back": [],
            "lists_age_s": None, "last_update": None, "last_upgrade": None, "running_kernel": None,
            "newest_kernel": None, "kernel_outdated": None, "reboot_required": False,
            "reboot_packages": [], "hotfixes": [], "errors": []}
