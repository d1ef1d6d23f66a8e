"""Which hosts reported on which local day (A1's "reported on >= 90 % of days"), recorded at ingest.

The day is the server's local day of receipt, never the agent's clock: a host whose clock is hours
(or days) off, by fault or on purpose, cannot report for a day it was silent on.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from collector.scoring.models import HostActivity

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_day(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


def record(session: Session, *, host_id: int, unit_id: int, day: date) -> None:
    """Mark that the host reported on ``day``; idempotent, so racing batches of one day are harmless."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(HostActivity.__table__).values(host_id=host_id, unit_id=unit_id, day=day)
                 .on_conflict_do_nothing())
