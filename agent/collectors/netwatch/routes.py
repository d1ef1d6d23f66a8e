"""Default route, gateway and neighbour MACs from /proc/net (per network namespace, no root needed)."""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

ZERO_MAC = "00:00:00:00:00:00"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


@dataclass(frozen=True, slots=True)
class DefaultRoute:
    interface: str
    gateway: str | None  # None for a default route without a next hop (point-to-point)


def normalize_mac(value: str | bytes | None) -> str | None:
    """``AA-BB-..`` / ``aabb..`` / raw bytes as lowercase colon form; None when not a 6-byte MAC."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return ":".join(f"{b:02x}" for b in value) if len(value) == 6 else None
    digits = value.strip().lower().replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def _hex_ipv4(value: str) -> str:
    """/proc/net/route stores addresses as host-order (little-endian on x86) hex."""
    return socket.inet_ntoa(struct.pack("=I", int(value, 16)))


def default_route(proc: Path = Path("/proc")) -> DefaultRoute | None:
    """The lowest-metric IPv4 default route, or None when there is none (or /proc is unreadable)."""
    try:
        lines = (proc / "net/route").read_text().splitlines()[1:]
    except OSError:
        return None
    best: tuple[int, DefaultRoute] | None = None
    for line in lines:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        flags, metric = int(cols[3], 16), int(cols[6])
        if not flags & 0x1:  # RTF_UP
            continue
        gateway = _hex_ipv4(cols[2]) if flags & 0x2 else None  # RTF_GATEWAY
        if best is None or metric < best[0]:
            best = (metric, DefaultRoute(cols[0], gateway))
    return best[1] if best else None


def arp_table(proc: Path = Path("/proc"), device: str | None = None) -> dict[str, str]:
    """IPv4 → MAC of complete neighbour entries (flag ATF_COM), optionally on one device only."""
    try:
        lines = (proc / "net/arp").read_text().splitlines()[1:]
    except OSError:
        return {}
    table: dict[str, str] = {}
    for line in lines:
        cols = line.split()
        if len(cols) < 6 or not int(cols[2], 16) & 0x2 or (device and cols[5] != device):
            continue
        mac = normalize_mac(cols[3])
        if mac and mac not in (ZERO_MAC, BROADCAST_MAC) and is_ipv4(cols[0]):
            table[cols[0]] = mac
    return table


def is_ipv4(value: str) -> bool:
    """True for a dotted-quad IPv4 address."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True
