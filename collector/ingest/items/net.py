"""Validators for the network watch items: ``net.portscan`` and ``net.arp_spoof``."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, IPvAnyAddress

from collector.ingest.fields import Count, Mac, Port, Strict

Interface = Annotated[str, Field(min_length=1, max_length=64)]


class PortScan(Strict):
    source_ip: IPvAnyAddress
    distinct_ports: Count
    distinct_hosts: Count
    sample_ports: Annotated[list[Port], Field(max_length=50)] = []
    proto: Literal["tcp", "udp"]
    window_s: float = Field(gt=0, le=86_400)
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    interface: Interface | None = None


class ArpSpoof(Strict):
    ip: IPv4Address  # ARP resolves IPv4 only
    old_mac: Mac
    new_mac: Mac
    is_gateway: bool
    interface: Interface | None = None
    first_seen: AwareDatetime


ITEM_MODELS: dict[str, type[BaseModel]] = {"net.portscan": PortScan, "net.arp_spoof": ArpSpoof}
