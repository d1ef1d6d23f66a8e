"""Enrollment tokens, enrollment, and agent credentials."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, text, update
from sqlmodel import Session, select

from collector import security
from collector.agents.models import Agent, EnrollmentToken
from collector.errors import Forbidden, InvalidInput, RateLimited, Unauthorized
from collector.hosts import service as hosts
from collector.hosts.models import Host
from collector.types import utcnow
from collector.units import service as units
from collector.users.throttle import LoginThrottle

ENROLL_TOKEN_PREFIX = "khien_enr_"
MAX_TOKEN_LIFETIME = timedelta(days=365)
# Refused enrollments (unknown, expired, used-up or revoked token) one address may make in the window.
# An installer with the right token never fails; a typo fails once or twice. Tokens are far too long
# to guess, so this mostly keeps a guessing loop from costing a token lookup and a log line per try.
ENROLL_MAX_FAILURES = 20
ENROLL_WINDOW_S = 15 * 60


class EnrollmentThrottle:
    """Failed enrollments per source address; over the limit every attempt is refused, a right token too."""

    def __init__(self, *, max_failures: int = ENROLL_MAX_FAILURES, window_s: float = ENROLL_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._failures = LoginThrottle(max_failures=max_failures, window_s=window_s, clock=clock)

    def check(self, address: str | None) -> None:
        """RateLimited (with the seconds until the oldest failure ages out) if ``address`` is over the limit."""
        try:
            self._failures.check(address)
        except RateLimited as exc:
            raise RateLimited("too many refused enrollments from this address",
                              retry_after=exc.retry_after) from None

    def failed(self, address: str | None) -> None:
        self._failures.failed(address)

    @contextmanager
    def attempt(self, address: str | None) -> Iterator[None]:
        """Refuse a throttled address before its token is looked at; count the attempt if the token is refused."""
        self.check(address)
        try:
            yield
        except (Unauthorized, Forbidden):
            self.failed(address)
            raise


def create_enrollment_token(
    session: Session, *, unit_code: str, expires_in: timedelta, max_uses: int | None
) -> str:
    """Issue an enrollment token for a unit; the plaintext is returned once and never stored."""
    if expires_in <= timedelta(0) or expires_in > MAX_TOKEN_LIFETIME:
        raise InvalidInput("token lifetime must be between 1 second and 365 days")
    if max_uses is not None and max_uses < 1:
        raise InvalidInput("--max-uses must be at least 1")
    unit = units.get_by_code(session, code=unit_code)
    token = ENROLL_TOKEN_PREFIX + security.new_secret()
    session.add(EnrollmentToken(unit_id=unit.id, token_hash=security.hash_token(token),
                                prefix=token[: len(ENROLL_TOKEN_PREFIX) + 6],
                                expires_at=utcnow() + expires_in, max_uses=max_uses))
    session.flush()
    return token


def _usable_token(session: Session, *, token: str, now: datetime) -> EnrollmentToken:
    row = session.exec(select(EnrollmentToken).where(
        EnrollmentToken.token_hash == security.hash_token(token))).first()
    if row is None:
        raise Unauthorized("invalid enrollment token")
    if row.revoked:
        raise Forbidden("enrollment token revoked")
    if row.expires_at <= now:
        raise Forbidden("enrollment token expired")
    if row.max_uses is not None and row.uses >= row.max_uses:
        raise Forbidden("enrollment token has no uses left")
    return row


@dataclass(frozen=True, slots=True)
class Enrollment:
    agent_id: str
    secret: str
    host_id: int
    unit_code: str


def enroll(
    session: Session, *, token: str, identity: dict[str, Any], agent_version: str | None
) -> Enrollment:
    """Exchange an enrollment token for an agent credential; the same host keeps its record."""
    now = utcnow()
    row = _usable_token(session, token=token, now=now)
    # Count the use atomically so concurrent enrollments cannot exceed max_uses.
    guard = EnrollmentToken.uses < EnrollmentToken.max_uses if row.max_uses is not None else True
    used = session.execute(update(EnrollmentToken).where(EnrollmentToken.id == row.id, guard)
                           .values(uses=EnrollmentToken.uses + 1))
    if used.rowcount != 1:
        raise Forbidden("enrollment token has no uses left")
    host = hosts.find_or_create(session, unit_id=row.unit_id, identity=identity, now=now)
    # A re-installed agent replaces the old one: revoke earlier credentials for this host.
    session.execute(update(Agent).where(Agent.host_id == host.id, Agent.revoked.is_(False))
                    .values(revoked=True, revoked_at=now))
    secret = security.new_secret()
    agent = Agent(id=str(uuid.uuid4()), host_id=host.id, unit_id=row.unit_id, token_id=row.id,
                  secret_hash=security.hash_token(secret), version=agent_version, enrolled_at=now)
    session.add(agent)
    session.flush()
    unit_code = units.codes_by_id(session, ids={row.unit_id})[row.unit_id]
    return Enrollment(agent_id=agent.id, secret=secret, host_id=host.id, unit_code=unit_code)


def authenticate(session: Session, *, credential: str) -> Agent:
    """The agent behind ``<agent_id>.<secret>``: Unauthorized if unknown/wrong, Forbidden if revoked."""
    agent_id, _, secret = credential.partition(".")
    try:
        uuid.UUID(agent_id)
    except ValueError:
        raise Unauthorized("malformed agent credential") from None
    agent = session.get(Agent, agent_id)
    if agent is None or not secret or not security.token_matches(secret, agent.secret_hash):
        raise Unauthorized("invalid agent credential")
    if agent.revoked:
        raise Forbidden("agent credential revoked")
    return agent


def record_heartbeat(session: Session, *, agent: Agent, host: Host, data: dict[str, Any]) -> None:
    """Keep the latest heartbeat for status pages; versions follow what the agent reports."""
    agent.last_heartbeat = data
    agent.version = str(data.get("agent_version") or agent.version)[:64]
    host.agent_version = agent.version
    session.add(agent)
    session.add(host)


# Drop reasons are agent-chosen strings that become /metrics label values: only this many (the largest)
# are shown by name, the rest under "other", so a hostile agent cannot grow the scrape without bound.
REPORTED_DROP_REASONS = 50

_DROPS_SQL = {
    # jsonb_each fails on a non-object, hence the CASE; sums of numeric cannot overflow.
    "postgresql": """
        SELECT d.key, sum((d.value)::numeric)
        FROM agents AS a
        CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(a.last_heartbeat -> 'dropped') = 'object'
                                           THEN a.last_heartbeat -> 'dropped' ELSE '{}'::jsonb END) AS d
        WHERE NOT a.revoked AND jsonb_typeof(d.value) = 'number'
        GROUP BY d.key""",
    "sqlite": """
        SELECT d.key, total(d.value)
        FROM agents AS a, json_each(a.last_heartbeat, '$.dropped') AS d
        WHERE NOT a.revoked AND json_type(a.last_heartbeat, '$.dropped') = 'object'
          AND d.type IN ('integer', 'real')
        GROUP BY d.key""",  # total(), not sum(): sum() of integers past 64 bits is an error in SQLite
}


def reported_drops(session: Session, *, top: int = REPORTED_DROP_REASONS) -> dict[str, int]:
    """Items live agents report they dropped (their last heartbeat's cumulative ``dropped``), by reason.

    Summed in the database: at 10,000 agents, reading every heartbeat into Python cost each scrape of
    /metrics ~590 ms of CPU; summed in PostgreSQL it costs 6 ms (docs/foundation.md). The ``top``
    largest reasons by name, the rest summed under "other".
    """
    conn = session.connection()
    rows = conn.execute(text(_DROPS_SQL[conn.dialect.name])).all()
    ranked = sorted(((str(reason), int(n)) for reason, n in rows), key=lambda r: (-r[1], r[0]))
    totals = dict(ranked[:top])
    if len(ranked) > top:
        totals["other"] = totals.get("other", 0) + sum(n for _, n in ranked[top:])
    return totals


def list_newly_stale(session: Session, *, now: datetime, stale_after_s: int) -> list[Agent]:
    """Live agents silent for longer than ``stale_after_s`` that were not reported since they last spoke."""
    cutoff = now - timedelta(seconds=stale_after_s)
    return list(session.exec(select(Agent).where(
        Agent.revoked_at.is_(None), Agent.last_seen_at.is_not(None), Agent.last_seen_at < cutoff,
        or_(Agent.stale_reported_at.is_(None), Agent.stale_reported_at < Agent.last_seen_at))))


def mark_stale_reported(session: Session, *, agents: list[Agent], at: datetime) -> None:
    for agent in agents:
        agent.stale_reported_at = at
        session.add(agent)


def loss_events(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[dict[str, Any]]:
    """``agent.loss`` data for every drop reason whose counter grew since the previous heartbeat.

    Counters are cumulative on the agent; one that went down (spool recreated) counts from zero.
    """
    before = (previous or {}).get("dropped") or {}
    out = []
    for reason, total in sorted((current.get("dropped") or {}).items()):
        old = before.get(reason, 0)
        grew = total - old if total >= old else total
        if grew > 0:
            module = reason.split(":", 1)[1] if ":" in reason else None
            out.append({"reason": reason, "dropped": grew, "total": total, "module": module})
    return out


# Watched by file-integrity monitoring unless a unit configures otherwise (web roots are added by
# the agent when it detects them).
DEFAULT_FIM_PATHS = ("/etc", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/var/www")


def agent_config(*, heartbeat_interval_s: int, inventory_interval_s: int, send_interval_s: int) -> dict[str, Any]:
    """What GET /api/v1/agent/config returns: schedules, limits and what to watch."""
    return {
        "heartbeat_interval_s": heartbeat_interval_s,
        "send_interval_s": send_interval_s,
        "inventory_interval_s": inventory_interval_s,
        "inventory_full_interval_s": 86400,
        "batch_max_items": 500,
        "batch_max_bytes": 1024 * 1024,
        "fim_paths": list(DEFAULT_FIM_PATHS),
    }
