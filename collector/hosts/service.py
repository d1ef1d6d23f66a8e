"""Hosts: identity matching, listing and detail (unit-scoped), inventory updates and history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, select

from collector.errors import Forbidden, InvalidInput, NotFound
from collector.hosts import inventory
from collector.hosts.models import Host, HostPublic, InventoryRow
from collector.scope import Scope
from collector.types import utcnow
from collector.units.models import Unit
from rules.distro import distro_key


def _match_identity(session: Session, *, unit_id: int, identity: dict[str, Any]) -> Host | None:
    """The unit's host with this identity: machine-id and product UUID first, MACs as a fallback."""
    machine_id, product_uuid = identity.get("machine_id"), identity.get("product_uuid")
    base = select(Host).where(Host.unit_id == unit_id)
    if machine_id or product_uuid:
        for host in session.exec(base.where(or_(Host.machine_id == machine_id,
                                                Host.product_uuid == product_uuid))):
            # Cloned VMs share a machine-id but not a product UUID: both must agree when both known.
            if _agrees(host.machine_id, machine_id) and _agrees(host.product_uuid, product_uuid):
                return host
        return None
    macs = set(identity.get("macs") or [])
    if not macs:
        return None
    for host in session.exec(base.where(Host.machine_id.is_(None), Host.product_uuid.is_(None))):
        if macs & set(host.macs or []):
            return host
    return None


def _agrees(stored: str | None, reported: str | None) -> bool:
    return stored is None or reported is None or stored == reported


def find_or_create(session: Session, *, unit_id: int, identity: dict[str, Any], now: datetime) -> Host:
    """The host this identity belongs to in the unit, created on first sight."""
    host = _match_identity(session, unit_id=unit_id, identity=identity)
    if host is None:
        host = Host(unit_id=unit_id, hostname=identity["hostname"], first_seen=now)
    host.machine_id = identity.get("machine_id") or host.machine_id
    host.product_uuid = identity.get("product_uuid") or host.product_uuid
    host.macs = sorted(set(identity.get("macs") or host.macs or []))
    host.hostname = identity.get("hostname") or host.hostname
    session.add(host)
    session.flush()
    return host


def check_identity(host: Host, identity: dict[str, Any]) -> None:
    """Refuse inventory that describes a different machine than the one the agent enrolled as."""
    for field in ("machine_id", "product_uuid"):
        stored, reported = getattr(host, field), identity.get(field)
        if stored and reported and stored != reported:
            raise Forbidden(f"inventory identity does not match this agent's host ({field} differs)")


def update_from_inventory(
    session: Session, *, host: Host, sections: dict[str, tuple[str, list[dict[str, Any]]]], at: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """Apply changed sections (name -> (hash, rows)); returns the derived change events."""
    events: list[tuple[str, dict[str, Any]]] = []
    hashes = dict(host.inventory_hashes or {})
    for name, (digest, rows) in sections.items():
        if hashes.get(name) == digest:
            continue
        first_time = name not in hashes
        diff = inventory.apply_section(session, host=host, section=name, rows=rows, at=at)
        if not first_time:  # a host's first inventory is a baseline, not thousands of "installs"
            events.extend(inventory.change_events(name, diff))
        hashes[name] = digest
        _copy_summary(host, name, rows)
    host.inventory_hashes = hashes
    session.add(host)
    return events


def _copy_summary(host: Host, section: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    row = rows[0]
    if section == "os":
        host.platform = row.get("platform") or host.platform
        host.os_name = row.get("pretty_name") or row.get("name") or host.os_name
        host.os_version = row.get("version_id") or row.get("version") or host.os_version
        host.kernel = row.get("kernel") or host.kernel
        host.distro = distro_key(row) or host.distro
    elif section == "identity":
        host.hostname = row.get("hostname") or host.hostname
        host.macs = sorted(set(row.get("macs") or host.macs))


def touch(host: Host, *, at: datetime) -> None:
    if host.last_seen is None or at > host.last_seen:
        host.last_seen = at


def is_stale(host: Host, *, stale_after: timedelta, now: datetime | None = None) -> bool:
    return host.last_seen is None or (now or utcnow()) - host.last_seen > stale_after


def to_public(host: Host, *, unit_code: str, stale_after: timedelta) -> HostPublic:
    return HostPublic(**host.model_dump(include=set(HostPublic.model_fields) - {"unit", "stale"}),
                      unit=unit_code, stale=is_stale(host, stale_after=stale_after))


def list_(
    session: Session, *, scope: Scope, unit_code: str | None = None, limit: int = 500, offset: int = 0
) -> list[tuple[Host, str]]:
    """Hosts in scope (optionally one unit), with their unit code, ordered by hostname."""
    query = (select(Host, Unit.code).join(Unit, Unit.id == Host.unit_id)
             .where(scope.where(Host.unit_id))
             .order_by(Host.hostname, Host.id).limit(min(limit, 1000)).offset(offset))
    if unit_code:
        query = query.where(Unit.code == unit_code)
    return list(session.exec(query).all())


def get(session: Session, *, scope: Scope, host_id: int) -> tuple[Host, str]:
    """One host in scope, or NotFound — never Forbidden, so ids of other units are not confirmed."""
    row = session.exec(select(Host, Unit.code).join(Unit, Unit.id == Host.unit_id)
                       .where(Host.id == host_id, scope.where(Host.unit_id))).first()
    if row is None:
        raise NotFound(f"host {host_id} not found")
    return row


def inventory_of(
    session: Session, *, scope: Scope, host_id: int, as_of: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Inventory sections of a host now, or as they were at ``as_of``."""
    host, _ = get(session, scope=scope, host_id=host_id)
    query = select(InventoryRow.section, InventoryRow.data).where(InventoryRow.host_id == host.id)
    if as_of is None:
        query = query.where(InventoryRow.valid_to.is_(None))
    else:
        query = query.where(InventoryRow.valid_from <= as_of,
                            or_(InventoryRow.valid_to.is_(None), InventoryRow.valid_to > as_of))
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in inventory.KEY_FIELDS}
    for section, data in session.exec(query.order_by(InventoryRow.section, InventoryRow.key)):
        sections.setdefault(section, []).append(data)
    return sections


def set_classification(session: Session, *, host_id: int, security_level: int | None = None,
                       internet_facing: bool | None = None) -> Host:
    """Declare a host's security level (cấp độ 1–5) and/or whether it faces the internet."""
    host = session.get(Host, host_id)
    if host is None:
        raise NotFound(f"host {host_id} not found")
    if security_level is not None:
        if not 1 <= security_level <= 5:
            raise InvalidInput("security level must be 1 to 5")
        host.security_level = security_level
    if internet_facing is not None:
        host.internet_facing = internet_facing
    session.add(host)
    return host


def current_os(session: Session, *, host_id: int) -> dict[str, Any] | None:
    """The host's current ``os`` inventory row (for enrichment that needs the OS), or None."""
    return session.exec(select(InventoryRow.data).where(
        InventoryRow.host_id == host_id, InventoryRow.section == "os", InventoryRow.valid_to.is_(None))).first()
