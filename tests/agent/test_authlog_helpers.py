"""Helpers shared by the authlog tests."""

from __future__ import annotations

import json
from pathlib import Path

from agent.wire import Batch, Item
from collector.ingest.schema import parse_batch

FIXTURES = Path(__file__).parent / "fixtures" / "authlog"


def validate(items: list[Item]) -> None:
    """Every item passes the collector's validators (in batches under the 5,000-item cap)."""
    for start in range(0, len(items), 5000):
        chunk = items[start:start + 5000]
        batch = parse_batch(json.dumps(Batch(items=[i.to_dict() for i in chunk]).to_dict()).encode())
        assert len(batch.items) == len(chunk)
