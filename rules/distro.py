"""The release key vulnerability feeds and host inventories meet on: ``debian:12``, ``ubuntu:22.04``, ``rocky:9``.

Feeds name releases their own way (``Debian:12``, ``bookworm``, ``Ubuntu:22.04:LTS``, ``Rocky Linux:9``);
hosts report os-release ``ID``/``VERSION_ID``/``VERSION_CODENAME``. Both sides are reduced to this key,
which is the granularity at which distributions publish fixed versions (a Debian point release or a
RHEL minor release gets the same fixes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEBIAN_CODENAMES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
# os-release ID -> the key's family; RPM rebuilds keep their own family (their feeds are separate).
FAMILIES = {"debian": "debian", "ubuntu": "ubuntu", "alpine": "alpine", "rocky": "rocky",
            "almalinux": "alma", "rhel": "rhel"}
# Where fixed versions are per major release; Ubuntu and Alpine publish per major.minor.
MAJOR_ONLY = frozenset({"debian", "rocky", "alma", "rhel"})


def distro_key(os_row: Mapping[str, Any]) -> str | None:
    """The key for a host's ``os`` inventory row, or None for a platform no feed covers."""
    family = FAMILIES.get(str(os_row.get("id") or "").lower())
    if family is None:
        return None
    version = str(os_row.get("version_id") or "").strip()
    if family == "debian" and not version:
        codename = str(os_row.get("codename") or "").lower()
        version = DEBIAN_CODENAMES.get(codename, codename)  # testing/sid carry no VERSION_ID
    if not version:
        return None
    parts = version.split(".")
    version = parts[0] if family in MAJOR_ONLY else ".".join(parts[:2])
    return f"{family}:{version}"
