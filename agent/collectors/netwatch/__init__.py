"""Network watch (port scans, ARP spoofing). Importing this package never imports scapy."""

from __future__ import annotations

from agent.collectors.netwatch.collector import ARP_SPOOF_FIELDS, PORTSCAN_FIELDS, NetWatchCollector

__all__ = ["ARP_SPOOF_FIELDS", "PORTSCAN_FIELDS", "NetWatchCollector"]
