"""Scan targets: parse what an operator typed, keep it inside the unit's declared ranges, cut it into chunks.

A network scan is only lawful and only safe inside the address ranges a unit has declared as its own,
so every target is checked against those ranges before anything is sent. Hostnames are refused: a
name can resolve anywhere, including outside the unit. Targets are expanded into fixed-size chunks of
addresses so a scan can stop at the end of its time window and resume later at a chunk boundary.
Pure: stdlib only, no FastAPI or SQLModel.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EXPAND_LIMIT = 1 << 22  # addresses expand_chunks will materialise; check_size with the real cap comes first
_HOSTNAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")


class TargetError(ValueError):
    """A target is malformed, out of range or too large; the message names the offending item."""


def _parse_one(item: str) -> Network:
    text = item.strip()
    if not text:
        raise TargetError("empty target: use addresses or CIDR (10.1.2.0/24, 10.1.2.3, fd00::/64)")
    if "%" in text:
        raise TargetError(f"{text!r} has an IPv6 zone (%...): zoned link-local targets are not supported")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.ip_network(text, strict=False)
            raise TargetError(f"{text!r} has host bits set: did you mean {loose}?") from None
        if _HOSTNAME.match(text) and any(ch.isalpha() for ch in text):
            raise TargetError(f"{text!r} looks like a hostname: use addresses or CIDR, not names") from None
        raise TargetError(f"{text!r} is not an IP address or CIDR network: {exc}") from None


def parse_targets(items: Sequence[str]) -> list[Network]:
    """Parse CIDR networks and single addresses (a single address becomes a /32 or /128)."""
    return [_parse_one(item) for item in items]


def address_count(networks: Iterable[Network]) -> int:
    """Total addresses in ``networks`` (overlaps counted once)."""
    return sum(net.num_addresses for net in _collapse(networks))


def _collapse(networks: Iterable[Network]) -> list[Network]:
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]  # type: ignore[arg-type]


def _inside(target: Network, ranges: Iterable[Network]) -> bool:
    return any(target.version == r.version and target.subnet_of(r) for r in ranges)  # type: ignore[arg-type]


def _describe(ranges: Sequence[Network]) -> str:
    return ", ".join(str(r) for r in ranges) if ranges else "(none)"


def check_within(targets: Iterable[Network], *, allowed: Sequence[Network], excludes: Sequence[Network] = (),
                 unit: str | None = None) -> None:
    """TargetError unless every target lies wholly inside one allowed range and is not wholly excluded.

    ``allowed`` ranges are collapsed first, so a target spanning two adjacent declared ranges passes.
    """
    merged = _collapse(allowed)
    owner = f"unit {unit}'s" if unit else "the"
    for target in targets:
        if not _inside(target, merged):
            raise TargetError(f"{target} is outside {owner} declared ranges {_describe(list(allowed))}")
        if _inside(target, excludes):
            raise TargetError(f"{target} lies entirely in the exclusion list {_describe(list(excludes))}")


def check_size(targets: Iterable[Network], *, max_addresses: int) -> None:
    """TargetError when the targets hold more than ``max_addresses`` addresses in total."""
    total = address_count(targets)
    if total > max_addresses:
        raise TargetError(f"targets hold {total} addresses, more than the cap of {max_addresses}: "
                          "split the scan or raise the cap")


def _host_addresses(net: Network) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    # hosts() drops network/broadcast for IPv4 /0-/30 and the subnet-router anycast for IPv6; /31, /32,
    # /127 and /128 keep every address. Scanning a broadcast address is noise at best.
    return iter(net.hosts()) if net.num_addresses > 2 else iter(net)  # type: ignore[return-value]


def expand_chunks(targets: Iterable[Network], *, excludes: Sequence[Network] = (),
                  chunk_size: int = 256) -> list[list[str]]:
    """Addresses of ``targets`` minus ``excludes``, deduplicated and sorted, in chunks of at most ``chunk_size``.

    IPv4 chunks come first, then IPv6; a chunk never mixes families (nmap needs -6 for IPv6). The order is
    deterministic, so chunk N of a given target list is the same on every run and a scan can resume there.
    """
    if chunk_size < 1:
        raise TargetError(f"chunk_size must be positive, got {chunk_size}")
    targets = list(targets)
    if address_count(targets) > EXPAND_LIMIT:
        raise TargetError(f"targets hold {address_count(targets)} addresses, too many to expand "
                          f"(limit {EXPAND_LIMIT}): run check_size with the unit's cap first")
    chunks: list[list[str]] = []
    for version in (4, 6):
        nets = [n for n in _collapse(targets) if n.version == version]
        skip = [e for e in excludes if e.version == version]
        current: list[str] = []
        for net in nets:
            for address in _host_addresses(net):
                if any(address in e for e in skip):
                    continue
                current.append(str(address))
                if len(current) == chunk_size:
                    chunks.append(current)
                    current = []
        if current:
            chunks.append(current)
    return chunks
