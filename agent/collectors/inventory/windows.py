"""What the inventory can collect on Windows, and the parsers for Windows sources.

``InventoryCollector`` is Linux-only; on any other platform the base class reports it as
"unsupported on this platform" without running it. ``WindowsInventoryCollector`` is the Windows
counterpart (and is likewise "unsupported" everywhere else). It covers the sections psutil and the
registry serve; users and groups need the Win32 NetUser APIs (pywin32), which the agent does not
depend on, so they are declared unsupported. The registry and service readers need Windows to run;
the row builders they feed are plain functions tested on fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import psutil

from agent.collectors.inventory._files import clip
from agent.collectors.inventory.identity import hostname, physical_macs
from agent.collectors.inventory.interfaces import collect_interfaces
from agent.collectors.inventory.os_info import boot_time
from agent.collectors.inventory.ports import collect_listening_ports
from agent.collectors.inventory.sections import SectionFunction
from agent.collectors.inventory.snapshot import InventoryCollector

# Section -> how it is collected on Windows (None: not collected there).
WINDOWS_SECTIONS: dict[str, str | None] = {
    "identity": "registry MachineGuid + psutil MACs",
    "os": "platform module + psutil boot time",
    "hardware": None,
    "interfaces": "psutil",
    "listening_ports": "psutil",
    "users": None,
    "groups": None,
    "services": "psutil.win_service_iter",
    "packages": "registry Uninstall keys",
}
UNINSTALL_KEYS = (
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
)
START_TYPES = {"automatic": "enabled", "manual": "manual", "disabled": "disabled"}
SERVICE_STATES = {"running": "active", "stopped": "inactive", "start_pending": "activating",
                  "stop_pending": "deactivating", "paused": "paused"}


def package_row_from_uninstall(values: dict, arch: str | None) -> dict | None:
    """An Uninstall registry key's values -> package row; None for updates and nameless entries."""
    name, version = values.get("DisplayName"), values.get("DisplayVersion")
    # SystemComponent / ParentKeyName mark patches and sub-components the user never installed directly.
    if not name or not version or values.get("SystemComponent") == 1 or values.get("ParentKeyName"):
        return None
    name, version = clip(str(name).strip()), clip(str(version).strip())
    return {"name": name, "version": version, "arch": arch, "source": name, "source_version": version,
            "manager": "windows"}


def service_row_from_info(info: dict) -> dict:
    """``psutil.WindowsService.as_dict()`` -> service row with systemd-like words."""
    start, status = info.get("start_type") or "", info.get("status") or ""
    return {"name": clip(info["name"]), "enabled": START_TYPES.get(start, clip(start) or None),
            "active": SERVICE_STATES.get(status, clip(status) or None),
            "description": clip(info.get("display_name") or None)}


def registry_values(winreg, key) -> dict:
    """All values of an open registry key as a name -> data dict."""
    values, index = {}, 0
    while True:
        try:
            name, data, _kind = winreg.EnumValue(key, index)
        except OSError:  # no more values
            return values
        values[name] = data
        index += 1


def windows_packages(root: Path) -> list[dict]:
    """Installed programs from the 64- and 32-bit Uninstall registry keys."""
    import winreg  # only on Windows, so imported where used

    rows = []
    for path, arch in zip(UNINSTALL_KEYS, ("x64", "x86"), strict=True):
        try:
            parent = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path)
        except OSError:
            continue
        for index in range(winreg.QueryInfoKey(parent)[0]):
            with winreg.OpenKey(parent, winreg.EnumKey(parent, index)) as key:
                row = package_row_from_uninstall(registry_values(winreg, key), arch)
            if row:
                rows.append(row)
    return rows


def windows_identity(root: Path) -> list[dict]:
    """Identity from the registry MachineGuid (Windows' machine-id) and the MACs."""
    import winreg  # only on Windows, so imported where used

    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography") as key:
        guid = winreg.QueryValueEx(key, "MachineGuid")[0]
    return [{"hostname": hostname(), "machine_id": clip(str(guid).lower()), "product_uuid": None,
             "macs": physical_macs(root)[:64]}]


def windows_os(root: Path) -> list[dict]:
    """The ``os`` row from the platform module."""
    import platform  # only needed here; keeps the Linux import set small

    release, version, _csd, _ptype = platform.win32_ver()
    return [{"platform": "windows", "id": "windows", "name": "Windows",
             "pretty_name": clip(f"Windows {release}".strip()), "version": clip(release or None),
             "version_id": clip(version or None), "kernel": clip(version or None),
             "arch": clip(os.environ.get("PROCESSOR_ARCHITECTURE")), "hostname": hostname(),
             "boot_time": boot_time()}]


def windows_services(root: Path) -> list[dict]:
    """Services from the Service Control Manager via psutil."""
    return [service_row_from_info(service.as_dict()) for service in psutil.win_service_iter()]


class WindowsInventoryCollector(InventoryCollector):
    """The inventory on Windows: the sections ``WINDOWS_SECTIONS`` marks as collected."""

    platforms = frozenset({"windows"})
    section_functions: ClassVar[Mapping[str, SectionFunction]] = {
        "identity": windows_identity,
        "os": windows_os,
        "interfaces": collect_interfaces,
        "listening_ports": collect_listening_ports,
        "services": windows_services,
        "packages": windows_packages,
    }
