"""NetWatchCollector without packets: optional-module behaviour, field lists and wire validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from agent.collectors.base import ListSink
from agent.collectors.netwatch import NetWatchCollector
from agent.collectors.netwatch.detect import ArpSpoof, PortScan
from agent.wire import Batch
from collector.errors import InvalidInput
from collector.ingest import schema
from collector.ingest.items.net import ITEM_MODELS


def run_python(code: str, timeout: float = 60, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout, cwd=os.getcwd(), check=False, env=os.environ | env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBE = """
    import json, os, sys
    from agent.collectors.base import ListSink
    from agent.collectors.netwatch import NetWatchCollector
    if os.environ.get("NW_DROP_PRIVILEGES"):  # after the imports: this Python lives under /root (0700)
        os.setgid(65534)
        os.setuid(65534)
    c = NetWatchCollector(enabled=True)
    sink = ListSink()
    stats = c.run(sink)
    print(json.dumps({"state": c.state, "status": c.status, "items": len(sink.items), "errors": stats.errors,
                      "stats_status": stats.status, "scapy": "scapy.sendrecv" in sys.modules}))
"""


def validate(items: list[dict]) -> schema.BatchIn:
    return schema.parse_batch(json.dumps(Batch(items=items).to_dict()).encode())


def test_declared_fields_match_the_validators():
    assert set(NetWatchCollector.fields) == set(ITEM_MODELS)
    for item_type, names in NetWatchCollector.fields.items():
        assert names == tuple(ITEM_MODELS[item_type].model_fields), item_type


def test_disabled_by_default_yields_nothing_and_says_why():
    collector, sink = NetWatchCollector(), ListSink()
    stats = collector.run(sink)
    assert sink.items == [] and stats.errors == 0
    assert collector.state == "disabled" and collector.reason == "not enabled in config"
    assert stats.status == collector.status == "disabled: not enabled in config"
    assert collector.start() is False


@pytest.mark.parametrize("bad", [{"ports_threshold": 0}, {"window_s": 0}, {"window_s": 1e6}, {"cooldown_s": -1},
                                 {"queue_max": 0}])
def test_bad_options_are_refused_at_construction(bad):
    with pytest.raises(ValueError, match="netwatch"):
        NetWatchCollector(**bad)


def test_importing_the_agent_never_imports_scapy():
    result = run_python("""
        import json, sys
        import agent.cli, agent.runner, agent.collectors.netwatch, agent.collectors.netwatch.sniffer
        print(json.dumps({"scapy": sorted(m for m in sys.modules if m.startswith("scapy"))}))
    """)
    assert result["scapy"] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to contrast with the missing-scapy case")
def test_without_scapy_the_watch_is_disabled_with_the_reason():
    result = run_python("import sys; sys.modules['scapy'] = None\n" + textwrap.dedent(PROBE))
    assert result["state"] == "disabled" and result["status"] == "disabled: scapy not installed"
    assert result["stats_status"] == result["status"] and result["items"] == 0 and result["errors"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="setuid to nobody needs root")
def test_without_privileges_the_watch_is_disabled_before_scapy_is_loaded():
    result = run_python(PROBE, NW_DROP_PRIVILEGES="1")
    assert result["status"] == "disabled: needs root or CAP_NET_RAW"
    assert result["stats_status"] == result["status"] and result["items"] == 0 and result["errors"] == 0
    assert result["scapy"] is False  # never paid for scapy's memory when it could not run anyway


def test_no_default_route_fails_cleanly_and_is_retried(tmp_path, monkeypatch):
    monkeypatch.setattr("agent.collectors.netwatch.collector.privilege_problem", lambda proc: None)
    collector = NetWatchCollector(enabled=True, proc=tmp_path)  # an empty /proc: no route table
    assert collector.run(ListSink()).status == "failed: no default route; set interface"
    assert collector.sniffer is None and collector.pump is None


def test_a_missing_interface_fails_cleanly():
    if os.geteuid() != 0:
        pytest.skip("needs root to get as far as opening the socket")
    collector = NetWatchCollector(enabled=True, interface="nw-nosuch0")
    assert collector.start() is False
    assert collector.state == "failed" and "nw-nosuch0" in collector.reason
    stats = collector.run(ListSink())  # retried on every run: the interface may appear later
    assert stats.status == "failed: no such interface: nw-nosuch0" and stats.errors == 0
    collector.stop()
    assert collector.state == "failed" and list(collector.collect()) == []


def test_emitted_items_pass_the_collector_validators():
    collector = NetWatchCollector(interface="eth0")
    scan = PortScan(source_ip="192.0.2.9", proto="tcp", distinct_ports=65535, distinct_hosts=1,
                    sample_ports=list(range(50)), window_s=60.0, first_seen=1.7e9, last_seen=1.7e9 + 3)
    spoof = ArpSpoof(ip="10.0.0.1", old_mac="02:00:00:00:00:01", new_mac="de:ad:be:ef:00:01", is_gateway=True,
                     first_seen=1.7e9)
    items = [collector._scan_item(scan).to_dict(), collector._spoof_item(spoof).to_dict()]
    batch = validate(items)
    assert str(batch.items[0].data.source_ip) == "192.0.2.9" and batch.items[1].data.is_gateway is True
    assert batch.items[0].data.first_seen.tzinfo is not None


@pytest.mark.parametrize(("field", "value"), [
    ("source_ip", "not-an-ip"), ("sample_ports", list(range(51))), ("proto", "icmp"), ("interface", "x" * 65),
    ("first_seen", "2026-01-01T00:00:00"), ("extra", 1),
])
def test_the_validators_refuse_bad_portscans(field, value):
    data = {"source_ip": "192.0.2.9", "distinct_ports": 30, "distinct_hosts": 1, "sample_ports": [1],
            "proto": "tcp", "window_s": 60.0, "first_seen": "2026-01-01T00:00:00+00:00",
            "last_seen": "2026-01-01T00:00:01+00:00", "interface": "eth0"}
    item = {"type": "net.portscan", "ts": "2026-01-01T00:00:01+00:00", "data": data | {field: value}}
    with pytest.raises(InvalidInput, match=field):
        validate([item])


@pytest.mark.parametrize(("field", "value"), [("old_mac", "02:00:00:00:00:0G"), ("new_mac", "DE:AD:BE:EF:00:01"),
                                              ("ip", "::1"), ("is_gateway", "maybe")])
def test_the_validators_refuse_bad_arp_spoofs(field, value):
    data = {"ip": "10.0.0.1", "old_mac": "02:00:00:00:00:01", "new_mac": "de:ad:be:ef:00:01",
            "is_gateway": True, "interface": "eth0", "first_seen": "2026-01-01T00:00:00+00:00"}
    item = {"type": "net.arp_spoof", "ts": "2026-01-01T00:00:01+00:00", "data": data | {field: value}}
    with pytest.raises(InvalidInput, match=field):
        validate([item])


def test_to_record_and_the_bounded_queue_with_real_scapy_packets():
    # scapy is the optional `packets` extra, installed with `dev`: a missing one must fail, not skip.
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    from agent.collectors.netwatch.sniffer import Sniffer, load_scapy, to_record
    layers = load_scapy()
    syn = Ether() / IP(src="192.0.2.9", dst="10.0.0.2") / TCP(sport=4444, dport=22, flags="S")
    rec = to_record(syn, layers)
    assert (rec.proto, rec.src_ip, rec.dst_ip, rec.src_port, rec.dst_port, rec.flags) == (
        "tcp", "192.0.2.9", "10.0.0.2", 4444, 22, "S")
    rec = to_record(Ether() / ARP(op=2, psrc="10.0.0.1", hwsrc="DE:AD:BE:EF:00:01"), layers)
    assert (rec.proto, rec.arp_op, rec.src_ip, rec.src_mac) == ("arp", 2, "10.0.0.1", "de:ad:be:ef:00:01")
    assert to_record(Ether() / IP() / UDP(sport=53, dport=5000), layers).proto == "udp"
    assert to_record(Ether() / IP() / ICMP(), layers) is None
    sniffer = Sniffer("lo", queue_max=2)
    sniffer._scapy = layers
    for _ in range(5):
        sniffer._on_packet(syn)
    assert sniffer.dropped == 3 and len(sniffer.drain()) == 2 and sniffer.drain() == []


def test_the_pump_feeds_detectors_and_hands_over_each_detection_once():
    from agent.collectors.netwatch.detect import ArpSpoofDetector, PacketRecord, PortScanDetector
    from agent.collectors.netwatch.pump import Pump
    from agent.collectors.netwatch.sniffer import Sniffer

    sniffer = Sniffer("lo")  # never started: records are queued by hand
    pump = Pump(sniffer, PortScanDetector(), ArpSpoofDetector(gateways={"10.0.0.1": "02:00:00:00:00:01"}))
    for port in range(25):
        sniffer.queue.put(PacketRecord(ts=1.0, proto="tcp", src_ip="192.0.2.9", dst_ip="10.0.0.2",
                                       dst_port=port, flags="S"))
    sniffer.queue.put(PacketRecord(ts=2.0, proto="arp", src_ip="10.0.0.1", arp_op=2, src_mac="de:ad:be:ef:00:01"))
    pump.start()
    scans, spoofs = pump.take()
    pump.stop()
    assert [s.distinct_ports for s in scans] == [25] and [s.new_mac for s in spoofs] == ["de:ad:be:ef:00:01"]
    assert pump.take() == ([], []) and not pump.alive


FILTER_CASES = {  # frame → bytes the filter keeps (None: dropped)
    "arp": 42, "ipv4-syn-with-payload": 128, "ipv4-synack": None, "ipv4-ack": None, "ipv4-udp": 42,
    "ipv4-icmp": None, "ipv4-later-fragment": None, "ipv6-syn": 74, "ipv6-ack": None, "ipv6-udp": 62,
}


def frame(name: str) -> bytes:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether

    return bytes({
        "arp": lambda: Ether() / ARP(), "ipv4-syn-with-payload": lambda: Ether() / IP() / TCP(flags="S") / ("x" * 500),
        "ipv4-synack": lambda: Ether() / IP() / TCP(flags="SA"), "ipv4-ack": lambda: Ether() / IP() / TCP(flags="A"),
        "ipv4-udp": lambda: Ether() / IP() / UDP(), "ipv4-icmp": lambda: Ether() / IP() / ICMP(),
        "ipv4-later-fragment": lambda: Ether() / IP(frag=5) / TCP(flags="S"),
        "ipv6-syn": lambda: Ether() / IPv6() / TCP(flags="S"), "ipv6-ack": lambda: Ether() / IPv6() / TCP(flags="A"),
        "ipv6-udp": lambda: Ether() / IPv6() / UDP(),
    }[name]())


@pytest.mark.parametrize(("name", "kept"), FILTER_CASES.items())
def test_the_kernel_filter_keeps_only_probes_and_arp_truncated(name, kept):
    """The hand-assembled BPF runs for real: attached to a Unix datagram socket, it sees raw bytes."""
    import socket

    from agent.collectors.netwatch.sniffer import attach_bpf
    tx, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with tx, rx:
        attach_bpf(rx)
        rx.setblocking(False)
        tx.send(frame(name))
        try:
            got: int | None = len(rx.recv(4096))
        except BlockingIOError:
            got = None
    assert got == kept
