"""Validators for what agents send (DESIGN.md §4). Everything here is hostile input until it passes.

Unknown fields are rejected, every string and list is length-capped, and item types form a closed,
discriminated set. ``agent/wire.py`` mirrors the field lists; tests/contract keeps the two in step.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, ValidationError, create_model

from collector.errors import InvalidInput
from collector.ingest.fields import Count, Hash, Int64, Mac, Name, Port, Str, Strict, Text
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
    last_change_days: Int64 | None = None
    min_days: Int64 | None = None
    max_days: Int64 | None = None
    warn_days: Int64 | None = None
    inactive_days: Int64 | None = None
    expire_days: Int64 | None = None


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


# The validator builds the whole JSON tree before checking it, at 60-130 bytes per value, so a body of
# "1,1,1,..." (two bytes a value) would cost 64 times its size: 3 GB for the 50 MB decompression cap.
# The largest real batch, a full inventory of a very large host, holds about 700,000 values.
MAX_JSON_VALUES = 2_000_000
# "\u0000" preceded by an even number of backslashes (none, or escaped backslashes): a NUL in a string.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def parse_batch(raw: bytes) -> BatchIn:
    """Parse and validate a decompressed batch body; InvalidInput names the first bad field."""
    # Only a body longer than the budget can hold more values than it: most batches skip the count.
    if len(raw) > MAX_JSON_VALUES and json_values_at_most(raw) > MAX_JSON_VALUES:
        raise InvalidInput(f"batch holds more than {MAX_JSON_VALUES} JSON values; send it in smaller batches")
    try:
        batch = BatchIn.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(describe_error(exc)) from None
    if b"\\u0000" in raw and _ESCAPED_NUL.search(raw):  # the cheap test first: almost never there
        raise InvalidInput(f"{_nul_path(json.loads(raw)) or 'body'}: NUL characters (\\u0000) are not accepted")
    return batch


def json_values_at_most(raw: bytes) -> int:
    """An upper bound on the values in a JSON text: every value after a container's first follows a comma.

    Commas, brackets and braces inside strings count too, so it may over-count, never under-count.
    """
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1


def _nul_path(value: Any, path: str = "") -> str:
    """Where the first string (or key) holding a NUL is, e.g. ``items.0.data.user``."""
    if isinstance(value, str):
        return path if "\x00" in value else ""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return here
        found = _nul_path(item, here)
        if found:
            return found
    return ""


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


def batch_json_schema() -> dict[str, Any]:
    """The JSON Schema of a decompressed batch with every reference inlined, for the OpenAPI document.

    The route reads the raw body itself (size cap, gzip), so FastAPI cannot document it from a parameter;
    inlining keeps the schema self-contained without touching the document's shared components.
    """
    schema = BatchIn.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[1]])
            # The discriminator's mapping names $defs that no longer exist; "type" is a const in each branch.
            return {k: inline(v) for k, v in node.items() if k != "discriminator"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


def row_models() -> dict[str, type[Strict]]:
    """Section name -> row model, for tests and the contract check."""
    return {name: row for name, (row, _cap) in SECTION_ROWS.items()}


def item_data_models() -> dict[str, type[BaseModel]]:
    return dict(ITEM_MODELS)


__all__ = ["ITEM_TYPES", "SCHEMA_VERSION", "BatchIn", "parse_batch", "row_models"]
