"""Port-scan and ARP-spoof detection on synthetic packet records (no capture, no scapy)."""

from __future__ import annotations

from agent.collectors.netwatch.detect import ArpSpoofDetector, PacketRecord, PortScanDetector
from agent.collectors.netwatch.routes import arp_table, default_route, normalize_mac

GW, GW_MAC, EVIL = "10.0.0.1", "02:00:00:00:00:01", "de:ad:be:ef:00:01"


def syn(src: str, dst: str, port: int, ts: float, flags: str = "S") -> PacketRecord:
    return PacketRecord(ts=ts, proto="tcp", src_ip=src, dst_ip=dst, src_port=40000, dst_port=port, flags=flags)


def udp(src: str, dst: str, port: int, ts: float, sport: int = 40000) -> PacketRecord:
    return PacketRecord(ts=ts, proto="udp", src_ip=src, dst_ip=dst, src_port=sport, dst_port=port)


def arp(ip: str, mac: str, ts: float, op: int = 2) -> PacketRecord:
    return PacketRecord(ts=ts, proto="arp", src_ip=ip, dst_ip="10.0.0.2", arp_op=op, src_mac=mac)


def test_many_ports_from_one_source_is_one_scan_counted_at_the_end_of_the_drain():
    det = PortScanDetector()
    found = det.feed(syn("192.0.2.9", "10.0.0.2", 1000 + i, 100.0 + i / 10) for i in range(30))
    assert len(found) == 1
    scan = found[0]
    assert (scan.source_ip, scan.proto, scan.distinct_ports, scan.distinct_hosts) == ("192.0.2.9", "tcp", 30, 1)
    assert scan.sample_ports == list(range(1000, 1030))
    assert (scan.first_seen, scan.last_seen, scan.window_s) == (100.0, 102.9, 60.0)


def test_many_hosts_on_one_port_is_a_sweep():
    det = PortScanDetector(hosts_threshold=10)
    found = det.feed(syn("192.0.2.9", f"10.0.0.{i}", 22, 10.0 + i) for i in range(12))
    assert [(s.distinct_hosts, s.distinct_ports) for s in found] == [(12, 1)]


def test_udp_probes_count_but_service_replies_and_acks_do_not():
    det = PortScanDetector()
    assert len(det.feed(udp("192.0.2.9", "10.0.0.2", p, 1.0) for p in range(100, 125))) == 1
    # A DNS server answering on our random ephemeral ports, and established TCP traffic: not scans.
    assert det.feed(udp("9.9.9.9", "10.0.0.2", p, 2.0, sport=53) for p in range(40000, 40100)) == []
    assert det.feed(syn("192.0.2.8", "10.0.0.2", p, 3.0, flags="SA") for p in range(100)) == []
    assert det.feed(syn("192.0.2.8", "10.0.0.2", p, 3.0, flags="A") for p in range(100)) == []


def test_below_threshold_or_spread_over_the_window_is_no_scan():
    det = PortScanDetector(ports_threshold=20, window_s=60)
    assert det.feed(syn("192.0.2.9", "10.0.0.2", p, 1.0) for p in range(19)) == []
    slow = PortScanDetector(ports_threshold=20, window_s=60)
    assert slow.feed(syn("192.0.2.9", "10.0.0.2", p, p * 10.0) for p in range(40)) == []


def test_outbound_traffic_from_our_own_addresses_is_ignored():
    det = PortScanDetector(ignore_sources={"10.0.0.2"})
    assert det.feed(syn("10.0.0.2", "192.0.2.9", p, 1.0) for p in range(100)) == []


def test_one_alert_per_cooldown_then_again_after_it():
    det = PortScanDetector(window_s=60, cooldown_s=300)
    assert len(det.feed(syn("192.0.2.9", "10.0.0.2", p, 1.0) for p in range(30))) == 1
    assert det.feed(syn("192.0.2.9", "10.0.0.2", p, 100.0) for p in range(30, 90)) == []
    again = det.feed(syn("192.0.2.9", "10.0.0.2", p, 400.0) for p in range(30))
    assert [s.distinct_ports for s in again] == [30]  # the old hits aged out of the window


