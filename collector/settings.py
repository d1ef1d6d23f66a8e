"""Server settings, built once at command start from arguments and environment (never at import)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from collector.errors import InvalidInput
from collector.events.retention_policy import DEFAULT_KEEP_DAYS, configured_keep_days

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    # Ingest caps: compressed body and decompressed JSON (gzip-bomb guard).
    max_batch_bytes: int = 5 * MiB
    # Batches waiting for an ingest thread; beyond this a batch is refused with 503 + Retry-After at
    # once (collector/ingest/worker.py). ~250 is one to three seconds of work for one process.
    ingest_queue: int = 256
    # Bytes of agent batch bodies held at once (read before their credential is checked); beyond it a
    # batch is refused with 503 + Retry-After (collector/ingest/inflight.py). 256 queued 1 MiB batches.
    ingest_body_bytes: int = 256 * MiB
    max_decompressed_bytes: int = 50 * MiB
    # Per-agent ingest rate (token bucket): sustained batches per second and burst.
    agent_rate_per_s: float = 5.0
    agent_rate_burst: int = 60
    # An agent silent longer than this is stale (Wazuh calls it "disconnected" after 15 min).
    stale_after_s: int = 15 * 60
    heartbeat_interval_s: int = 60
    # How often agents send what they queued (told through GET /api/v1/agent/config): raise it for
    # large fleets, where each request's fixed cost, not the items, is what the server pays for.
    send_interval_s: int = 5
    inventory_interval_s: int = 3600
    session_ttl_s: int = 8 * 3600
    cookie_secure: bool = True
    demo: bool = False
    # Background jobs (APScheduler): nightly feed matching and scheduled network scans.
    scheduler: bool = True
    match_hour: int = 2  # local time (Asia/Ho_Chi_Minh) of the nightly re-match
    score_hour: int = 1  # local time of the daily score computation (and the monthly freeze)
    match_tick_s: int = 30  # how often hosts whose packages changed before the feed index was ready are matched
    scan_concurrency: int = 2  # at most this many scans run at once
    scan_tick_s: int = 60  # how often the scheduler looks for units with addresses due
    scan_max_addresses: int = 65_536  # a single scan refuses more addresses than this
    evidence_max_bytes: int = 10 * MiB  # one attestation evidence file
    # Several server processes on one database (docs/scale-out.md): one elected leader runs detection
    # and the jobs above. Off: this process runs them at once, whatever others do (a lone server, tests).
    leader_election: bool = True
    # Off: this process never leads (it ingests and serves the API and console); run the leader's work in
    # processes the proxy sends no agent traffic to (docs/scale-out.md). Wins over leader_election off.
    leader_candidate: bool = True
    leader_retry_s: float = 5.0  # a standby tries for the leader lock this often (failover time)
    leader_check_s: float = 2.0  # the leader checks its lock connection this often
    score_every_s: float = 0  # >0: compute yesterday's scores every this many seconds, not nightly (tests, demos)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the audit log
    # and the login throttle then see people's addresses, not the proxy's. Empty: trust no header.
    trusted_proxies: tuple[str, ...] = ()
    event_keep_days: int = DEFAULT_KEEP_DAYS  # KHIEN_EVENT_RETENTION_DAYS, at least 400 (docs/retention.md)


def default_data_dir() -> Path:
    """``$KHIEN_DATA_DIR`` or ``./khien-data`` (DESIGN.md §4)."""
    return Path(os.environ.get("KHIEN_DATA_DIR") or "khien-data")


def local_rules_dir(data_dir: Path) -> Path:
    """Detection rules this installation adds (e.g. imported from Sigma), loaded with the built-in ones."""
    return data_dir / "rules" / "detections"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'khien.db').resolve()}"


def load_settings(
    *,
    data_dir: str | Path | None = None,
    database_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    demo: bool = False,
) -> Settings:
    """Resolve settings the same way for every server-side command."""
    resolved_dir = Path(data_dir) if data_dir else default_data_dir()
    url = database_url or os.environ.get("KHIEN_DATABASE_URL") or sqlite_url(resolved_dir)
    if not url.startswith(("sqlite:", "postgresql+psycopg:", "postgresql:")):
        raise InvalidInput(f"unsupported database URL scheme: {url.split(':', 1)[0]!r} "
                           "(use sqlite:///PATH or postgresql+psycopg://...)")
    if url.startswith("postgresql:"):
        url = "postgresql+psycopg:" + url.removeprefix("postgresql:")
    bind_host = host or os.environ.get("KHIEN_HOST") or "127.0.0.1"
    # Cookies travel without the Secure flag only where TLS cannot be: plain HTTP on loopback, or
    # when explicitly allowed behind a TLS-terminating proxy that the operator vouches for.
    insecure_ok = os.environ.get("KHIEN_INSECURE_COOKIES") == "1" or demo
    return Settings(
        agent_rate_per_s=_env_number("KHIEN_AGENT_RATE_PER_S", 5.0),
        agent_rate_burst=int(_env_number("KHIEN_AGENT_RATE_BURST", 60)),
        heartbeat_interval_s=int(_env_number("KHIEN_AGENT_HEARTBEAT_S", 60)),
        send_interval_s=int(_env_number("KHIEN_AGENT_SEND_S", 5)),
        ingest_queue=int(_env_number("KHIEN_INGEST_QUEUE", 256)),
        ingest_body_bytes=int(_env_number("KHIEN_INGEST_BODY_MB", 256) * MiB),
        data_dir=resolved_dir,
        database_url=url,
        host=bind_host,
        port=port or int(os.environ.get("KHIEN_PORT") or 8000),
        cookie_secure=not insecure_ok,
        demo=demo,
        scheduler=os.environ.get("KHIEN_SCHEDULER", "1") != "0",
        scan_concurrency=int(_env_number("KHIEN_SCAN_CONCURRENCY", 2)),
        match_tick_s=int(_env_number("KHIEN_MATCH_TICK_S", 30)),
        scan_max_addresses=int(_env_number("KHIEN_SCAN_MAX_ADDRESSES", 65_536)),
        evidence_max_bytes=int(_env_number("KHIEN_EVIDENCE_MAX_BYTES", 10 * MiB)),
        leader_election=os.environ.get("KHIEN_LEADER_ELECTION", "1") != "0",
        leader_candidate=os.environ.get("KHIEN_LEADER_CANDIDATE", "1") != "0",
        leader_retry_s=_env_number("KHIEN_LEADER_RETRY_S", 5.0),
        leader_check_s=_env_number("KHIEN_LEADER_CHECK_S", 2.0),
        score_every_s=_env_number("KHIEN_SCORE_EVERY_S", 0),
        trusted_proxies=_proxies(os.environ.get("KHIEN_TRUSTED_PROXIES", "")),
        event_keep_days=configured_keep_days(os.environ),
    )


def _proxies(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks; anything else is refused (uvicorn would silently ignore it)."""
    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:  # written the way uvicorn parses them (it wants a network's host bits clear)
            found.append(str(ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)))
        except ValueError:
            raise InvalidInput(f"KHIEN_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return tuple(found)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput(f"{name} must be positive")
    return value
