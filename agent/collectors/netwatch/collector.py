"""The ``netwatch`` collector: sniffer thread → detectors → ``net.portscan`` / ``net.arp_spoof`` items.

Optional by design (scapy is the ``packets`` extra and raw sockets need root or CAP_NET_RAW): when
it cannot run it says why in ``state``/``reason``/``status`` and in its heartbeat status, and
``collect()`` yields nothing — it never raises for a missing prerequisite.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import psutil

from agent.collectors.base import Collector, CollectorStats, Sink, current_platform
from agent.collectors.netwatch.detect import ArpSpoof, ArpSpoofDetector, PortScan, PortScanDetector
from agent.collectors.netwatch.pump import Pump
from agent.collectors.netwatch.routes import arp_table, default_route
from agent.collectors.netwatch.sniffer import ScapyUnavailable, Sniffer, privilege_problem
from agent.wire import Item

PORTSCAN_FIELDS = ("source_ip", "distinct_ports", "distinct_hosts", "sample_ports", "proto", "window_s",
                   "first_seen", "last_seen", "interface")
ARP_SPOOF_FIELDS = ("ip", "old_mac", "new_mac", "is_gateway", "interface", "first_seen")
MAX_STATUS = 256


def iso(ts: float) -> str:
    """Capture timestamp as aware ISO 8601 (UTC)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def local_addresses() -> set[str]:
    """Every IP address on this host (IPv6 without its ``%zone``): packets from them are ours, never a scan."""
    families = (socket.AF_INET, socket.AF_INET6)
    return {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family in families}


