"""The collector's FastAPI application: agent API, people API, health and metrics."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from collector.agents import service as agents
from collector.agents.routes import router as agent_router
from collector.alerts import service as alerts
from collector.alerts.routes import router as alerts_router
from collector.attestations.routes import router as attestations_router
from collector.audit.routes import router as audit_router
from collector.compliance.routes import router as compliance_router
from collector.compliance.service import builtin_checks
from collector.db import Database
from collector.detection import DetectionWorker
from collector.errors import DatabaseUnavailable, KhienError
from collector.events import partitions
from collector.exceptions.routes import router as exceptions_router
from collector.findings.routes import router as findings_router
from collector.hosts.routes import router as hosts_router
from collector.incidents.routes import router as incidents_router
from collector.ingest.inflight import BodyBudget
from collector.ingest.routes import router as ingest_router
from collector.ingest.worker import IngestWorkers
from collector.leader import Elector, LeaderLock, NeverLock, SoleLock, lock_for
from collector.metrics import IngestMetrics
from collector.ratelimit import RateLimiter
from collector.scans.routes import router as scans_router
from collector.scheduler import Jobs
from collector.scoring.routes import router as scores_router
from collector.settings import Settings, local_rules_dir
from collector.types import utcnow
from collector.units.routes import router as units_router
from collector.users.throttle import AuditLogThrottle
from collector.vulns.routes import router as feeds_router
from rules.detect import DEFAULT_RULES_DIR, load_rules

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    """Build the collector app; the schema must already be at head (``Database.upgrade``)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # This month's and the next months' event partitions (PostgreSQL), in every process: cheap when they
        # exist, and an insert never waits for the leader's daily job (rows would land in DEFAULT meanwhile).
        partitions.maintain(app.state.db, now=utcnow())
        if app.state.jobs is not None:
            app.state.jobs.start()  # the per-process job; the leader's jobs wait for the election
        app.state.leadership.start()  # a lone server is leader before its first request
        yield
        app.state.ingest_workers.close()  # answers what is queued, then stops the threads
        app.state.leadership.stop()  # stops the leader's work, then lets a standby take over
        if app.state.jobs is not None:
            app.state.jobs.stop()

    app = FastAPI(title="Khiên", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url)
    app.state.metrics = IngestMetrics()
    app.state.limiter = RateLimiter(rate_per_s=settings.agent_rate_per_s, burst=settings.agent_rate_burst)
    # SQLite has one writer, so one ingest thread; PostgreSQL overlaps database waits across a few.
    app.state.ingest_workers = IngestWorkers(threads=1 if app.state.db.is_sqlite else 4,
                                             max_queue=settings.ingest_queue)
    app.state.body_budget = BodyBudget(settings.ingest_body_bytes)
    builtin_checks()  # load and validate the compliance checks now: a broken file stops start-up, not ingest
    local = local_rules_dir(settings.data_dir)
    ruleset = load_rules([DEFAULT_RULES_DIR, *([local] if local.is_dir() else [])])
    app.state.detection = DetectionWorker(app.state.db, ruleset, stale_after_s=settings.stale_after_s,
                                          heartbeat_s=settings.heartbeat_interval_s)
    app.state.jobs = Jobs(app.state.db, settings) if settings.scheduler else None
    app.state.leadership = _elector(app, settings)
    # Counted in the audit log, so every process behind the proxy shares one count per address.
    app.state.login_throttle = AuditLogThrottle(db=app.state.db)
    _install_error_handlers(app)
    for router in (agent_router, ingest_router, hosts_router, units_router, alerts_router, compliance_router,
                   exceptions_router, findings_router, feeds_router, scans_router, scores_router, incidents_router,
                   attestations_router, audit_router):
        app.include_router(router)
    _install_ops_routes(app)
    return app


def _elector(app: FastAPI, settings: Settings) -> Elector:
    """Of the processes on one database only the leader runs detection (with the stale-agent check) and
    the scheduled jobs (collector/leader.py); the others serve ingest, the API and the console.

    The one detection worker starts again on each election (``app.state.detection`` stays the object
    routes and metrics read); the jobs add and remove the leader's jobs on one scheduler, which
    APScheduler cannot restart once shut down (collector/scheduler.py).
    """
    state = app.state

    def lead() -> None:
        state.detection.start()
        if state.jobs is not None:
            state.jobs.lead()

    def step_down() -> None:
        if state.jobs is not None:
            state.jobs.step_down()
        state.detection.stop()

    if not settings.leader_candidate:
        lock: LeaderLock = NeverLock()
    else:
        lock = lock_for(state.db) if settings.leader_election else SoleLock()
    return Elector(lock, on_elected=lead, on_deposed=step_down, retry_s=settings.leader_retry_s,
                   check_s=settings.leader_check_s)


