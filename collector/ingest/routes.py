"""``POST /api/v1/agent/batches``: authenticate, rate-limit, cap, decode, validate, store."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from collector import pipeline
from collector.deps import bearer_token
from collector.errors import InvalidInput, KhienError, PayloadTooLarge, Unauthorized
from collector.ingest.schema import batch_json_schema

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


async def read_capped(request: Request, limit: int, *, take: Callable[[int], None]) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before reading it all; each chunk
    is first taken from the process's body budget (``take`` raises Overloaded when it is spent)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"batch over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"batch over {limit} bytes")
            take(len(chunk))
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer; counted as a rejection, not logged as a server error
        raise InvalidInput("the connection closed before the whole batch arrived") from None
    return b"".join(chunks)


class BatchAccepted(BaseModel):
    accepted: int
    duplicate: bool


# The body is read raw (size cap before parsing, gzip), so its schema is declared rather than inferred.
BATCH_BODY = {"requestBody": {"required": True, "description": "A batch (DESIGN.md §4), gzip-encoded "
                              "(Content-Encoding: gzip) or plain JSON",
                              "content": {"application/json": {"schema": batch_json_schema()}}}}


@router.post("/batches", status_code=202, response_model=BatchAccepted, openapi_extra=BATCH_BODY)
async def post_batch(request: Request) -> JSONResponse:
    state = request.app.state
    metrics, settings = state.metrics, state.settings
    started = time.perf_counter()
    try:
        credential = bearer_token(request)
        if not credential:
            raise Unauthorized("agent credential required")
        # The body counts against the process's budget until it is answered (inflight.py).
        with state.body_budget.hold() as take:
            body = await read_capped(request, settings.max_batch_bytes, take=take)
            # Worked on by the app's ingest threads, which answer queued batches in groups (worker.py).
            result = await state.ingest_workers.submit(_receive, state, credential, body,
                                                       request.headers.get("content-encoding"))
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
    result = pipeline.receive_batch(state.db, credential=credential, body=body, encoding=encoding,
                                    limiter=state.limiter, max_decompressed=state.settings.max_decompressed_bytes)
    if not result.duplicate:
        state.detection.wake()  # committed: evaluate the new events now, not at the next poll
    return result


def _receive_many(calls: list[tuple]) -> list[pipeline.IngestResult | Exception]:
    """``_receive`` for batches queued together (the worker's ``many`` form): one transaction for all."""
    state = calls[0][0]
    answers = pipeline.receive_batches(state.db, requests=[pipeline.BatchRequest(c, b, e) for _s, c, b, e in calls],
                                       limiter=state.limiter, max_decompressed=state.settings.max_decompressed_bytes)
    if any(isinstance(a, pipeline.IngestResult) and not a.duplicate for a in answers):
        state.detection.wake()
    return answers


_receive.many = _receive_many  # type: ignore[attr-defined]
