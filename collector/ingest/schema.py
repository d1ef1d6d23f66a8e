"""Validators for what agents send (DESIGN.md §4). Everything here is hostile input until it passes.

Unknown fields are rejected, every string and list is length-capped, and item types form a closed,
discriminated set. ``agent/wire.py`` mirrors the field lists; tests/contract keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, ValidationError, create_model

from collector.errors import InvalidInput
from collector.ingest.fields import Count, Hash, Mac, Name, Port, Str, Strict, Text
from collector.ingest.items import item_models

SCHEMA_VERSION = 1


# --- inventory rows -------------------------------------------------------------------------------

class IdentityRow(Strict):
    hostname: Name
    machine_id: Str | None = None
    product_uuid: Str | None = None
    macs: Annotated[list[Mac], Field(max_length=64)] = []


class OsRow(Strict):
    platform: Str | None = None
    id: Str | None = None
    id_like: Str | None = None
    name: Str | None = None
    pretty_name: Str | None = None
    version: Str | None = None
    version_id: Str | None = None
    codename: Str | None = None
    kernel: Str | None = None
    arch: Str | None = None
    hostname: Str | None = None
    boot_time: AwareDatetime | None = None


class Disk(Strict):
    device: Str
    mountpoint: Str
    fstype: Str | None = None
    total_bytes: Count | None = None
    used_bytes: Count | None = None


class HardwareRow(Strict):
    cpu_model: Str | None = None
    cpu_cores: Count | None = None
    cpu_threads: Count | None = None
    ram_bytes: Count | None = None
    swap_bytes: Count | None = None
    disks: Annotated[list[Disk], Field(max_length=256)] = []
    vendor: Str | None = None
    product_name: Str | None = None
    product_serial: Str | None = None
    board_serial: Str | None = None
    virtualization: Str | None = None


class Address(Strict):
    family: Literal["ipv4", "ipv6"]
    address: Str
    netmask: Str | None = None


class InterfaceRow(Strict):
    name: Name
    mac: Mac | None = None
    addresses: Annotated[list[Address], Field(max_length=256)] = []
    is_up: bool | None = None
    mtu: Count | None = None


class PortRow(Strict):
    proto: Literal["tcp", "udp"]
    family: Literal["ipv4", "ipv6"]
    address: Str
    port: Port
    pid: Count | None = None
    process: Str | None = None


class UserRow(Strict):
    name: Name
    uid: Count
    gid: Count
    gecos: Str | None = None
    home: Str | None = None
    shell: Str | None = None
    # Never the hash itself: only whether a usable password is set.
    password_status: Literal["set", "locked", "empty", "none", "unknown"] = "unknown"
    last_change_days: int | None = None
    min_days: int | None = None
    max_days: int | None = None
    warn_days: int | None = None
    inactive_days: int | None = None
    expire_days: int | None = None


class GroupRow(Strict):
    name: Name
    gid: Count
    members: Annotated[list[Str], Field(max_length=10_000)] = []


class ServiceRow(Strict):
    name: Name
    enabled: Str | None = None
    active: Str | None = None
    description: Str | None = None


class PackageRow(Strict):
    name: Name
    version: Name
    arch: Str | None = None
    source: Str | None = None
    source_version: Str | None = None
    manager: Literal["dpkg", "rpm", "windows", "other"]


def _section(row: type[Strict], max_rows: int) -> type[Strict]:
    return type(f"{row.__name__}Section", (Strict,), {
        "__annotations__": {"hash": Hash, "rows": Annotated[list[row], Field(max_length=max_rows)]},
    })


SECTION_ROWS: dict[str, tuple[type[Strict], int]] = {
    "identity": (IdentityRow, 1),
    "os": (OsRow, 1),
    "hardware": (HardwareRow, 1),
    "interfaces": (InterfaceRow, 1_000),
    "listening_ports": (PortRow, 10_000),
    "users": (UserRow, 20_000),
    "groups": (GroupRow, 20_000),
    "services": (ServiceRow, 5_000),
    "packages": (PackageRow, 50_000),
}

Sections = type("Sections", (Strict,), {
    "__annotations__": {name: _section(row, cap) | None for name, (row, cap) in SECTION_ROWS.items()},
    **dict.fromkeys(SECTION_ROWS),
})


class InventorySnapshot(Strict):
    full: bool = False
    sections: Sections  # type: ignore[valid-type]


# --- other item payloads --------------------------------------------------------------------------

class CollectorHealth(Strict):
    runs: Count = 0
    errors: Count = 0
    items: Count = 0
    status: Str = "ok"
    last_duration_ms: float | None = None
    total_ms: float | None = Field(default=None, ge=0)
    last_error: Text | None = None
    counters: Annotated[dict[Str, Count], Field(max_length=32)] = {}


class BudgetHealth(Strict):
    """The agent's resource budget as it judged itself over the last window."""

    max_rss_bytes: Count
    max_cpu_percent: float = Field(ge=0)
    rss_bytes: Count | None = None
    cpu_percent: float | None = Field(default=None, ge=0)
    over: bool = False
    overruns: Count = 0
    paused: Annotated[list[Str], Field(max_length=64)] = []


