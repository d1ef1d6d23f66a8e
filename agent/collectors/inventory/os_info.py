"""The ``os`` section: /etc/os-release, kernel, architecture and boot time."""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from pathlib import Path

import psutil

from agent.collectors.inventory._files import clip, read_text
from agent.collectors.inventory.identity import hostname

FIELDS: tuple[str, ...] = (
    "platform", "id", "id_like", "name", "pretty_name", "version", "version_id", "codename",
    "kernel", "arch", "hostname", "boot_time",
)

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
# os-release key -> row field
OS_RELEASE_KEYS = {
    "ID": "id", "ID_LIKE": "id_like", "NAME": "name", "PRETTY_NAME": "pretty_name",
    "VERSION": "version", "VERSION_ID": "version_id", "VERSION_CODENAME": "codename",
}


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines with shell quoting (os-release(5)); malformed lines are skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:  # an unbalanced quote: keep the raw text rather than lose the key
            parts = [raw.strip("\"'")]
        values[key.strip()] = " ".join(parts)
    return values


def os_release(root: Path) -> dict[str, str]:
    """The parsed os-release file, /etc first then the /usr/lib copy it usually links to."""
    for path in OS_RELEASE_PATHS:
        text = read_text(root, path)
        if text is not None:
            return parse_os_release(text)
    return {}


def boot_time() -> str | None:
    """Boot time as a timezone-aware UTC ISO 8601 string (the collector rejects naive times)."""
    try:
        return datetime.fromtimestamp(psutil.boot_time(), UTC).isoformat(timespec="seconds")
    except (OSError, RuntimeError, ValueError):
        return None


def collect_os(root: Path = Path("/")) -> list[dict]:
    """The single ``os`` row."""
    release = os_release(root)
    row: dict = {"platform": "linux"}
    row.update({field: clip(release.get(key) or None) for key, field in OS_RELEASE_KEYS.items()})
    uname = os.uname()
    row.update({
        "kernel": clip(uname.release),
        "arch": clip(uname.machine or None),
        "hostname": hostname(),
        "boot_time": boot_time(),
    })
    return [row]
