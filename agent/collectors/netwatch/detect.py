"""Port-scan and ARP-spoof detection over plain packet records: no scapy here, so it unit-tests cheaply.

Records are fed in capture order (timestamps from the capture, not from the clock). A scan is
summarised when it is flushed (at collect time), not when it crosses the threshold, so the alert
reports every port seen up to then rather than just the packet that crossed the line.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.collectors.netwatch.routes import BROADCAST_MAC, ZERO_MAC

MAX_SAMPLE_PORTS = 50
# Replies from these UDP services land on our random ephemeral ports: never a scan.
UDP_SERVICE_PORTS = frozenset({53, 67, 68, 123, 137, 138, 443, 500, 1900, 4500, 5353})


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """What the sniffer keeps of one packet; ARP uses ``src_ip``/``src_mac`` (psrc/hwsrc)."""

    ts: float
    proto: str  # tcp | udp | arp
    src_ip: str
    dst_ip: str = ""
    src_port: int = 0
    dst_port: int = 0
    flags: str = ""  # TCP flags in scapy letters, e.g. "S", "SA"
    arp_op: int = 0  # 1 who-has, 2 is-at
    src_mac: str = ""


@dataclass(frozen=True, slots=True)
class PortScan:
    source_ip: str
    proto: str
    distinct_ports: int
    distinct_hosts: int
    sample_ports: list[int]
    window_s: float
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class ArpSpoof:
    ip: str
    old_mac: str
    new_mac: str
    is_gateway: bool
    first_seen: float


@dataclass(slots=True)
class _Source:
    """Recent distinct ports and hosts of one (source, proto), oldest first, for O(1) expiry."""

    ports: OrderedDict[int, float] = field(default_factory=OrderedDict)
    hosts: OrderedDict[str, float] = field(default_factory=OrderedDict)
    quiet_until: float = 0.0  # cool-down end after an alert

    def touch(self, ts: float, host: str, port: int, cap: int) -> None:
        """Record a hit; a per-source cap keeps a 65535-port sweep from growing without bound."""
        for table, key in ((self.ports, port), (self.hosts, host)):
            table[key] = ts
            table.move_to_end(key)
            if len(table) > cap:
                table.popitem(last=False)

    def expire(self, before: float) -> None:
        """Forget hits older than the window."""
        for table in (self.ports, self.hosts):
            while table and next(iter(table.values())) < before:
                table.popitem(last=False)


def is_scan_probe(rec: PacketRecord) -> bool:
    """Inbound connection attempts: TCP SYN without ACK, or UDP not coming from a known service port."""
    if rec.proto == "tcp":
        return "S" in rec.flags and "A" not in rec.flags
    return rec.proto == "udp" and rec.src_port not in UDP_SERVICE_PORTS


class PortScanDetector:
    """One source touching many ports or hosts within ``window_s`` → one alert per cool-down."""

    def __init__(self, *, ports_threshold: int = 20, hosts_threshold: int = 10, window_s: float = 60.0,
                 cooldown_s: float = 300.0, max_sources: int = 4096, max_per_source: int = 1024,
                 ignore_sources: Iterable[str] = ()) -> None:
        self.ports_threshold = ports_threshold
        self.hosts_threshold = hosts_threshold
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.max_sources = max_sources
        self.max_per_source = max(max_per_source, ports_threshold, hosts_threshold)
        self.ignore_sources = frozenset(ignore_sources)  # our own addresses: outbound is not a scan
        self.sources: OrderedDict[tuple[str, str], _Source] = OrderedDict()
        self.pending: dict[tuple[str, str], float] = {}  # alerted sources → last hit, until flushed
        self.evictions = 0

    def feed(self, records: Iterable[PacketRecord]) -> list[PortScan]:
        """``observe`` then ``flush``: the scans these records revealed, counted after the last one."""
        self.observe(records)
        return self.flush()

    def observe(self, records: Iterable[PacketRecord]) -> None:
        """Process records in order; a source crossing a threshold outside its cool-down becomes pending."""
        for rec in records:
            if rec.src_ip in self.ignore_sources or not is_scan_probe(rec):
                continue
            key = (rec.src_ip, rec.proto)
            src = self._source(key)
            src.expire(rec.ts - self.window_s)
            src.touch(rec.ts, rec.dst_ip, rec.dst_port, self.max_per_source)
            if key in self.pending:
                self.pending[key] = rec.ts
            elif rec.ts >= src.quiet_until and self._over(src):
                src.quiet_until = rec.ts + self.cooldown_s
                self.pending[key] = rec.ts

    def flush(self) -> list[PortScan]:
        """Pending scans summarised now, so an alert carries every port seen since it crossed the line."""
        pending, self.pending = self.pending, {}
        return [self._summary(key, last) for key, last in pending.items() if key in self.sources]

    def _over(self, src: _Source) -> bool:
        return len(src.ports) >= self.ports_threshold or len(src.hosts) >= self.hosts_threshold

    def _source(self, key: tuple[str, str]) -> _Source:
        """The tracker for ``key``, least-recently-seen sources evicted past ``max_sources``."""
        src = self.sources.get(key)
        if src is None:
            src = self.sources[key] = _Source()
            if len(self.sources) > self.max_sources:
                old, _ = self.sources.popitem(last=False)
                self.pending.pop(old, None)
                self.evictions += 1
        else:
            self.sources.move_to_end(key)
        return src

    def _summary(self, key: tuple[str, str], last: float) -> PortScan:
        src = self.sources[key]
        first = min(next(iter(t.values())) for t in (src.ports, src.hosts))
        return PortScan(source_ip=key[0], proto=key[1], distinct_ports=len(src.ports),
                        distinct_hosts=len(src.hosts), sample_ports=sorted(src.ports)[:MAX_SAMPLE_PORTS],
                        window_s=self.window_s, first_seen=first, last_seen=last)


class ArpSpoofDetector:
    """Learns IP → MAC from ARP; alerts when a known IP's MAC changes (always for the gateway)."""

    def __init__(self, *, gateways: dict[str, str | None] | None = None, known: dict[str, str] | None = None,
                 alert_all: bool = True, max_entries: int = 4096, cooldown_s: float = 300.0) -> None:
        self.gateways = frozenset(gateways or {})
        self.alert_all = alert_all
        self.max_entries = max_entries
        self.cooldown_s = cooldown_s
        # Seeded from the kernel's neighbour table so a spoof is caught even before we see real ARP.
        self.table: OrderedDict[str, str] = OrderedDict(list((known or {}).items())[:max_entries])
        self.table.update((ip, mac) for ip, mac in (gateways or {}).items() if mac)
        # A spoofer and the real owner answering in turn flip the MAC back and forth: one alert per pair.
        self.recent: OrderedDict[tuple[str, frozenset[str]], float] = OrderedDict()
        self.evictions = 0

    def feed(self, records: Iterable[PacketRecord]) -> list[ArpSpoof]:
        """Process ARP records in order; return the MAC changes worth an alert."""
        found: list[ArpSpoof] = []
        for rec in records:
            if rec.proto != "arp" or rec.arp_op not in (1, 2):
                continue
            if rec.src_ip in ("", "0.0.0.0") or rec.src_mac in ("", ZERO_MAC, BROADCAST_MAC):  # noqa: S104 - probe
                continue
            old = self._learn(rec.src_ip, rec.src_mac)
            if old is None or old == rec.src_mac:
                continue
            is_gateway = rec.src_ip in self.gateways
            if (is_gateway or self.alert_all) and self._fresh(rec.src_ip, old, rec.src_mac, rec.ts):
                found.append(ArpSpoof(ip=rec.src_ip, old_mac=old, new_mac=rec.src_mac,
                                      is_gateway=is_gateway, first_seen=rec.ts))
        return found

    def _learn(self, ip: str, mac: str) -> str | None:
        """Store ``mac`` for ``ip``; return the previous MAC. Gateways are never evicted."""
        old = self.table.get(ip)
        self.table[ip] = mac
        self.table.move_to_end(ip)
        while len(self.table) > self.max_entries:
            victim = next((k for k in self.table if k not in self.gateways), None)
            if victim is None:
                break
            del self.table[victim]
            self.evictions += 1
        return old

    def _fresh(self, ip: str, old: str, new: str, ts: float) -> bool:
        """False while the same (ip, {old, new}) change is inside its cool-down."""
        key = (ip, frozenset((old, new)))
        if ts < self.recent.get(key, float("-inf")):
            return False
        self.recent[key] = ts + self.cooldown_s
        self.recent.move_to_end(key)
        while len(self.recent) > self.max_entries:
            self.recent.popitem(last=False)
        return True
