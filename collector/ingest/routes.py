"""``POST /api/v1/agent/batches``: authenticate, rate-limit, cap, decode, validate, store."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from collector import pipeline
from collector.agents import service as agents
from collector.deps import bearer_token
from collector.errors import KhienError, PayloadTooLarge, Unauthorized
from collector.ingest import service as ingest
from collector.ingest.schema import parse_batch

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"batch over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"batch over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/batches", status_code=202)
async def post_batch(request: Request) -> JSONResponse:
    state = request.app.state
    metrics, settings = state.metrics, state.settings
    started = time.perf_counter()
    try:
        credential = bearer_token(request)
        if not credential:
            raise Unauthorized("agent credential required")
        body = await read_capped(request, settings.max_batch_bytes)
        # Batches are worked on by the app's few dedicated ingest threads, one hop per request:
        # under one GIL, a pool of dozens of threads convoys behind the database writer and cost a
        # third of the throughput in bench/ingest.py.
        result = await asyncio.get_running_loop().run_in_executor(
            state.ingest_executor, _receive, state, credential, body, request.headers.get("content-encoding"))
    except KhienError as exc:
        metrics.rejections.labels(type(exc).__name__).inc()
        raise
    if result.duplicate:
        metrics.duplicates.inc()
    else:
        metrics.batches.inc()
        for type_, n in result.by_type.items():
            metrics.items.labels(type_).inc(n)
    metrics.latency.observe(time.perf_counter() - started)
    return JSONResponse({"accepted": result.accepted, "duplicate": result.duplicate}, status_code=202)


def _receive(state, credential: str, body: bytes, encoding: str | None) -> pipeline.IngestResult:
    """Authenticate, rate-limit, decode, validate and store one batch (in a worker thread)."""
    db, settings = state.db, state.settings
    with db.session() as session:
        agent = agents.authenticate(session, credential=credential)
    state.limiter.take(agent.id)
    raw = ingest.decode_body(body, content_encoding=encoding, max_decompressed=settings.max_decompressed_bytes)
    return pipeline.ingest_batch(db, agent=agent, batch=parse_batch(raw))
