"""Ingest edge: body size caps, gzip decoding with a bomb guard, and the idempotency record."""

from __future__ import annotations

import zlib

from sqlmodel import Session

from collector.errors import InvalidInput, PayloadTooLarge
from collector.ingest.models import IngestBatch
from collector.types import utcnow

# Inflate this much at a time: a bomb is refused once it passes the cap, having cost the cap plus one step.
INFLATE_STEP = 1 << 20


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
    parts: list[bytes] = []
    size, pending = 0, body
    try:
        while True:
            part = inflater.decompress(pending, INFLATE_STEP)
            size += len(part)
            if size > max_decompressed:
                raise PayloadTooLarge(f"batch expands beyond {max_decompressed} bytes")
            parts.append(part)
            pending = inflater.unconsumed_tail
            if inflater.eof or not pending:
                break
        part = inflater.flush()  # what the last step's input still holds: less than one deflate match
    except zlib.error as exc:
        raise InvalidInput(f"invalid gzip body: {exc}") from None
    if size + len(part) > max_decompressed:
        raise PayloadTooLarge(f"batch expands beyond {max_decompressed} bytes")
    if not inflater.eof:
        raise InvalidInput("invalid gzip body: truncated stream")
    if inflater.unused_data:  # a second member or garbage: the agent sends one member, so this was not it
        raise InvalidInput("invalid gzip body: data after the end of the gzip stream")
    return b"".join([*parts, part])


def record(session: Session, *, agent_id: str, batch_id: str, item_count: int) -> bool:
    """Claim ``(agent_id, batch_id)``; False if it was claimed before (a replay: store nothing).

    No error on a replay, so several batches can share a transaction (pipeline.receive_batches); a
    claim racing one from another transaction waits for it, then finds it claimed or free.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = IngestBatch.__table__
    claimed = conn.execute(insert(table).values(
        agent_id=agent_id, batch_id=batch_id, item_count=item_count, received_at=utcnow())
        .on_conflict_do_nothing().returning(table.c.id))  # rowcount is -1 with RETURNING on psycopg
    return claimed.first() is not None
