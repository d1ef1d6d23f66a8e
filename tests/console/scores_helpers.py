"""Builders for the scores pages' tests: stored daily values, frozen months, attestations with files,
appeals and incidents — written through the services wherever a service writes them."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from collector.attestations import service as attestations
from collector.attestations.service import Operator
from collector.db import Database
from collector.scope import Scope
from collector.scoring import service as scoring
from collector.scoring.activity import local_day
from collector.scoring.models import ScoreSnapshot, ScoreValue
from collector.types import utcnow
from collector.units import service as units
from collector.users import service as users
from rules.scoring.model import INDICATORS
from tests.console import helpers as h

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def add_people(db: Database) -> None:
    """The roles the seeded world lacks: an analyst and an auditor."""
    h.add_user(db, "analyst1", "analyst")
    h.add_user(db, "auditor1", "auditor")


def yesterday() -> date:
    return local_day(utcnow()) - timedelta(days=1)


def store_days(db: Database, code: str, values: dict[date, float]) -> None:
    """Stored daily values (every indicator at ``value``) as the daily job leaves them."""
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code=code).id
        for day, value in values.items():
            for ident in INDICATORS:
                s.add(ScoreValue(unit_id=unit_id, day=day, indicator=ident, value=value, numerator=value,
                                 denominator=100.0, model_version="2026.1", inputs_hash="h", computed_at=utcnow()))


def freeze_year(db: Database, year: int, values: dict[str, float], *, frozen_at: datetime | None = None) -> None:
    """Twelve frozen months per unit at one value each (the ranking's input)."""
    with db.transaction() as s:
        for code, value in values.items():
            unit_id = units.get_by_code(s, code=code).id
            for m in range(1, 13):
                for ident in INDICATORS:
                    s.add(ScoreSnapshot(period=f"{year}-{m:02d}", unit_id=unit_id, indicator=ident,
                                        as_of=date(year, m, 14), value=value, model_version="2026.1",
                                        inputs_hash="h", frozen_at=frozen_at or datetime(year, m, 15, tzinfo=UTC)))


def freeze_latest_month(db: Database) -> str:
    """Freeze the latest month whose snapshot day has ended, now (its appeal window is open)."""
    with db.transaction() as s:
        period = scoring.freeze_due(s, now=utcnow())
    assert period is not None
    return period


def attestation(db: Database, code: str, *, item: str = "plan_implemented", period: int | None = None,
                note: str | None = None, with_file: bool = True, data_dir: Path | None = None) -> int:
    """A submitted attestation (by an administrator), optionally with one PDF evidence file."""
    who = Operator("admin")
    with db.transaction() as s:
        row = attestations.submit(s, scope=Scope.everything(), user=who, unit_code=code, item=item,
                                  period=period or utcnow().year, note=note, now=utcnow())
        if with_file:
            assert data_dir is not None
            attestations.attach(s, data_dir=data_dir, max_bytes=1 << 20, attestation_id=row.id,
                                filename="bien-ban.pdf", stream=io.BytesIO(PDF), user=who,
                                scope=Scope.everything(), now=utcnow())
        return row.id


def user_unit(db: Database, username: str) -> int | None:
    with db.session() as s:
        return users.get_by_username(s, username=username).unit_id
