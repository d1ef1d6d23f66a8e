"""Running kernel against the newest installed one, with a version order fit for kernel releases.

The comparator is the dpkg/rpm one in miniature: a release string is split into runs of digits and
runs of letters (separators only split); digits compare as numbers, letters as text, a number sorts
after letters, and ``~`` sorts before everything, even the end of the string. That orders
``6.1.0-18-amd64`` after ``6.1.0-9-amd64`` and ``5.14.0-427.28.1.el9_4`` after ``5.14.0-427.13.1.el9_4``,
where plain string order gets both wrong. Like dpkg and rpm, ``-rc1`` sorts after the bare release.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.inventory.packages import DPKG_STATUS, INSTALLED_STATUSES, dpkg_stanzas
from agent.collectors.patches._common import clip

TOKEN = re.compile(r"\d+|[A-Za-z]+|~")
# 6.1.0-18-amd64, 6.1.0-18-cloud-amd64, 5.15.0-105-generic, 6.8.0-1012-aws: the flavour follows the ABI.
DEB_RELEASE = re.compile(r"^\d+\.\d+(?:\.\d+)?-\d+(?:\.\d+)*-(?P<flavour>[A-Za-z][\w.-]*)$")
IMAGE_PREFIXES = ("linux-image-unsigned-", "linux-image-")


def release_key(release: str) -> tuple:
    """Sort key: compare two kernel release strings with ``<``."""
    key: list[tuple] = []
    for token in TOKEN.findall(release):
        if token == "~":
            key.append((0,))
        elif token.isdigit():
            key.append((3, int(token)))
        else:
            key.append((2, token))
    key.append((1,))  # end of string: after "~", before any further token
    return tuple(key)


def compare_releases(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as or newer than ``b``."""
    ka, kb = release_key(a), release_key(b)
    return (ka > kb) - (ka < kb)


def flavour(release: str) -> str:
    """``amd64``/``cloud-amd64``/``generic`` (Debian, Ubuntu) or the ``+debug``/``+rt`` suffix (RHEL)."""
    match = DEB_RELEASE.match(release)
    if match:
        return match["flavour"]
    return release.partition("+")[2]


def boot_kernels(root: Path) -> list[str]:
    """Releases of the /boot/vmlinuz-* images; RHEL's rescue image is not a kernel anyone boots."""
    try:
        names = [p.name for p in (root / "boot").iterdir() if p.name.startswith("vmlinuz-")]
    except OSError:
        return []
    releases = (n[len("vmlinuz-"):] for n in names)
    return [r for r in releases if r[:1].isdigit() and "rescue" not in r]


def dpkg_kernels(root: Path) -> list[str]:
    """Releases of installed ``linux-image-<release>`` packages (meta packages have no version digit)."""
    found = []
    try:
        with (root / DPKG_STATUS.lstrip("/")).open(encoding="utf-8", errors="replace") as lines:
            for stanza in dpkg_stanzas(lines):
                name = stanza.get("Package", "")
                if stanza.get("Status") not in INSTALLED_STATUSES:
                    continue
                for prefix in IMAGE_PREFIXES:
                    if name.startswith(prefix) and name[len(prefix):][:1].isdigit():
                        found.append(name[len(prefix):])
                        break
    except OSError:
        return []
    return found


def newest_kernel(running: str, installed: list[str]) -> str | None:
    """Newest installed release of the running kernel's flavour (any flavour if none match)."""
    same = [r for r in installed if flavour(r) == flavour(running)]
    pool = same or installed
    return max(pool, key=release_key) if pool else None


def kernel_status(root: Path, running: str) -> tuple[dict, str | None]:
    """Wire fields for the kernel, and why they are unknown when they are."""
    installed = boot_kernels(root) or dpkg_kernels(root)
    newest = newest_kernel(running, installed)
    fields = {"running_kernel": clip(running), "newest_kernel": clip(newest),
              "kernel_outdated": compare_releases(newest, running) > 0 if newest else None}
    # Containers share the host's kernel and install none: "unknown", not "up to date".
    error = None if newest else "kernel: no installed kernel found in /boot or the package database"
    return fields, error
