"""The ``interfaces`` section: every network interface with its MAC, addresses, state and MTU."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil

from agent.collectors.inventory._files import clip
from agent.collectors.inventory.identity import normalize_mac

FIELDS: tuple[str, ...] = ("name", "mac", "addresses", "is_up", "mtu")

FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
MAX_ADDRESSES = 256
MAX_INTERFACES = 1_000


def address_rows(addrs: list) -> tuple[str | None, list[dict]]:
    """(MAC, IP address rows) from one interface's psutil snic entries."""
    mac: str | None = None
    rows: list[dict] = []
    for addr in addrs:
        if addr.family == psutil.AF_LINK:
            mac = mac or normalize_mac(addr.address)
        elif addr.family in FAMILIES and addr.address:
            rows.append({"family": FAMILIES[addr.family], "address": clip(addr.address),
                         "netmask": clip(addr.netmask or None)})
    rows.sort(key=lambda a: (a["family"], a["address"]))  # psutil order is not guaranteed stable
    return mac, rows[:MAX_ADDRESSES]


def collect_interfaces(root: Path = Path("/")) -> list[dict]:
    """One row per interface (loopback included: services bound there are part of the picture)."""
    del root  # interfaces come from the kernel via psutil; kept for a uniform section signature
    stats = psutil.net_if_stats()
    rows = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        mac, addresses = address_rows(addrs)
        stat = stats.get(name)
        rows.append({
            "name": clip(name),
            "mac": mac,
            "addresses": addresses,
            "is_up": stat.isup if stat else None,
            "mtu": stat.mtu if stat and stat.mtu >= 0 else None,
        })
    return rows[:MAX_INTERFACES]
