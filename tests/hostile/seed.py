"""A small province with one object of every kind in D1 and in D2, for the hostile-input tests.

Built from the console tests' builders (tests/console/*_helpers.py), so an id in a URL can name a real
object of either unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from collector.db import Database
from collector.exceptions import service as exceptions
from collector.exceptions.models import ExceptionRequestCreate
from collector.incidents import service as incidents
from collector.incidents.models import IncidentCreate
from collector.scope import Scope
from collector.types import utcnow
from collector.users import service as users
from tests.console import alerts_helpers as ah
from tests.console import helpers as ch
from tests.console import remediation_helpers as rh
from tests.console import scores_helpers as sh

OFFICERS = {"D1": "officer1", "D2": "officer2"}


@dataclass
class Province:
    """Ids of each unit's objects, keyed the way the routes name their path parameters."""

    objects: dict[str, dict[str, object]] = field(default_factory=dict)

    def small_ids(self) -> list[int]:
        """Every seeded id: a fuzzer that picks from these reaches real rows, not only 404s."""
        return sorted({v for unit in self.objects.values() for k, v in unit.items()
                       if k.endswith("_id") and isinstance(v, int) and v < 1000})


def seed_province(db: Database, *, data_dir: Path) -> Province:
    """Units P, D1, D2; admin, analyst1, auditor1, officer1 (D1), officer2 (D2); one object of each kind per unit."""
    return add_objects(db, ch.seed_world(db), data_dir=data_dir)


def add_objects(db: Database, world: ch.World, *, data_dir: Path) -> Province:
    """On the console tests' world: an analyst, an auditor, and one object of each kind in D1 and D2."""
    ah.add_people(db)
    province = Province()
    for unit, host in (("D1", world.web01), ("D2", world.db02)):
        finding = rh.add_finding(db, unit=unit, host_id=host)
        with db.transaction() as s:
            incident = incidents.record(s, scope=Scope.everything(), by="admin", by_role="admin", now=utcnow(),
                                        data=IncidentCreate(unit=unit, title="Sự cố", severity="normal",
                                                            detected_at=datetime(2026, 1, 5, tzinfo=UTC)))
            user_id = users.get_by_username(s, username=OFFICERS[unit]).id
        officer = rh.actor(db, OFFICERS[unit])
        with db.transaction(actor=officer) as s:
            exception = exceptions.request(s, actor=officer, now=utcnow(), data=ExceptionRequestCreate(
                finding_id=finding, justification="Chờ bản vá của hãng", compensating_control="Chặn cổng ở tường lửa",
                expires_in_days=30))
        province.objects[unit] = {
            "host_id": host, "alert_id": ah.add_alert(db, host_id=host), "finding_id": finding,
            "attestation_id": sh.attestation(db, unit, data_dir=data_dir), "incident_id": incident.id,
            "exception_id": exception.id, "user_id": user_id, "unit": unit,
            # A second finding with nothing asked about it yet: an exception request for it is valid.
            "free_finding_id": rh.add_finding(db, unit=unit, host_id=host)}
    return province