def test_tracked_sources_are_capped_and_evictions_counted():
    det = PortScanDetector(max_sources=100)
    det.feed(syn(f"198.51.100.{i % 250}", "10.0.0.2", 80, float(i)) for i in range(250))
    assert len(det.sources) == 100 and det.evictions == 150
    assert ("198.51.100.249", "tcp") in det.sources and ("198.51.100.0", "tcp") not in det.sources


def test_per_source_memory_is_capped_during_a_full_sweep():
    det = PortScanDetector(max_per_source=1024)
    [scan] = det.feed(syn("192.0.2.9", "10.0.0.2", p, 1.0) for p in range(65536))
    assert scan.distinct_ports == 1024 and len(scan.sample_ports) == 50


def test_gateway_mac_change_alerts_once_even_when_the_real_owner_answers_back():
    det = ArpSpoofDetector(gateways={GW: GW_MAC}, alert_all=False)
    found = det.feed([arp(GW, GW_MAC, 1.0), arp(GW, EVIL, 2.0), arp(GW, EVIL, 3.0), arp(GW, GW_MAC, 4.0),
                      arp(GW, EVIL, 5.0)])
    assert [(s.ip, s.old_mac, s.new_mac, s.is_gateway, s.first_seen) for s in found] == [
        (GW, GW_MAC, EVIL, True, 2.0)]


def test_first_sighting_is_learned_not_alerted():
    det = ArpSpoofDetector(gateways={GW: None})
    assert det.feed([arp(GW, GW_MAC, 1.0, op=1), arp("10.0.0.7", "02:00:00:00:00:07", 1.0)]) == []
    assert det.table[GW] == GW_MAC
    [spoof] = det.feed([arp(GW, EVIL, 2.0)])
    assert spoof.is_gateway and spoof.old_mac == GW_MAC


def test_non_gateway_change_alerts_only_when_configured():
    other, new = "10.0.0.7", "02:00:00:00:00:08"
    quiet = ArpSpoofDetector(gateways={GW: GW_MAC}, alert_all=False)
    assert quiet.feed([arp(other, "02:00:00:00:00:07", 1.0), arp(other, new, 2.0)]) == []
    loud = ArpSpoofDetector(gateways={GW: GW_MAC}, alert_all=True)
    [spoof] = loud.feed([arp(other, "02:00:00:00:00:07", 1.0), arp(other, new, 2.0)])
    assert (spoof.ip, spoof.new_mac, spoof.is_gateway) == (other, new, False)


def test_neighbours_known_at_start_are_watched_from_the_first_packet():
    det = ArpSpoofDetector(gateways={GW: GW_MAC}, known={"10.0.0.7": "02:00:00:00:00:07", GW: "stale"})
    assert det.table[GW] == GW_MAC  # the gateway's own entry wins
    [spoof] = det.feed([arp("10.0.0.7", EVIL, 1.0)])
    assert (spoof.old_mac, spoof.is_gateway) == ("02:00:00:00:00:07", False)


def test_probes_and_bogus_macs_are_ignored_and_the_table_is_bounded():
    det = ArpSpoofDetector(gateways={GW: GW_MAC}, max_entries=10)
    assert det.feed([arp("0.0.0.0", EVIL, 1.0), arp(GW, "00:00:00:00:00:00", 1.0),
                     arp(GW, "ff:ff:ff:ff:ff:ff", 1.0)]) == []
    det.feed(arp(f"10.1.0.{i}", f"02:00:00:01:00:{i:02x}", 2.0) for i in range(50))
    assert len(det.table) == 10 and det.evictions == 41 and det.table[GW] == GW_MAC  # gateway kept


def test_proc_net_parsing(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net/route").write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    (tmp_path / "net/arp").write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.0.2.1        0x1         0x2         02:FC:00:00:00:05     *        eth0\n"
        "192.0.2.7        0x1         0x0         00:00:00:00:00:00     *        eth0\n")
    route = default_route(tmp_path)
    assert (route.interface, route.gateway) == ("eth0", "192.0.2.1")  # lowest metric wins
    assert arp_table(tmp_path) == {"192.0.2.1": "02:fc:00:00:00:05"}  # incomplete entries skipped
    assert arp_table(tmp_path, "eth0") == arp_table(tmp_path) and arp_table(tmp_path, "wlan0") == {}
    assert default_route(tmp_path / "missing") is None and arp_table(tmp_path / "missing") == {}
    assert normalize_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff" and normalize_mac("zz") is None