class NetWatchCollector(Collector):
    """Port-scan and ARP-spoof watch on one interface (default: the default route's)."""

    name = "netwatch"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"net.portscan": PORTSCAN_FIELDS,
                                                    "net.arp_spoof": ARP_SPOOF_FIELDS}

    def __init__(self, *, enabled: bool = False, interface: str | None = None, ports_threshold: int = 20,
                 hosts_threshold: int = 10, window_s: float = 60.0, cooldown_s: float = 300.0,
                 max_sources: int = 4096, arp_alert_all: bool = True, max_arp_entries: int = 4096,
                 queue_max: int = 20_000, promisc: bool = False, proc: Path = Path("/proc")) -> None:
        super().__init__()
        if min(ports_threshold, hosts_threshold, max_sources, max_arp_entries, queue_max) < 1 or not (
                0 < window_s <= 86_400) or cooldown_s < 0:
            raise ValueError("netwatch: thresholds and sizes must be >= 1, window_s in (0, 86400], cooldown_s >= 0")
        self.enabled = enabled
        self.interface = interface
        self.scan_options = {"ports_threshold": ports_threshold, "hosts_threshold": hosts_threshold,
                             "window_s": window_s, "cooldown_s": cooldown_s, "max_sources": max_sources}
        self.arp_options = {"alert_all": arp_alert_all, "max_entries": max_arp_entries, "cooldown_s": cooldown_s}
        self.queue_max = queue_max
        self.promisc = promisc
        self.proc = proc
        self.sniffer: Sniffer | None = None
        self.pump: Pump | None = None
        self._auto_start = True  # the first run starts the threads, so the runner need not call start()
        self.scans: PortScanDetector | None = None
        self.arp: ArpSpoofDetector | None = None
        self.gateway: str | None = None
        self.state = "stopped" if enabled else "disabled"  # stopped | running | disabled | failed
        self.reason: str | None = None if enabled else "not enabled in config"

    @property
    def status(self) -> str:
        """``running``, ``stopped``, or ``disabled: <why>`` / ``failed: <why>`` for the heartbeat."""
        return f"{self.state}: {self.reason}"[:MAX_STATUS] if self.reason else self.state

    @property
    def losses(self) -> dict[str, int]:
        """Loss counters by reason (queue overflow, evicted trackers), for the heartbeat."""
        s, d, a, p = self.sniffer, self.scans, self.arp, self.pump
        return {"queue_full": s.dropped if s else 0, "malformed": s.malformed if s else 0,
                "scan_sources_evicted": d.evictions if d else 0, "arp_entries_evicted": a.evictions if a else 0,
                "arp_alerts_dropped": p.spoofs_dropped if p else 0}

    def start(self) -> bool:
        """Check prerequisites and start the sniffer thread; False (with ``reason``) when it cannot run."""
        if self.state == "running":
            return True
        if not self.enabled:
            return False
        self._auto_start = True
        problem = self._prerequisite_problem()
        if problem:
            return self._give_up("disabled", problem)
        route = default_route(self.proc)
        interface = self.interface or (route.interface if route else None)
        if interface is None:
            return self._give_up("failed", "no default route; set interface")  # may appear later: retried
        try:
            socket.if_nametoindex(interface)
        except OSError:
            return self._give_up("failed", f"no such interface: {interface}")
        gateway = route.gateway if route and route.interface == interface else None
        self._make_detectors(interface, gateway)
        sniffer = Sniffer(interface, queue_max=self.queue_max, promisc=self.promisc)
        try:
            sniffer.start()  # before the pump: a missing scapy must leave no thread behind
        except ScapyUnavailable as exc:
            return self._give_up("disabled", str(exc))
        except (OSError, ValueError) as exc:  # interface vanished, socket refused...
            sniffer.stop()
            return self._give_up("failed", f"capture on {interface}: {exc}")
        self.pump = Pump(sniffer, self.scans, self.arp)
        self.pump.start()
        self.sniffer, self.interface, self.gateway = sniffer, interface, gateway
        self.state, self.reason = "running", None
        return True

    def stop(self) -> None:
        """Stop the sniffer and pump threads; only an explicit ``start()`` starts them again."""
        self._teardown()
        self._auto_start = False
        if self.state == "running":
            self.state = "stopped"

    def collect(self) -> Iterator[Item]:
        """Hand over the detections made since the last run; nothing at all when not running."""
        if self.enabled and self._auto_start and self.state in ("stopped", "failed"):
            self._teardown()
            self.start()  # first run, or a retry: the interface may come up after the agent
        if self.state != "running" or self.sniffer is None or self.pump is None:
            return
        scans, spoofs = self.pump.take()
        for scan in scans:
            yield self._scan_item(scan)
        for spoof in spoofs:
            yield self._spoof_item(spoof)
        if not self.sniffer.running or not self.pump.alive:
            self.state, self.reason = "failed", self.sniffer.error or "capture thread stopped"
            self._teardown()

    def run(self, sink: Sink) -> CollectorStats:
        """As the base, but a disabled or failed watch shows its reason as the heartbeat status."""
        stats = super().run(sink)
        if stats.status == "ok" and self.state != "running":
            stats.status = self.status
        return stats

    def _prerequisite_problem(self) -> str | None:
        if current_platform() not in self.platforms:
            return f"unsupported on this platform ({current_platform()})"
        return privilege_problem(self.proc)  # checked before scapy so an unprivileged agent never loads it

    def _make_detectors(self, interface: str, gateway: str | None) -> None:
        known = arp_table(self.proc, interface)
        gateways = {gateway: known.get(gateway)} if gateway else {}
        self.scans = PortScanDetector(**self.scan_options, ignore_sources=local_addresses())
        self.arp = ArpSpoofDetector(gateways=gateways, known=known, **self.arp_options)

    def _teardown(self) -> None:
        if self.sniffer is not None:
            self.sniffer.stop()
            self.sniffer = None
        if self.pump is not None:
            self.pump.stop()
            self.pump = None

    def _give_up(self, state: str, reason: str) -> bool:
        self.state, self.reason = state, reason
        return False

    def _scan_item(self, scan: PortScan) -> Item:
        return Item("net.portscan", {
            "source_ip": scan.source_ip, "distinct_ports": scan.distinct_ports,
            "distinct_hosts": scan.distinct_hosts, "sample_ports": scan.sample_ports, "proto": scan.proto,
            "window_s": scan.window_s, "first_seen": iso(scan.first_seen), "last_seen": iso(scan.last_seen),
            "interface": self.interface})

    def _spoof_item(self, spoof: ArpSpoof) -> Item:
        return Item("net.arp_spoof", {
            "ip": spoof.ip, "old_mac": spoof.old_mac, "new_mac": spoof.new_mac, "is_gateway": spoof.is_gateway,
            "interface": self.interface, "first_seen": iso(spoof.first_seen)})
