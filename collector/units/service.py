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
