"""Inventory history: diff a section against its current rows, close what changed, insert what is new.

Change events (port opened, package upgraded...) are derived here from the diff, so the agent never
has to compute them and they cannot disagree with the stored history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session

from collector.hosts.models import Host, InventoryRow

# Fields that identify a row within its section (single-row sections have an empty key).
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "identity": (), "os": (), "hardware": (),
    "interfaces": ("name",),
    "listening_ports": ("proto", "family", "address", "port"),
    "users": ("name",),
    "groups": ("name",),
    "services": ("name",),
    "packages": ("name", "arch"),
}
CHUNK = 500


def row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Keyed:
    key: str
    hash: str
    row: dict[str, Any]


def keyed_rows(section: str, rows: list[dict[str, Any]]) -> dict[str, Keyed]:
    """Rows by key; a repeated key (rpm installs kernels side by side) gets its hash appended."""
    out: dict[str, Keyed] = {}
    for row in rows:
        h = row_hash(row)
        key = "/".join(str(row.get(f, "")) for f in KEY_FIELDS[section])
        if key in out:
            key = f"{key}#{h[:12]}"
        out[key] = Keyed(key, h, row)
    return out


@dataclass(frozen=True, slots=True)
class SectionDiff:
    added: list[Keyed]
    removed: list[dict[str, Any]]
    changed: list[tuple[dict[str, Any], Keyed]]  # (old row, new row)


def apply_section(
    session: Session, *, host: Host, section: str, rows: list[dict[str, Any]], at: datetime
) -> SectionDiff:
    """Make ``rows`` the current rows of the section, keeping what they replace as history."""
    new = keyed_rows(section, rows)
    current = {
        r.key: r for r in session.execute(
            select(InventoryRow.id, InventoryRow.key, InventoryRow.row_hash, InventoryRow.data)
            .where(InventoryRow.host_id == host.id, InventoryRow.section == section,
                   InventoryRow.valid_to.is_(None)))
    }
    to_close = [c.id for k, c in current.items() if k not in new or new[k].hash != c.row_hash]
    to_add = [n for k, n in new.items() if k not in current or current[k].row_hash != n.hash]
    for i in range(0, len(to_close), CHUNK):
        session.execute(update(InventoryRow).where(InventoryRow.id.in_(to_close[i:i + CHUNK]))
                        .values(valid_to=at))
    if to_add:
        session.execute(insert(InventoryRow), [
            {"host_id": host.id, "unit_id": host.unit_id, "section": section, "key": n.key,
             "name": _promoted(n.row, "name"), "version": _promoted(n.row, "version"),
             "source": _promoted(n.row, "source"), "source_version": _promoted(n.row, "source_version"),
             "row_hash": n.hash, "data": n.row, "valid_from": at, "valid_to": None}
            for n in to_add
        ])
    return SectionDiff(
        added=[n for n in to_add if n.key not in current],
        removed=[c.data for k, c in current.items() if k not in new],
        changed=[(current[n.key].data, n) for n in to_add if n.key in current],
    )


def _promoted(row: dict[str, Any], field: str) -> str | None:
    value = row.get(field)
    return str(value)[:255] if value is not None else None


def change_events(section: str, diff: SectionDiff) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) change events a section diff implies."""
    match section:
        case "listening_ports":
            return ([("port.opened", n.row) for n in diff.added]
                    + [("port.closed", r) for r in diff.removed])
        case "packages":
            return ([("package.installed", _pkg(n.row)) for n in diff.added]
                    + [("package.removed", _pkg(r)) for r in diff.removed]
                    + [("package.upgraded", _pkg(n.row) | {"from_version": old.get("version")})
                       for old, n in diff.changed if old.get("version") != n.row.get("version")])
        case "users":
            return ([("account.added", _user(n.row)) for n in diff.added]
                    + [("account.removed", _user(r)) for r in diff.removed])
        case "services":
            return _service_events(diff)
    return []


def _pkg(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("name", "version", "arch", "source", "manager")}


def _user(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("name", "uid", "gid", "shell", "home")}


def _service_events(diff: SectionDiff) -> list[tuple[str, dict[str, Any]]]:
    def enabled(row: dict[str, Any]) -> bool:
        return row.get("enabled") in ("enabled", "enabled-runtime")

    events = [("service.enabled", n.row) for n in diff.added if enabled(n.row)]
    events += [("service.disabled", r) for r in diff.removed if enabled(r)]
    for old, n in diff.changed:
        if enabled(old) != enabled(n.row):
            events.append(("service.enabled" if enabled(n.row) else "service.disabled", n.row))
    return events
