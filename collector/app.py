"""The collector's FastAPI application: agent API, people API, health and metrics."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from collector.agents.models import Agent
from collector.agents.routes import router as agent_router
from collector.alerts import service as alerts
from collector.alerts.routes import router as alerts_router
from collector.attestations.routes import router as attestations_router
from collector.audit.routes import router as audit_router
from collector.compliance.routes import router as compliance_router
from collector.compliance.service import builtin_checks
from collector.db import Database
from collector.detection import DetectionWorker
from collector.errors import DatabaseUnavailable, KhienError, RateLimited
from collector.exceptions.routes import router as exceptions_router
from collector.findings.routes import router as findings_router
from collector.hosts.routes import router as hosts_router
from collector.incidents.routes import router as incidents_router
from collector.ingest.routes import router as ingest_router
from collector.ingest.worker import IngestWorkers
from collector.metrics import IngestMetrics
from collector.ratelimit import RateLimiter
from collector.scans.routes import router as scans_router
from collector.scheduler import Jobs
from collector.scoring.routes import router as scores_router
from collector.settings import Settings, local_rules_dir
from collector.units.routes import router as units_router
from collector.vulns.routes import router as feeds_router
from rules.detect import DEFAULT_RULES_DIR, load_rules

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    """Build the collector app; the schema must already be at head (``Database.upgrade``)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.detection.start()
        if app.state.jobs is not None:
            app.state.jobs.start()
        yield
        if app.state.jobs is not None:
            app.state.jobs.stop()
        app.state.ingest_workers.close()  # answers what is queued, then stops the threads
        app.state.detection.stop()

    app = FastAPI(title="Khiên", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url)
    app.state.metrics = IngestMetrics()
    app.state.limiter = RateLimiter(rate_per_s=settings.agent_rate_per_s, burst=settings.agent_rate_burst)
    # SQLite has one writer, so one ingest thread; PostgreSQL overlaps database waits across a few.
    app.state.ingest_workers = IngestWorkers(threads=1 if app.state.db.is_sqlite else 4)
    builtin_checks()  # load and validate the compliance checks now: a broken file stops start-up, not ingest
    local = local_rules_dir(settings.data_dir)
    ruleset = load_rules([DEFAULT_RULES_DIR, *([local] if local.is_dir() else [])])
    app.state.detection = DetectionWorker(app.state.db, ruleset, stale_after_s=settings.stale_after_s,
                                          heartbeat_s=settings.heartbeat_interval_s)
    app.state.jobs = Jobs(app.state.db, settings) if settings.scheduler else None
    _install_error_handlers(app)
    for router in (agent_router, ingest_router, hosts_router, units_router, alerts_router, compliance_router,
                   exceptions_router, findings_router, feeds_router, scans_router, scores_router, incidents_router,
                   attestations_router, audit_router):
        app.include_router(router)
    _install_ops_routes(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KhienError)
    async def khien_error(_request: Request, exc: KhienError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return JSONResponse({"detail": f"{loc}: {first['msg']}"}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc.orig)
        return JSONResponse({"detail": "database unavailable"}, status_code=503, headers={"Retry-After": "30"})


def _install_ops_routes(app: FastAPI) -> None:
    registry = app.state.metrics.registry
    dropped = Gauge("khien_agent_reported_dropped_items", "Items agents report they dropped, summed over "
                    "agents' latest heartbeats, by reason", ["reason"], registry=registry)
    alert_gauge = Gauge("khien_alerts", "Stored alerts by severity and status", ["severity", "status"],
                        registry=registry)
    detection = Gauge("khien_detection", "Detection stage: events evaluated, detections, alerts opened and "
                      "folded, errors, state rebuilds, cursor (event id) and lag (s)", ["what"], registry=registry)
    by_rule = Gauge("khien_detections_by_rule", "Detections since start, by rule", ["rule"], registry=registry)

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> JSONResponse:
        try:
            request.app.state.db.check()
        except DatabaseUnavailable as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/metrics", tags=["ops"])
    def metrics(request: Request) -> PlainTextResponse:
        totals: dict[str, int] = {}
        with request.app.state.db.session() as session:
            for hb in session.exec(select(Agent.last_heartbeat).where(Agent.revoked.is_(False))):
                for reason, n in ((hb or {}).get("dropped") or {}).items():
                    totals[reason] = totals.get(reason, 0) + int(n)
            alert_counts = alerts.counts(session)
        for reason, n in totals.items():
            dropped.labels(reason).set(n)
        for (severity, status), n in alert_counts.items():
            alert_gauge.labels(severity, status).set(n)
        stats = request.app.state.detection.stats
        for what in ("events", "detections", "alerts_new", "alerts_folded", "errors", "rebuilds", "cursor", "lag_s"):
            detection.labels(what).set(getattr(stats, what))
        for rule, n in dict(stats.by_rule).items():
            by_rule.labels(rule).set(n)
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
