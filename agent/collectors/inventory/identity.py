"""The host's stable identity (DESIGN.md §4 Identity): machine-id, product UUID, MACs, hostname."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil

from agent.collectors.inventory._files import clip, read_value, under

FIELDS: tuple[str, ...] = ("hostname", "machine_id", "product_uuid", "macs")

MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id")
PRODUCT_UUID_PATH = "/sys/class/dmi/id/product_uuid"
ZERO_MAC = "00:00:00:00:00:00"
HEX = set("0123456789abcdef")
# Firmware that never set a UUID reports all zeros or all Fs; treating those as identity would merge
# every such host into one.
JUNK_UUID_DIGITS = ({"0"}, {"f"})


def normalize_mac(raw: str | None) -> str | None:
    """``AA-BB-..`` / ``aa:bb:..`` -> ``aa:bb:cc:dd:ee:ff``; None for anything that is not a 6-byte MAC."""
    if not raw:
        return None
    parts = raw.strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or any(len(p) != 2 or not set(p) <= HEX for p in parts):
        return None
    return ":".join(parts)


def link_macs() -> dict[str, str]:
    """Interface name -> MAC for every non-loopback interface with a non-zero MAC."""
    macs: dict[str, str] = {}
    for name, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            mac = normalize_mac(addr.address) if addr.family == psutil.AF_LINK else None
            if mac and mac != ZERO_MAC and name != "lo":
                macs[name] = mac
    return macs


def is_virtual_link(root: Path, name: str) -> bool:
    """True for software interfaces (bridges, veth, ifb, tun...) whose sysfs node is under virtual/."""
    node = under(root, f"/sys/class/net/{name}")
    try:
        return "/devices/virtual/" in str(node.resolve(strict=True))
    except OSError:  # no sysfs entry (fixture, non-Linux): cannot tell, so keep it
        return False


def has_random_mac(root: Path, name: str) -> bool:
    """addr_assign_type 1 = kernel-randomised MAC, different on every boot: useless as identity."""
    return read_value(root, f"/sys/class/net/{name}/addr_assign_type") == "1"


def physical_macs(root: Path = Path("/")) -> list[str]:
    """Sorted MACs of hardware interfaces; falls back to stable, then to any, so a container has some."""
    macs = link_macs()
    stable = {n: m for n, m in macs.items() if not has_random_mac(root, n)}
    physical = {n: m for n, m in stable.items() if not is_virtual_link(root, n)}
    return sorted(set((physical or stable or macs).values()))


def machine_id(root: Path) -> str | None:
    """systemd machine-id, falling back to the dbus copy older systems keep."""
    for path in MACHINE_ID_PATHS:
        value = read_value(root, path)
        if value:
            return value.lower()
    return None


def product_uuid(root: Path) -> str | None:
    """SMBIOS product UUID (root-only on most hardware), lowercased so case never splits a host."""
    value = read_value(root, PRODUCT_UUID_PATH)
    if not value:
        return None
    value = value.lower()
    return None if set(value.replace("-", "")) in JUNK_UUID_DIGITS else value


def hostname() -> str:
    """This host's name; never empty because the collector requires one."""
    return clip(socket.gethostname()) or "localhost"


def collect_identity(root: Path = Path("/")) -> dict:
    """The identity row: hostname, machine_id, product_uuid, macs."""
    return {
        "hostname": hostname(),
        "machine_id": machine_id(root),
        "product_uuid": product_uuid(root),
        "macs": physical_macs(root)[:64],
    }
