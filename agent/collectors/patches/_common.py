"""Shared pieces of the patch collectors: the runner type and small row helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from agent.collectors.commands import CommandResult, run_command
from agent.collectors.commands import failure as command_failure

MAX_TEXT = 256  # the collector caps every string at 256 characters
MAX_PENDING = 20_000
MAX_ERRORS = 50

__all__ = ["CommandResult", "Runner", "clip", "failure", "run_command"]


Runner = Callable[[list[str], float], CommandResult]


def failure(label: str, result: CommandResult) -> str:
    """One short line saying why a command gave no usable answer."""
    return command_failure(label, result, MAX_TEXT)


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
