"""Scan ranges, policies, run records and the rescan schedule (no nmap here: see ``runner``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import Session, select

from collector.errors import InvalidInput, NotFound
from collector.scans.models import PROFILES, ScanAsset, ScanPolicy, ScanRun, UnitRange
from collector.scans.targets import TargetError, parse_targets
from collector.scope import Scope
from collector.units import service as units

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


# ---- ranges ----------------------------------------------------------------------------------------

def set_ranges(session: Session, *, code: str, add: list[str] = (), remove: list[str] = (),
               exclude: list[str] = (), include: list[str] = ()) -> list[UnitRange]:
    """Add/remove owned ranges and exclusions; every item is validated before anything changes."""
    unit = units.get_by_code(session, code=code)
    try:
        parsed = {name: [str(n) for n in parse_targets(list(items))]
                  for name, items in (("add", add), ("remove", remove), ("exclude", exclude), ("include", include))}
    except TargetError as exc:
        raise InvalidInput(str(exc)) from exc
    current = {(r.network, r.exclude): r for r in session.exec(select(UnitRange).where(UnitRange.unit_id == unit.id))}
    for network in parsed["remove"]:
        if (network, False) not in current:
            raise InvalidInput(f"{network} is not a range of unit {code}")
    for network in parsed["include"]:
        if (network, True) not in current:
            raise InvalidInput(f"{network} is not excluded in unit {code}")
    for network, excluded in [(n, False) for n in parsed["add"]] + [(n, True) for n in parsed["exclude"]]:
        if (network, excluded) not in current:
            row = UnitRange(unit_id=unit.id, network=network, exclude=excluded)
            session.add(row)
            current[(network, excluded)] = row
    for network, excluded in [(n, False) for n in parsed["remove"]] + [(n, True) for n in parsed["include"]]:
        session.execute(delete(UnitRange).where(UnitRange.unit_id == unit.id, UnitRange.network == network,
                                                UnitRange.exclude == excluded))
        current.pop((network, excluded), None)
    session.flush()
    return sorted(current.values(), key=lambda r: (r.exclude, r.network))


def ranges_of(session: Session, *, unit_id: int) -> tuple[list[str], list[str]]:
    """(owned, excluded) networks of a unit and its sub-units: a province may scan what its units own."""
    ids = units.subtree_ids(session, unit_id=unit_id)
    rows = session.exec(select(UnitRange).where(UnitRange.unit_id.in_(ids))).all()
    return ([r.network for r in rows if not r.exclude], [r.network for r in rows if r.exclude])


# ---- policy and windows ----------------------------------------------------------------------------

def parse_window(text: str) -> list[int]:
    """``"22-06"`` -> [22, 6] (hours, local time; wraps midnight when start > end)."""
    try:
        start, end = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise InvalidInput(f"scan window {text!r} must look like 22-06 (hours, local time)") from None
    if not (0 <= start <= 23 and 0 <= end <= 24) or start == end:
        raise InvalidInput(f"scan window {text!r}: hours must be 0–23 (end 0–24) and differ")
    return [start, end]


def set_policy(session: Session, *, code: str, profile: str | None = None, windows: list[str] | None = None,
               enabled: bool | None = None) -> ScanPolicy:
    unit = units.get_by_code(session, code=code)
    policy = session.get(ScanPolicy, unit.id) or ScanPolicy(unit_id=unit.id)
    if profile is not None:
        if profile not in PROFILES:
            raise InvalidInput(f"unknown scan profile {profile!r}; choose {', '.join(PROFILES)}")
        policy.profile = profile
    if windows is not None:
        policy.windows = [parse_window(w) for w in windows]
    if enabled is not None:
        policy.enabled = enabled
    session.add(policy)
    session.flush()
    return policy


def window_end(windows: list[list[int]], now: datetime) -> datetime | bool | None:
    """When the current window closes; True when there are no windows (any time); False when outside all."""
    if not windows:
        return True
    local = now.astimezone(LOCAL_TZ)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    hour = local.hour
    for start, end in windows:
        if start < end and start <= hour < end:
            return midnight + timedelta(hours=end)
        if start > end and hour >= start:
            return midnight + timedelta(days=1, hours=end)
        if start > end and hour < end:
            return midnight + timedelta(hours=end)
    return False


# ---- schedule ---------------------------------------------------------------------------------------

def not_due(session: Session, *, unit_id: int, now: datetime) -> set[str]:
    """Addresses scanned recently enough that their rescan interval has not run out."""
    return set(session.exec(select(ScanAsset.address).where(ScanAsset.unit_id == unit_id,
                                                            ScanAsset.next_scan_at > now)).all())


# ---- reading ---------------------------------------------------------------------------------------

def list_runs(session: Session, *, scope: Scope, unit_id: int | None = None, limit: int = 50) -> list[ScanRun]:
    query = select(ScanRun).where(scope.where(ScanRun.unit_id)).order_by(ScanRun.id.desc()).limit(limit)
    if unit_id is not None:
        query = query.where(ScanRun.unit_id == unit_id)
    return list(session.exec(query).all())


def get_run(session: Session, *, scope: Scope, run_id: int) -> ScanRun:
    run = session.exec(select(ScanRun).where(ScanRun.id == run_id, scope.where(ScanRun.unit_id))).first()
    if run is None:
        raise NotFound(f"no scan run {run_id}")
    return run