def _install_error_handlers(app: FastAPI) -> None:
    # Imported here, not at the top: only this function needs them.
    from sqlalchemy.exc import DataError

    from collector.deps import SESSION_COOKIE

    @app.exception_handler(KhienError)
    async def khien_error(_request: Request, exc: KhienError) -> JSONResponse:
        retry_after = getattr(exc, "retry_after", None)  # RateLimited, Overloaded
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return JSONResponse({"detail": f"{loc}: {first['msg']}"}, status_code=422)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot hold (SQLite: an integer past 64 bits; PostgreSQL: past the column's
        # type, a NUL in text) cannot name or become a stored row: bad input, and the transaction rolled back.
        log.info("unstorable value in %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "a value in the request cannot be stored (a number out of range, or a NUL "
                                       "character in text)"}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc.orig)
        return JSONResponse({"detail": "database unavailable"}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(PoolTimeout)
    async def database_busy(_request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed busy past the pool timeout: the same answer as a database down,
        # so agents back off and resend instead of dead-lettering a 500.
        log.error("database pool exhausted: %s", exc)
        return JSONResponse({"detail": "database busy"}, status_code=503, headers={"Retry-After": "30"})

    # The handlers above answer every error as {"detail": "<one line>"}; the OpenAPI schema must say so
    # (FastAPI documents its own 422 list shape, which these handlers never send) and list the errors each
    # operation can answer, so clients and the schema checks in tests/hostile can rely on it.
    error = {"description": "Error",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    credentials = {"agent": {"type": "http", "scheme": "bearer", "description": "<agent_id>.<secret> from enroll"},
                   "api_token": {"type": "http", "scheme": "bearer", "description": "personal API token"},
                   "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE}}
    generate = app.openapi

    def error_codes(path: str, method: str, operation: dict) -> set[int]:
        codes = {401, 403, 422, 503}  # enroll too: a wrong token is 401, a used-up or expired one 403
        body = operation.get("requestBody", {}).get("content", {})
        if body:
            codes.add(400)  # a body that is not JSON / not a form at all (FastAPI's own answer)
        if "{" in path or operation.get("parameters") or body:
            codes.add(404)  # an id or a unit code, in the path, the query or the body, names nothing visible
        if method != "get":
            codes.add(409)
        if path in ("/api/v1/agent/batches", "/api/v1/agent/enroll"):
            codes.add(429)
        if path == "/api/v1/agent/batches" or "multipart/form-data" in body:
            codes.add(413)  # size-capped bodies: batches and evidence files
        return codes

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components.setdefault("schemas", {})["Error"] = {
            "title": "Error", "type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
        components["securitySchemes"] = credentials
        for path, operations in schema["paths"].items():
            if not path.startswith("/api/"):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code in sorted(error_codes(path, method, operation)):
                    if code == 422 or str(code) not in responses:  # FastAPI's own 422 shape is never sent
                        responses[str(code)] = error
                if path == "/api/v1/agent/enroll":
                    continue
                agent = path.startswith("/api/v1/agent/")
                operation["security"] = [{"agent": []}] if agent else [{"api_token": []}, {"session": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def _install_ops_routes(app: FastAPI) -> None:
    registry = app.state.metrics.registry
    # Scrapes run on the thread pool: one at a time sets the gauges and renders them, so a scrape never
    # shows another's half-cleared reasons.
    scrape = threading.Lock()
    dropped = Gauge("khien_agent_reported_dropped_items", "Items agents report they dropped, summed over "
                    "agents' latest heartbeats, by reason", ["reason"], registry=registry)
    alert_gauge = Gauge("khien_alerts", "Stored alerts by severity and status", ["severity", "status"],
                        registry=registry)
    detection = Gauge("khien_detection", "Detection stage: events evaluated, detections, alerts opened and "
                      "folded, errors, state rebuilds, batches fenced off by another worker, cursor (event id) "
                      "and lag (s)", ["what"], registry=registry)
    by_rule = Gauge("khien_detections_by_rule", "Detections since start, by rule", ["rule"], registry=registry)
    leader = Gauge("khien_leader", "1 if this process is the elected leader (runs detection and the scheduled "
                   "jobs), 0 if it stands by", registry=registry)
    elections = Gauge("khien_leader_elections", "Times this process became leader since start", registry=registry)
    job_runs = Gauge("khien_job_runs", "Scheduled runs of the leader's jobs in this process, by outcome: ran, "
                     "already_ran (this tick, by any process), locked (running elsewhere), failed",
                     ["job", "outcome"], registry=registry)

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> JSONResponse:
        role = request.app.state.leadership.role  # leader | standby (docs/scale-out.md)
        try:
            request.app.state.db.check()
        except DatabaseUnavailable as exc:
            return JSONResponse({"status": "error", "database": str(exc), "role": role}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "role": role})

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics(request: Request) -> PlainTextResponse:
        with request.app.state.db.session() as session:
            totals = agents.reported_drops(session)
            alert_counts = alerts.counts(session)
        with scrape:
            dropped.clear()  # a reason no agent reports any more goes, rather than staying at its last value
            for reason, n in totals.items():
                dropped.labels(reason).set(n)
            for (severity, status), n in alert_counts.items():
                alert_gauge.labels(severity, status).set(n)
            stats = request.app.state.detection.stats
            for what in ("events", "detections", "alerts_new", "alerts_folded", "errors", "rebuilds", "fenced",
                         "cursor", "lag_s"):
                detection.labels(what).set(getattr(stats, what))
            for rule, n in dict(stats.by_rule).items():
                by_rule.labels(rule).set(n)
            leadership, jobs = request.app.state.leadership, request.app.state.jobs
            leader.set(1 if leadership.is_leader else 0)
            elections.set(leadership.elections)
            for (job, outcome), n in dict(jobs.runs if jobs is not None else {}).items():
                job_runs.labels(job, outcome).set(n)
            body = generate_latest(registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
