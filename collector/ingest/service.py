"""Ingest edge: body size caps, gzip decoding with a bomb guard, and the idempotency record."""

from __future__ import annotations

import zlib

from sqlalchemy import insert
from sqlmodel import Session

from collector.errors import InvalidInput, PayloadTooLarge
from collector.ingest.models import IngestBatch
from collector.types import utcnow


def decode_body(body: bytes, *, content_encoding: str | None, max_decompressed: int) -> bytes:
    """The JSON bytes of a request body; gzip is inflated in bounded steps so a bomb cannot expand."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > max_decompressed:
            raise PayloadTooLarge("batch too large")
        return body
    if encoding != "gzip":
        raise InvalidInput(f"unsupported Content-Encoding: {encoding!r} (use gzip)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_decompressed + 1)
        if len(out) > max_decompressed or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"batch expands beyond {max_decompressed} bytes")
        out += inflater.flush()
    except zlib.error as exc:
        raise InvalidInput(f"invalid gzip body: {exc}") from None
    if len(out) > max_decompressed:
        raise PayloadTooLarge(f"batch expands beyond {max_decompressed} bytes")
    if not inflater.eof:
        raise InvalidInput("invalid gzip body: truncated stream")
    return out


def record(session: Session, *, agent_id: str, batch_id: str, item_count: int) -> None:
    """Claim ``(agent_id, batch_id)``: IntegrityError (unique constraint) if it was claimed before."""
    session.connection().execute(insert(IngestBatch.__table__).values(
        agent_id=agent_id, batch_id=batch_id, item_count=item_count, received_at=utcnow()))
