"""Real packets: a SYN scan and forged ARP replies between two network namespaces we create.

Namespace A (10.200.0.1, the "gateway" and attacker) and B (10.200.0.2, the watched host) share a
veth pair on a private /30; nothing leaves them. The collector runs in B, scapy crafts in A.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agent.wire import Batch
from collector.ingest import schema

GW_IP, HOST_IP = "10.200.0.1", "10.200.0.2"
GW_MAC, HOST_MAC, EVIL_MAC = "02:00:00:c8:00:01", "02:00:00:c8:00:02", "de:ad:be:ef:00:01"
SCAN_PORTS = list(range(1000, 1030))

WATCHER = """
import json, sys, time, psutil
from agent.collectors.base import ListSink
from agent.collectors.netwatch import NetWatchCollector
rss_before = psutil.Process().memory_info().rss
c = NetWatchCollector(enabled=True, cooldown_s=300)
ok = c.start()
print(json.dumps({"ready": ok, "status": c.status, "interface": c.interface, "gateway": c.gateway,
                  "arp": dict(c.arp.table) if c.arp else {}, "bpf": bool(c.sniffer and c.sniffer.filtered_in_kernel)}),
      flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    time.sleep(1.0)  # let the capture thread queue what was just sent
    sink = ListSink()
    stats = c.run(sink)
    print(json.dumps({"items": [i.to_dict() for i in sink.items], "status": stats.status, "losses": c.losses,
                      "rss_before": rss_before, "rss": psutil.Process().memory_info().rss}), flush=True)
c.stop()
assert list(c.collect()) == [] and c.sniffer is None  # stopped stays stopped
import threading
print(json.dumps({"status": c.status, "threads": sorted(t.name for t in threading.enumerate())}), flush=True)
"""

SENDER = """
import sys
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.sendrecv import sendp
gw_ip, host_ip, gw_mac, host_mac, evil, kind = sys.argv[1:7]
if kind in ("scan", "synack"):
    flags = "S" if kind == "scan" else "SA"  # SYN-ACKs are answers to our own connects, not probes
    pkts = [Ether(src=gw_mac, dst=host_mac) / IP(src=gw_ip, dst=host_ip) / TCP(sport=40000, dport=p, flags=flags)
            for p in range(1000, 1030)]
elif kind == "scan6":
    pkts = [Ether(src=gw_mac, dst=host_mac) / IPv6(src="fd00:c8::1", dst="fd00:c8::2") / TCP(dport=p, flags="S")
            for p in range(2000, 2025)]
else:
    pkts = [Ether(src=evil, dst=host_mac) / ARP(op=2, psrc=gw_ip, hwsrc=evil, pdst=host_ip, hwdst=host_mac)] * 3
sendp(pkts, iface="va", verbose=False)
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair, B routing by default through A; always removed."""
    if shutil.which("ip") is None:
        pytest.skip("no `ip` binary (iproute2): cannot create network namespaces")
    a, b = f"khien-nw-a-{os.getpid()}", f"khien-nw-b-{os.getpid()}"
    try:
        ip("netns", "add", a)
    except (subprocess.CalledProcessError, PermissionError) as exc:
        print(f"SKIP: cannot create a network namespace: {getattr(exc, 'stderr', exc)}")
        pytest.skip(f"cannot create network namespaces: {getattr(exc, 'stderr', exc)}")
    try:
        ip("netns", "add", b)
        ip("-n", a, "link", "add", "va", "address", GW_MAC, "type", "veth", "peer", "name", "vb",
           "address", HOST_MAC, "netns", b)
        ip("-n", a, "addr", "add", f"{GW_IP}/30", "dev", "va")
        ip("-n", b, "addr", "add", f"{HOST_IP}/30", "dev", "vb")
        for ns, dev in ((a, "va"), (b, "vb"), (a, "lo"), (b, "lo")):
            ip("-n", ns, "link", "set", dev, "up")
        ip("-n", b, "route", "add", "default", "via", GW_IP)
        ip("-n", b, "neigh", "replace", GW_IP, "lladdr", GW_MAC, "dev", "vb", "nud", "permanent")
        ip("-n", a, "neigh", "replace", HOST_IP, "lladdr", HOST_MAC, "dev", "va", "nud", "permanent")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=10)


def send(ns: str, kind: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SENDER, GW_IP, HOST_IP, GW_MAC, HOST_MAC,
                    EVIL_MAC, kind],
                   check=True, timeout=60, capture_output=True)


class Watcher:
    """The collector running inside namespace B, driven line by line over stdin/stdout."""

    def __init__(self, ns: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", WATCHER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
        self.hello = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"watcher exited with {self.proc.wait(timeout=10)}"
        return json.loads(line)

    def collect(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.read()

    def quit(self) -> dict:
        """Stop the collector; its final report."""
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def watcher(namespaces: tuple[str, str]) -> Iterator[Watcher]:
    w = Watcher(namespaces[1])
    try:
        yield w
    finally:
        w.close()


def validated(items: list[dict]) -> list:
    return schema.parse_batch(json.dumps(Batch(items=items).to_dict()).encode()).items


def test_watch_starts_on_the_default_route_and_knows_the_gateway(watcher):
    hello = watcher.hello
    assert hello["ready"] is True and hello["status"] == "running"
    assert (hello["interface"], hello["gateway"]) == ("vb", GW_IP)
    assert hello["arp"] == {GW_IP: GW_MAC}  # from /proc/net/arp of the namespace, before any ARP traffic
    assert hello["bpf"] is True


def test_a_syn_scan_of_30_ports_is_exactly_one_portscan(namespaces, watcher):
    send(namespaces[0], "scan")
    first = watcher.collect()
    scans = [i for i in first["items"] if i["type"] == "net.portscan"]
    assert len(scans) == 1, first
    data = scans[0]["data"]
    assert (data["source_ip"], data["proto"], data["interface"]) == (GW_IP, "tcp", "vb")
    assert (data["distinct_ports"], data["distinct_hosts"], data["sample_ports"]) == (30, 1, SCAN_PORTS)
    assert data["first_seen"] <= data["last_seen"]
    [item] = validated(scans)
    assert item.data.distinct_ports == 30
    send(namespaces[0], "scan")  # the same scan again inside the cool-down: no second event
    again = watcher.collect()
    assert [i for i in again["items"] if i["type"] == "net.portscan"] == []
    assert again["losses"]["queue_full"] == 0
    print(f"RSS with scapy and the sniffer running: {again['rss'] / 2**20:.1f} MiB "
          f"(before start: {again['rss_before'] / 2**20:.1f} MiB)")


def test_forged_arp_replies_for_the_gateway_are_one_arp_spoof(namespaces, watcher):
    send(namespaces[0], "arp")
    time.sleep(0.2)
    send(namespaces[0], "arp")
    result = watcher.collect()
    spoofs = [i for i in result["items"] if i["type"] == "net.arp_spoof"]
    assert len(spoofs) == 1, result
    data = spoofs[0]["data"]
    assert (data["ip"], data["old_mac"], data["new_mac"]) == (GW_IP, GW_MAC, EVIL_MAC)
    assert (data["is_gateway"], data["interface"]) == (True, "vb")
    assert [i for i in result["items"] if i["type"] == "net.portscan"] == []
    [item] = validated(spoofs)
    assert item.data.is_gateway is True and item.data.first_seen.tzinfo is not None


def test_syn_acks_are_no_scan_and_stop_leaves_no_threads(namespaces, watcher):
    send(namespaces[0], "synack")
    assert watcher.collect()["items"] == []
    final = watcher.quit()
    assert final["status"] == "stopped" and final["threads"] == ["MainThread"]


def test_an_ipv6_syn_scan_is_seen_too(namespaces, watcher):
    send(namespaces[0], "scan6")
    [item] = watcher.collect()["items"]
    assert item["type"] == "net.portscan"
    assert (item["data"]["source_ip"], item["data"]["distinct_ports"]) == ("fd00:c8::1", 25)
    assert str(validated([item])[0].data.source_ip) == "fd00:c8::1"
