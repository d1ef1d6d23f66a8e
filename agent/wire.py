"""The batch envelope the agent sends (DESIGN.md §4): stdlib only, shared by sender and tests.

A batch is ``{"schema": 1, "batch_id": uuid4, "agent_time": iso8601, "items": [...]}`` gzip-encoded;
each item is ``{"type": "<domain>.<action>", "ts": iso8601, "data": {...}}``. The collector's
validators (collector/ingest/schema.py) are the authority; tests/contract checks that what the agent
builds passes them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

# Inventory is sent as sections; every section is a list of rows (single-row sections too), so the
# collector diffs them all the same way. Order is the order a host page shows them in.
INVENTORY_SECTIONS: tuple[str, ...] = (
    "identity",
    "os",
    "hardware",
    "interfaces",
    "listening_ports",
    "users",
    "groups",
    "services",
    "packages",
)

# Field lists per inventory section: what each row may carry. Collectors declare the same lists
# next to their code; tests/contract checks both against the collector's validators.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "identity": ("hostname", "machine_id", "product_uuid", "macs"),
    "os": (
        "platform", "id", "id_like", "name", "pretty_name", "version", "version_id", "codename",
        "kernel", "arch", "hostname", "boot_time",
    ),
    "hardware": (
        "cpu_model", "cpu_cores", "cpu_threads", "ram_bytes", "swap_bytes", "disks", "vendor",
        "product_name", "product_serial", "board_serial", "virtualization",
    ),
    "interfaces": ("name", "mac", "addresses", "is_up", "mtu"),
    "listening_ports": ("proto", "family", "address", "port", "pid", "process"),
    "users": (
        "name", "uid", "gid", "gecos", "home", "shell", "password_status", "last_change_days",
        "min_days", "max_days", "warn_days", "inactive_days", "expire_days",
    ),
    "groups": ("name", "gid", "members"),
    "services": ("name", "enabled", "active", "description"),
    "packages": ("name", "version", "arch", "source", "source_version", "manager"),
}

ITEM_TYPES: frozenset[str] = frozenset({
    "host.heartbeat", "inventory.snapshot", "agent.error",
    "patch.status", "facts.snapshot",
    "auth.failure", "auth.success", "auth.sudo", "auth.su", "account.change",
    "file.change",
    "net.portscan", "net.arp_spoof",
})

HEARTBEAT_FIELDS: tuple[str, ...] = (
    "agent_version", "agent_uptime_s", "host_uptime_s", "spool_items", "spool_bytes", "dropped",
    "dead_letters", "rss_bytes", "cpu_percent", "collectors", "platform", "budget",
)


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a Z-free explicit offset."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def section_hash(rows: list[dict[str, Any]]) -> str:
    """Content hash of an inventory section: sha256 over canonical JSON, independent of row order."""
    canon = sorted(json.dumps(r, sort_keys=True, separators=(",", ":")) for r in rows)
    return hashlib.sha256("\n".join(canon).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Item:
    """One thing the agent reports."""

    type: str
    data: dict[str, Any]
    ts: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "ts": self.ts, "data": self.data}


@dataclass(slots=True)
class Batch:
    """A group of items sent in one request; ``batch_id`` makes the send idempotent."""

    items: list[dict[str, Any]]
    batch_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    agent_time: str = field(default_factory=utc_now)
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"items": self.items}

    def encode(self) -> bytes:
        """gzip-compressed JSON body, as sent on the wire."""
        raw = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
        return gzip.compress(raw, compresslevel=6)
