"""Agent-facing enrollment and configuration (``/api/v1/agent``)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from collector.agents import service as agents
from collector.agents.models import Agent
from collector.deps import DbDep, MetricsDep, SessionDep, SettingsDep, bearer_token, client_ip
from collector.errors import KhienError, Unauthorized
from collector.ingest.fields import Mac, Name, Str

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


class EnrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    hostname: Name
    machine_id: Str | None = None
    product_uuid: Str | None = None
    macs: Annotated[list[Mac], Field(max_length=64)] = []
    agent_version: Str | None = None
    platform: Str | None = None


class EnrollOut(BaseModel):
    agent_id: str
    secret: str
    host_id: int
    unit: str


def current_agent(request_token: Annotated[str | None, Depends(bearer_token)], session: SessionDep) -> Agent:
    if not request_token:
        raise Unauthorized("agent credential required")
    return agents.authenticate(session, credential=request_token)


_throttle_lock = threading.Lock()


def enrollment_throttle(request: Request) -> agents.EnrollmentThrottle:
    """The app's per-address count of refused enrollments (one per app, created on first use)."""
    state = request.app.state
    with _throttle_lock:
        throttle = getattr(state, "enrollment_throttle", None)
        if throttle is None:
            throttle = state.enrollment_throttle = agents.EnrollmentThrottle()
    return throttle


@router.post("/enroll", status_code=201, response_model=EnrollOut)
def enroll(body: EnrollIn, request: Request, db: DbDep, metrics: MetricsDep) -> EnrollOut:
    identity = body.model_dump(include={"hostname", "machine_id", "product_uuid", "macs"})
    try:
        with enrollment_throttle(request).attempt(client_ip(request)), db.transaction() as session:
            result = agents.enroll(session, token=body.token, identity=identity, agent_version=body.agent_version)
    except KhienError as exc:  # refused (unauthorized, forbidden) or throttled (ratelimited)
        metrics.enrollments.labels(type(exc).__name__.lower()).inc()
        raise
    metrics.enrollments.labels("ok").inc()
    return EnrollOut(agent_id=result.agent_id, secret=result.secret, host_id=result.host_id, unit=result.unit_code)


@router.get("/config")
def config(agent: Annotated[Agent, Depends(current_agent)], settings: SettingsDep) -> dict:
    return agents.agent_config(heartbeat_interval_s=settings.heartbeat_interval_s,
                               inventory_interval_s=settings.inventory_interval_s,
                               send_interval_s=settings.send_interval_s)
