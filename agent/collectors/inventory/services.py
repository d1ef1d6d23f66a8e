"""The ``services`` section: systemd service units, enabled state, active state, description.

With systemd running we ask ``systemctl`` (the only reliable source for active state). Without it
(containers, chroots, fixture trees) the enabled state is read from unit files and ``.wants/``
symlinks, and active is ``unknown``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from agent.collectors.inventory._files import clip, under

FIELDS: tuple[str, ...] = ("name", "enabled", "active", "description")

SYSTEMCTL_TIMEOUT_S = 10
UNIT_FILES_CMD = ("list-unit-files", "--type=service", "--no-legend", "--no-pager")
UNITS_CMD = ("list-units", "--type=service", "--all", "--no-legend", "--no-pager", "--plain")
# Lowest precedence first: a later directory's file overrides an earlier one (systemd.unit(5)).
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/run/systemd/system", "/etc/systemd/system")
ADMIN_DIR = "/etc/systemd/system"
INSTALL_KEYS = ("wantedby=", "requiredby=", "upheldby=", "also=", "alias=")
STATUS_MARKERS = ("●", "*", "×")  # systemctl prefixes failed / not-found units with one of these
MAX_ROWS = 5_000


class ServicesError(RuntimeError):
    """systemctl ran but failed; the section is skipped rather than reported half-empty."""


def systemd_running(root: Path) -> bool:
    """sd_booted(3): systemd is PID 1 exactly when /run/systemd/system exists."""
    return under(root, "/run/systemd/system").is_dir()


def run_systemctl(systemctl: str, args: tuple[str, ...]) -> str:
    """stdout of ``systemctl args`` in the C locale; ServicesError on failure or timeout."""
    env = {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SYSTEMD_COLORS": "0"}
    try:
        done = subprocess.run([systemctl, *args], capture_output=True, text=True, errors="replace",
                              timeout=SYSTEMCTL_TIMEOUT_S, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServicesError(f"systemctl {args[0]}: {exc}") from exc
    if done.returncode != 0:
        raise ServicesError(f"systemctl {args[0]} exited {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


def parse_unit_files(text: str) -> dict[str, str]:
    """``list-unit-files`` lines (``UNIT STATE [PRESET]``) -> unit name -> enabled state."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(".service"):
            states[parts[0]] = parts[1]
    return states


def parse_units(text: str) -> dict[str, tuple[str, str | None]]:
    """``list-units`` lines (``[●] UNIT LOAD ACTIVE SUB DESCRIPTION...``) -> name -> (active, description)."""
    units: dict[str, tuple[str, str | None]] = {}
    for line in text.splitlines():
        parts = line.split(None, 4)
        if parts and parts[0] in STATUS_MARKERS:
            parts = line.split(None, 5)[1:]
        if len(parts) >= 4 and parts[0].endswith(".service"):
            description = parts[4].strip() if len(parts) > 4 else None
            units[parts[0]] = (parts[2], description or None)
    return units


def merge_systemctl(unit_files: dict[str, str], units: dict[str, tuple[str, str | None]]) -> list[dict]:
    """One row per unit known to either listing; unloaded units are inactive, templates have no state."""
    rows = []
    for name in sorted(unit_files.keys() | units.keys()):
        default_active = None if name.endswith("@.service") else "inactive"
        active, description = units.get(name, (default_active, None))
        rows.append({"name": clip(name), "enabled": clip(unit_files.get(name)),
                     "active": clip(active), "description": clip(description)})
    return rows


def from_systemctl(systemctl: str) -> list[dict]:
    """Rows from a running systemd."""
    return merge_systemctl(parse_unit_files(run_systemctl(systemctl, UNIT_FILES_CMD)),
                           parse_units(run_systemctl(systemctl, UNITS_CMD)))


def unit_paths(root: Path) -> dict[str, Path]:
    """Service unit name -> the file systemd would load, honouring directory precedence."""
    paths: dict[str, Path] = {}
    for directory in UNIT_DIRS:
        base = under(root, directory)
        if base.is_dir():
            paths.update((p.name, p) for p in base.glob("*.service"))
    return paths


def wanted_units(root: Path) -> set[str]:
    """Units an administrator enabled: symlinks in /etc/systemd/system/*.wants|*.requires/."""
    base = under(root, ADMIN_DIR)
    names = {p.name for pattern in ("*.wants/*.service", "*.requires/*.service") for p in base.glob(pattern)}
    # An enabled instance (getty@tty1.service) enables its template (getty@.service).
    return names | {n.split("@", 1)[0] + "@.service" for n in names if "@" in n}


def unit_file_facts(path: Path) -> tuple[str | None, bool]:
    """(Description=, has an [Install] section that can enable it) from one unit file."""
    description, installable, section = None, False, ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # dangling symlink or unreadable file: report the unit without details
        text = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.lower()
        elif section == "[unit]" and line.startswith("Description=") and description is None:
            description = line.partition("=")[2].strip() or None
        elif section == "[install]" and line.lower().startswith(INSTALL_KEYS):
            installable = True
    return description, installable


def link_state(name: str, path: Path) -> str | None:
    """``masked`` for a link to /dev/null, ``alias`` for a link to another unit's name, else None."""
    if not path.is_symlink():
        return None
    target = os.readlink(path)
    if target == "/dev/null":
        return "masked"
    return "alias" if Path(target).name != name else None


def file_row(name: str, path: Path, wanted: set[str]) -> dict:
    """One row with a systemctl-like enabled state: masked, alias, enabled, static or disabled."""
    state = link_state(name, path)
    description = None
    if state is None:
        description, installable = unit_file_facts(path)
        state = "enabled" if name in wanted else "disabled" if installable else "static"
    return {"name": clip(name), "enabled": state, "active": "unknown", "description": clip(description)}


def from_unit_files(root: Path) -> list[dict]:
    """Rows from unit files and .wants/ symlinks when systemd is not running; active is unknown."""
    wanted = wanted_units(root)
    return [file_row(name, path, wanted) for name, path in sorted(unit_paths(root).items())]


def collect_services(root: Path = Path("/")) -> list[dict]:
    """Service units from systemctl when systemd runs here, else from the unit file tree."""
    systemctl = shutil.which("systemctl") if root == Path("/") else None
    if systemctl and systemd_running(root):
        return from_systemctl(systemctl)[:MAX_ROWS]
    return from_unit_files(root)[:MAX_ROWS]
