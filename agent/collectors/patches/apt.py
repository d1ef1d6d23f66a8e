"""Debian/Ubuntu: pending upgrades from ``apt-get -s upgrade``, list age, last update and upgrade.

The security flag follows Lynis: an upgrade is a security upgrade when ``apt-get -s upgrade`` says
its candidate comes from a security archive. The simulation modifies nothing, takes no lock
(``Debug::NoLocking``) and reads only the local package lists, so it needs no network. We run
``upgrade``, not ``dist-upgrade``: the issue asks for the set ``upgrade`` lists, and its "kept back"
block already names what only ``dist-upgrade`` would take (typically new kernels), reported as
``held_back``.
"""

from __future__ import annotations

import gzip
import re
from datetime import datetime
from pathlib import Path

from agent.collectors.patches._common import clip, iso_from_epoch, pending_row

APT_UPGRADE = ["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"]
LISTS_DIR = "var/lib/apt/lists"
UPDATE_STAMP = "var/lib/apt/periodic/update-success-stamp"
HISTORY_LOGS = ("var/log/apt/history.log", "var/log/apt/history.log.1.gz")
REBOOT_FLAGS = ("run/reboot-required", "var/run/reboot-required")

# Inst NAME [OLD] (NEW ORIGIN[, ORIGIN...] [ARCH]) [BROKEN...]; OLD is absent for new installs.
INST_LINE = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]*)\] )?"
                       r"\((?P<new>\S+) (?P<origin>.*?) ?\[(?P<arch>[^\]]+)\]\)")
# Both blocks name upgrades ``apt-get upgrade`` will not take now: new dependencies (kept back) and
# Ubuntu's phased updates (apt >= 2.7 words them separately; security updates are never phased).
HELD_HEADERS = ("The following packages have been kept back:",
                "The following upgrades have been deferred due to phasing:")


def is_security_origin(origin: str) -> bool:
    """True when any archive in ``Label:version/archive, ...`` is a security archive."""
    for part in origin.split(","):
        label, _, archive = part.strip().partition("/")
        # bookworm-security, jammy-security, jammy-apps-security (ESM), Debian-Security:12/...
        if archive.endswith("-security") or "security" in label.lower():
            return True
    return False


def parse_apt_simulation(text: str) -> tuple[list[dict], list[str]]:
    """Pending upgrades and kept-back package names from ``apt-get -s upgrade`` output."""
    pending: list[dict] = []
    held: list[str] = []
    in_kept = False
    for line in text.splitlines():
        if line.startswith(HELD_HEADERS):
            in_kept = True
            continue
        if in_kept and line.startswith(" "):
            held.extend(clip(n) for n in line.split())
            continue
        in_kept = False
        match = INST_LINE.match(line)
        if match:  # Conf/Remv/summary lines never match: only Inst says what would change
            pending.append(_inst_row(match))
    return pending, held


def _inst_row(match: re.Match[str]) -> dict:
    """A pending row from one matched Inst line; ``name:arch`` (multiarch) is split."""
    name, _, arch = match["name"].partition(":")
    origin = match["origin"].strip().rstrip(",")
    return pending_row(name, match["new"], installed=match["old"] or None, arch=arch or match["arch"],
                       origin=origin or None, security=is_security_origin(origin))


def newest_lists_mtime(root: Path) -> float | None:
    """mtime of the newest package list (``*_Packages*``, ``*Release``); None when there are none."""
    lists = root / LISTS_DIR
    try:
        entries = [p for p in lists.iterdir() if p.is_file() and
                   ("_Packages" in p.name or p.name.endswith("Release"))]
    except OSError:
        return None
    return max((p.stat().st_mtime for p in entries), default=None)


def last_update_mtime(root: Path) -> float | None:
    """When ``apt update`` last succeeded: APT::Periodic's stamp, else the newest list's mtime."""
    try:
        return (root / UPDATE_STAMP).stat().st_mtime
    except OSError:
        # apt stamps each list with the server's Last-Modified, so this can be older than the update.
        return newest_lists_mtime(root)


def last_upgrade_from_history(text: str) -> str | None:
    """End-Date of the last transaction in history.log that upgraded packages, as aware ISO 8601."""
    last: str | None = None
    upgraded = False
    for line in text.splitlines():
        if line.startswith("Start-Date:"):
            upgraded = False
        elif line.startswith("Upgrade:"):
            upgraded = True
        elif line.startswith("End-Date:") and upgraded:
            last = line.partition(":")[2]
    return _local_iso(last) if last else None


def _local_iso(stamp: str) -> str | None:
    """history.log writes local wall time (``2024-05-02  10:11:12``); attach this host's offset."""
    try:
        when = datetime.strptime(" ".join(stamp.split()), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return when.astimezone().isoformat(timespec="seconds")


def last_upgrade(root: Path) -> str | None:
    """Last successful upgrade from history.log, falling back to the first rotated log."""
    for rel in HISTORY_LOGS:
        path = root / rel
        try:
            raw = gzip.decompress(path.read_bytes()) if rel.endswith(".gz") else path.read_bytes()
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        found = last_upgrade_from_history(raw.decode("utf-8", errors="replace"))
        if found:
            return found
    return None


def reboot_required(root: Path) -> tuple[bool, list[str]]:
    """update-notifier's flag file and the packages that asked for it (``.pkgs``)."""
    for rel in REBOOT_FLAGS:
        flag = root / rel
        if flag.exists():
            try:
                text = flag.with_name(flag.name + ".pkgs").read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            names = list(dict.fromkeys(n for n in text.split() if n))
            return True, [clip(n) for n in names][:1000]
    return False, []


def lists_age(root: Path, now: float) -> tuple[float | None, str | None]:
    """Age in seconds of the newest package list, or (None, why)."""
    mtime = newest_lists_mtime(root)
    if mtime is None:
        return None, f"lists_age: no package lists under /{LISTS_DIR}"
    return max(0.0, round(now - mtime, 1)), None


def last_update_iso(root: Path) -> str | None:
    """``last_update`` in the wire shape."""
    return iso_from_epoch(last_update_mtime(root))
