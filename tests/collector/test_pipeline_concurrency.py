"""The same batch delivered concurrently (a retry racing the original) is stored exactly once."""

from __future__ import annotations

import json
import threading

from sqlalchemy import func
from sqlmodel import select

from collector import pipeline
from collector.agents.models import Agent
from collector.events.models import Event
from collector.ingest.models import IngestBatch
from collector.ingest.schema import parse_batch
from tests.collector import helpers as h


def test_concurrent_duplicates_store_once(client, db, enrolled):
    with db.session() as s:
        agent = s.get(Agent, enrolled["agent_id"])
    errors = [{"type": "agent.error", "ts": h.now_iso(), "data": {"collector": "c", "error": f"e{i}"}}
              for i in range(50)]
    batch = parse_batch(json.dumps(h.batch(errors)).encode())
    results: list[pipeline.IngestResult] = []
    start = threading.Barrier(4)

    def deliver() -> None:
        start.wait()
        results.append(pipeline.ingest_batch(db, agent=agent, batch=batch))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(IngestBatch)).one() == 1
        assert s.exec(select(func.count()).select_from(Event)).one() == 50
