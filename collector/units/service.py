"""Units: create, list, resolve codes and subtrees."""

from __future__ import annotations

from sqlmodel import Session, select

from collector.errors import Conflict, InvalidInput, NotFound
from collector.scope import Scope
from collector.units.models import Unit, UnitCreate, UnitKind

# Which kinds may sit under which: province → department | commune | district; district → commune.
ALLOWED_PARENTS: dict[str, set[str | None]] = {
    UnitKind.province: {None},
    UnitKind.department: {UnitKind.province},
    UnitKind.district: {UnitKind.province},
    UnitKind.commune: {UnitKind.province, UnitKind.district},
}


def get_by_code(session: Session, *, code: str) -> Unit:
    """The unit with this code, or NotFound naming it."""
    unit = session.exec(select(Unit).where(Unit.code == code)).first()
    if unit is None:
        raise NotFound(f"unknown unit code: {code!r}")
    return unit


def get_visible(session: Session, *, scope: Scope, code: str) -> Unit:
    """The unit with this code if the scope sees it; otherwise the same NotFound as an unknown code,
    so a caller cannot learn which units exist outside its scope."""
    unit = get_by_code(session, code=code)
    if not scope.allows(unit.id):
        raise NotFound(f"unknown unit code: {code!r}")
    return unit


def create(session: Session, *, data: UnitCreate) -> Unit:
    """Add a unit under its parent (validated kind-to-kind)."""
    data = UnitCreate.model_validate(data.model_dump())
    if session.exec(select(Unit).where(Unit.code == data.code)).first():
        raise Conflict(f"unit code already exists: {data.code!r}")
    parent = get_by_code(session, code=data.parent_code) if data.parent_code else None
    parent_kind = parent.kind if parent else None
    if parent_kind not in ALLOWED_PARENTS[data.kind]:
        where = f"under a {parent_kind}" if parent_kind else "without a parent"
        raise InvalidInput(f"a {data.kind.value} cannot be placed {where}")
    unit = Unit(code=data.code, name=data.name, kind=data.kind.value, parent_id=parent.id if parent else None)
    session.add(unit)
    session.flush()
    return unit


def list_(session: Session, *, scope: Scope) -> list[Unit]:
    """Units visible in the scope, ordered by code."""
    query = select(Unit).order_by(Unit.code)
    if not scope.all_units:
        query = query.where(Unit.id.in_(scope.unit_ids))
    return list(session.exec(query))


def subtree_ids(session: Session, *, unit_id: int) -> frozenset[int]:
    """The unit and every unit below it (the tree is small: walk it in memory)."""
    children: dict[int | None, list[int]] = {}
    for uid, parent in session.exec(select(Unit.id, Unit.parent_id)):
        children.setdefault(parent, []).append(uid)
    found, stack = {unit_id}, [unit_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return frozenset(found)


def codes_by_id(session: Session, *, ids: set[int] | None = None) -> dict[int, str]:
    query = select(Unit.id, Unit.code)
    if ids is not None:
        query = query.where(Unit.id.in_(ids))
    return dict(session.exec(query).all())


MAX_ALLOWED_PORTS = 1000


def set_allowed_ports(session: Session, *, code: str, ports: list[int] | None) -> Unit:
    """Set (or with None, clear) the listening ports a unit's hosts may open."""
    unit = get_by_code(session, code=code)
    if ports is not None:
        bad = [p for p in ports if not isinstance(p, int) or isinstance(p, bool) or not 0 < p < 65536]
        if bad:
            raise InvalidInput(f"ports must be 1-65535, got {bad[:5]}")
        if len(set(ports)) > MAX_ALLOWED_PORTS:
            raise InvalidInput(f"at most {MAX_ALLOWED_PORTS} allowed ports per unit")
        ports = sorted(set(ports))
    unit.allowed_ports = ports
    session.add(unit)
    return unit


def effective_allowed_ports(session: Session) -> dict[int, list[int]]:
    """Each unit's allowed ports: its own list, else its nearest ancestor's; units with none are absent."""
    rows = {u.id: (u.parent_id, u.allowed_ports) for u in session.exec(select(Unit))}
    out: dict[int, list[int]] = {}
    for unit_id in rows:
        seen, current = set(), unit_id
        while current is not None and current not in seen:  # a cycle cannot happen, but never loop on one
            seen.add(current)
            parent_id, ports = rows[current]
            if ports is not None:
                out[unit_id] = ports
                break
            current = parent_id
    return out