class Heartbeat(Strict):
    agent_version: Str
    agent_uptime_s: float = Field(ge=0)
    host_uptime_s: float | None = Field(default=None, ge=0)
    spool_items: Count = 0
    spool_bytes: Count = 0
    dropped: Annotated[dict[Str, Count], Field(max_length=32)] = {}
    dead_letters: Count = 0
    rss_bytes: Count | None = None
    cpu_percent: float | None = Field(default=None, ge=0)
    collectors: Annotated[dict[Str, CollectorHealth], Field(max_length=64)] = {}
    platform: Str | None = None
    budget: BudgetHealth | None = None


class AgentError(Strict):
    collector: Str
    error: Text
    count: Count = 1


CORE_ITEM_MODELS: dict[str, type[BaseModel]] = {
    "host.heartbeat": Heartbeat,
    "inventory.snapshot": InventorySnapshot,
    "agent.error": AgentError,
}


def _item_union() -> tuple[Any, dict[str, type[BaseModel]]]:
    """The discriminated union of every item type: the core ones plus each domain's ITEM_MODELS."""
    models = CORE_ITEM_MODELS | item_models()
    items = tuple(
        create_model(f"Item_{type_.replace('.', '_')}", __base__=Strict,
                     type=(Literal[type_], ...), ts=(AwareDatetime, ...), data=(data, ...))
        for type_, data in models.items())
    return Annotated[Union[items], Field(discriminator="type")], models  # noqa: UP007 - built at runtime


ItemIn, ITEM_MODELS = _item_union()
ITEM_TYPES = frozenset(ITEM_MODELS)


class BatchIn(Strict):
    schema_version: Literal[1] = Field(alias="schema")
    batch_id: UUID
    agent_time: datetime
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=5_000)]  # type: ignore[valid-type]


def parse_batch(raw: bytes) -> BatchIn:
    """Parse and validate a decompressed batch body; InvalidInput names the first bad field."""
    try:
        return BatchIn.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(describe_error(exc)) from None


def describe_error(exc: ValidationError) -> str:
    """One line naming the field, e.g. ``items.3.data.sections.packages.rows.0.version: ...``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"]) or "body"
    if first["type"] == "json_invalid":
        return f"malformed JSON: {first['msg']}"
    if first["loc"][:1] == ("schema",) and first["type"] == "literal_error":
        return f"schema: unsupported version {first.get('input')!r} (this collector speaks {SCHEMA_VERSION})"
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"{loc}: {first['msg']}{more}"


def row_models() -> dict[str, type[Strict]]:
    """Section name -> row model, for tests and the contract check."""
    return {name: row for name, (row, _cap) in SECTION_ROWS.items()}


def item_data_models() -> dict[str, type[BaseModel]]:
    return dict(ITEM_MODELS)


__all__ = ["ITEM_TYPES", "SCHEMA_VERSION", "BatchIn", "parse_batch", "row_models"]
