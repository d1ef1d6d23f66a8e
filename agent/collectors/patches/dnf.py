"""RHEL family: pending updates from ``dnf check-update`` and security ones from ``updateinfo``.

Both run with the cache only (``--cacheonly`` / ``-C``): no network, no metadata refresh; a host
whose cache is missing reports that in ``errors`` instead of silently reporting "nothing pending".
``check-update`` exits 100 when updates exist, 0 when none and 1 on error. Its "Obsoleting
Packages" section is not read: it lists replacements (and, indented, the installed packages they
replace), which ``dnf upgrade`` handles but are not upgrades of an installed package.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent.collectors.patches._common import CommandResult, clip, iso_from_epoch, pending_row

COMMANDS: dict[str, dict[str, list[str]]] = {
    "dnf": {"check": ["dnf", "-q", "--cacheonly", "check-update"],
            "security": ["dnf", "-q", "--cacheonly", "updateinfo", "list", "--security"]},
    "yum": {"check": ["yum", "-q", "-C", "check-update"],
            "security": ["yum", "-q", "-C", "updateinfo", "list", "security"]},
}
NEEDS_RESTARTING = ["needs-restarting", "-r"]
CHECK_UPDATE_OK = (0, 100)
SKIP_PREFIXES = ("Last metadata expiration check", "Security:", "Loaded plugins", "Loading mirror")
REPOMD_GLOBS = ("var/cache/dnf/*/repodata/repomd.xml", "var/cache/yum/*/*/*/repomd.xml")
MAKECACHE_STAMP = "var/cache/dnf/last_makecache"
DNF_RPM_LOG = "var/log/dnf.rpm.log"


def split_name_arch(name_arch: str) -> tuple[str, str | None]:
    """``bind-libs.x86_64`` -> (``bind-libs``, ``x86_64``)."""
    name, dot, arch = name_arch.rpartition(".")
    return (name, arch) if dot and name else (name_arch, None)


def parse_check_update(text: str) -> list[dict]:
    """Pending rows from ``check-update`` output; wrapped lines are joined token by token."""
    rows: list[dict] = []
    tokens: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Obsoleting Packages"):
            break
        if not stripped or stripped.startswith(SKIP_PREFIXES):
            continue
        # A long name.arch makes dnf/yum wrap the version and repo onto the next line.
        tokens.extend(stripped.split())
        while len(tokens) >= 3:
            name_arch, version, repo = tokens[:3]
            del tokens[:3]
            name, arch = split_name_arch(name_arch)
            rows.append(pending_row(name, version, arch=arch, origin=repo))
    return rows


def nevra_name_arch(nevra: str) -> tuple[str, str | None]:
    """``bind-libs-32:9.16.23-18.el9_4.6.x86_64`` -> (``bind-libs``, ``x86_64``)."""
    nevr, arch = split_name_arch(nevra)
    parts = nevr.rsplit("-", 2)
    return (parts[0], arch) if len(parts) == 3 else (nevr, arch)


def parse_updateinfo_security(text: str) -> dict[tuple[str, str | None], str]:
    """(name, arch) -> advisory id from ``updateinfo list --security`` (``ID SEVERITY/Sec. NEVRA``)."""
    found: dict[tuple[str, str | None], str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or line.strip().startswith(SKIP_PREFIXES) or "-" not in parts[-1]:
            continue
        found.setdefault(nevra_name_arch(parts[-1]), parts[0])
    return found


def mark_security(rows: list[dict], security: dict[tuple[str, str | None], str]) -> None:
    """Flag rows named by a security advisory (matched on name and arch, or name alone)."""
    names = {name for name, _arch in security}
    for row in rows:
        row["security"] = (row["name"], row["arch"]) in security or (
            row["arch"] is None and row["name"] in names)


def check_update_ok(result: CommandResult) -> bool:
    """Exit 100 means "updates available", 0 "none"; anything else is a failure."""
    return result.error is None and result.returncode in CHECK_UPDATE_OK


def parse_needs_restarting(result: CommandResult) -> tuple[bool | None, list[str]]:
    """``needs-restarting -r``: exit 1 means reboot needed; ``* name`` lines say why."""
    if result.error is not None or result.returncode not in (0, 1):
        return None, []
    names = [clip(line.strip()[2:].strip()) for line in result.stdout.splitlines()
             if line.strip().startswith("* ")]
    return result.returncode == 1, names


def newest_metadata_mtime(root: Path) -> float | None:
    """mtime of the newest cached repomd.xml (dnf or yum)."""
    mtimes = [p.stat().st_mtime for pattern in REPOMD_GLOBS for p in root.glob(pattern) if p.is_file()]
    return max(mtimes, default=None)


def last_update_iso(root: Path) -> str | None:
    """When the metadata was last refreshed: dnf's makecache stamp, else the newest repomd.xml."""
    try:
        return iso_from_epoch((root / MAKECACHE_STAMP).stat().st_mtime)
    except OSError:
        return iso_from_epoch(newest_metadata_mtime(root))


def last_upgrade_from_rpm_log(text: str) -> str | None:
    """Timestamp of the last ``Upgrade:`` line of dnf.rpm.log (``2024-05-02T10:11:12+0000 ...``)."""
    for line in reversed(text.splitlines()):
        if " Upgrade: " in line or " Upgraded: " in line:
            try:
                return datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S%z").isoformat()
            except (ValueError, IndexError):
                return None
    return None


def last_upgrade(root: Path) -> str | None:
    """Last upgrade dnf logged; yum's log has no year, so RHEL 7 reports None."""
    try:
        text = (root / DNF_RPM_LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return last_upgrade_from_rpm_log(text)
