"""The ``packages`` section: dpkg's status database read directly, and rpm's via ``rpm -qa``.

Installed means dpkg's ``Status: install ok installed`` and also ``hold ok installed``: a package
pinned with ``apt-mark hold`` is still installed (and often the stale, vulnerable one).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from agent.collectors.inventory._files import clip, under

FIELDS: tuple[str, ...] = ("name", "version", "arch", "source", "source_version", "manager")

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_KEYS = frozenset({"Package", "Status", "Version", "Architecture", "Source"})
INSTALLED_STATUSES = frozenset({"install ok installed", "hold ok installed"})
RPM_DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
# Epoch only when set, as rpm -q and the advisory feeds print it.
RPM_QUERYFORMAT = (
    "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"
)
RPM_TIMEOUT_S = 30
RPM_NONE = "(none)"
MAX_ROWS = 50_000


class PackagesError(RuntimeError):
    """The package manager was there but could not be queried."""


def dpkg_stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The fields we need from each blank-line separated stanza; continuation lines are skipped."""
    stanza: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            if stanza:
                yield stanza
            stanza = {}
        elif line[0] not in " \t":
            key, sep, value = line.partition(":")
            if sep and key in DPKG_KEYS:
                stanza[key] = value.strip()
    if stanza:
        yield stanza


def split_source(field: str | None, name: str, version: str) -> tuple[str, str]:
    """``Source: name (version)`` -> (name, version); defaults to the binary package's own."""
    if not field:
        return name, version
    source, _, rest = field.partition(" ")
    source_version = rest.strip().strip("()").strip()
    return source or name, source_version or version


def parse_dpkg_status(lines: Iterable[str]) -> list[dict]:
    """Installed packages from the lines of /var/lib/dpkg/status."""
    rows = []
    for stanza in dpkg_stanzas(lines):
        name, version = stanza.get("Package"), stanza.get("Version")
        if not name or not version or stanza.get("Status") not in INSTALLED_STATUSES:
            continue
        source, source_version = split_source(stanza.get("Source"), name, version)
        rows.append({"name": clip(name), "version": clip(version),
                     "arch": clip(stanza.get("Architecture") or None), "source": clip(source),
                     "source_version": clip(source_version), "manager": "dpkg"})
    return rows


def source_from_srpm(srpm: str) -> tuple[str, str] | None:
    """``bash-5.1.8-6.el9.src.rpm`` -> (``bash``, ``5.1.8-6.el9``); None when it is not that shape."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if srpm.endswith(suffix):
            parts = srpm[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], f"{parts[1]}-{parts[2]}"
    return None


def parse_rpm_output(text: str) -> list[dict]:
    """Rows from ``rpm -qa --queryformat RPM_QUERYFORMAT`` output (tab separated)."""
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0] or not parts[1]:
            continue
        name, version, arch, srpm = parts
        # gpg-pubkey entries have no source rpm and no arch: they describe themselves.
        source, source_version = source_from_srpm(srpm) or (name, version)
        rows.append({"name": clip(name), "version": clip(version),
                     "arch": clip(arch) if arch and arch != RPM_NONE else None,
                     "source": clip(source), "source_version": clip(source_version), "manager": "rpm"})
    return rows


def query_rpm(rpm: str) -> str:
    """stdout of ``rpm -qa`` with our query format; PackagesError on failure or timeout."""
    try:
        done = subprocess.run([rpm, "-qa", "--queryformat", RPM_QUERYFORMAT], capture_output=True,
                              text=True, errors="replace", timeout=RPM_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackagesError(f"rpm -qa: {exc}") from exc
    if done.returncode != 0:
        raise PackagesError(f"rpm -qa exited {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


def rpm_packages(root: Path) -> list[dict]:
    """rpm packages when this host has both an rpm binary and an rpm database (not Debian's empty one)."""
    rpm = shutil.which("rpm") if root == Path("/") else None
    if not rpm or not any(under(root, d).is_dir() for d in RPM_DB_DIRS):
        return []
    return parse_rpm_output(query_rpm(rpm))


def collect_packages(root: Path = Path("/")) -> list[dict]:
    """Installed packages from every package manager present."""
    rows: list[dict] = []
    try:
        # Streamed: the status file holds every description and runs to megabytes on a desktop.
        with under(root, DPKG_STATUS).open(encoding="utf-8", errors="replace") as lines:
            rows = parse_dpkg_status(lines)
    except FileNotFoundError:  # not a dpkg system
        pass
    return (rows + rpm_packages(root))[:MAX_ROWS]
