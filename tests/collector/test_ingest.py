"""Batch ingest: idempotency, all-or-nothing, and every kind of bad input refused without writes."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from collector import pipeline
from collector.agents.models import Agent
from collector.errors import Forbidden
from collector.events.models import Event
from collector.hosts.models import Host, InventoryRow
from collector.ingest.models import IngestBatch
from collector.ratelimit import RateLimiter
from tests.collector import helpers as h


def counts(db) -> tuple[int, int, int]:
    with db.session() as s:
        return tuple(s.exec(select(func.count()).select_from(t)).one() for t in (IngestBatch, Event, InventoryRow))


def post(client, enrolled, payload, **headers):
    body = payload if isinstance(payload, bytes) else h.gz(payload)
    return client.post("/api/v1/agent/batches", content=body, headers=enrolled["headers"] | headers)


def test_batch_is_stored_and_a_replay_writes_nothing(client, db, enrolled):
    payload = h.batch([h.heartbeat(spool_items=3), h.inventory({"packages": [h.PKG], "listening_ports": [h.PORT]}),
                       {"type": "agent.error", "ts": h.now_iso(), "data": {"collector": "x", "error": "boom"}}])
    resp = post(client, enrolled, payload)
    assert resp.status_code == 202 and resp.json() == {"accepted": 3, "duplicate": False}
    before = counts(db)
    assert before == (1, 1, 2)  # the agent.error became an event; two inventory rows
    resp = post(client, enrolled, payload)
    assert resp.json() == {"accepted": 0, "duplicate": True}
    assert counts(db) == before
    with db.session() as s:
        agent = s.get(Agent, enrolled["agent_id"])
        host = s.get(Host, enrolled["host_id"])
    assert agent.last_heartbeat["spool_items"] == 3 and host.last_seen is not None
    metrics = client.get("/metrics").text
    assert "khien_ingest_duplicate_batches_total 1.0" in metrics
    assert 'khien_ingest_items_total{type="inventory.snapshot"} 1.0' in metrics


def test_malformed_json_wrong_schema_and_unknown_fields_are_422(client, db, enrolled):
    resp = post(client, enrolled, gzip.compress(b'{"schema": 1, "items": ['))
    assert resp.status_code == 422 and "malformed JSON" in resp.json()["detail"]
    resp = post(client, enrolled, h.batch([h.heartbeat()], schema=2))
    assert resp.status_code == 422 and "unsupported version 2" in resp.json()["detail"]
    resp = post(client, enrolled, h.batch([h.heartbeat(surprise=1)]))
    assert resp.status_code == 422 and "items.0.host.heartbeat.data.surprise" in resp.json()["detail"]
    resp = post(client, enrolled, h.batch([{"type": "shell.exec", "ts": h.now_iso(), "data": {}}]))
    assert resp.status_code == 422 and "items.0" in resp.json()["detail"]
    long_name = dict(h.PKG, version="1" * 300)
    resp = post(client, enrolled, h.batch([h.inventory({"packages": [long_name]})]))
    assert resp.status_code == 422 and "packages.rows.0.version" in resp.json()["detail"]
    assert counts(db) == (0, 0, 0)
    assert 'khien_ingest_rejections_total{reason="InvalidInput"} 5.0' in client.get("/metrics").text


def test_one_bad_item_rejects_the_whole_batch(client, db, enrolled):
    good = h.inventory({"packages": [h.PKG]})
    bad = {"type": "host.heartbeat", "ts": "yesterday", "data": {"agent_version": "1", "agent_uptime_s": 1}}
    assert post(client, enrolled, h.batch([good, bad])).status_code == 422
    assert counts(db) == (0, 0, 0)


def test_gzip_bomb_and_oversized_bodies_are_413(client, db, enrolled, settings):
    bomb = gzip.compress(b'{"schema":1,"pad":"' + b"A" * (settings.max_decompressed_bytes + 10) + b'"}')
    assert len(bomb) < settings.max_batch_bytes  # small on the wire, huge when inflated
    assert post(client, enrolled, bomb).status_code == 413
    too_big = b"x" * (settings.max_batch_bytes + 1)
    assert post(client, enrolled, too_big).status_code == 413
    assert post(client, enrolled, b"not gzip at all").status_code == 422
    assert counts(db) == (0, 0, 0)


def test_bad_and_revoked_credentials(client, db, enrolled):
    payload = h.batch([h.heartbeat()])
    bad = {"Authorization": f"Bearer {enrolled['agent_id']}.wrong-secret"}
    assert post(client, enrolled, payload, **bad).status_code == 401
    assert post(client, enrolled, payload, Authorization="Bearer garbage").status_code == 401
    assert client.post("/api/v1/agent/batches", content=h.gz(payload)).status_code == 401
    with db.transaction() as s:
        s.get(Agent, enrolled["agent_id"]).revoked = True
    assert post(client, enrolled, payload).status_code == 403
    assert counts(db) == (0, 0, 0)


def test_agent_cannot_write_inventory_for_another_host(client, db, enrolled):
    other = h.identity(machine_id="f" * 32, hostname="someone-else")
    resp = post(client, enrolled, h.batch([h.inventory({"identity": [other], "packages": [h.PKG]})]))
    assert resp.status_code == 403 and "identity" in resp.json()["detail"]
    assert counts(db) == (0, 0, 0)
    own = h.identity()
    assert post(client, enrolled, h.batch([h.inventory({"identity": [own]})])).status_code == 202


def test_rate_limit_answers_429_with_retry_after(client, db, enrolled):
    limiter = client.app.state.limiter
    limiter.burst, limiter.rate = 2, 0.5
    limiter._buckets.clear()
    codes = [post(client, enrolled, h.batch([h.heartbeat()])).status_code for _ in range(3)]
    assert codes[:2] == [202, 202] and codes[2] == 429
    resp = post(client, enrolled, h.batch([h.heartbeat()]))
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1


def test_health_and_metrics(client, db):
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "role": "leader"}
    assert "khien_ingest_seconds_bucket" in client.get("/metrics").text


def test_batch_ids_are_per_agent(client, db, enrolled):
    payload = h.batch([h.heartbeat()], batch_id=str(uuid.uuid4()))
    assert post(client, enrolled, payload).json()["duplicate"] is False
    second = client.post("/api/v1/agent/enroll", json={"token": h.enroll_token(db), **h.identity("e" * 32)}).json()
    headers = {"Authorization": f"Bearer {second['agent_id']}.{second['secret']}"}
    assert post(client, enrolled, payload, **headers).json()["duplicate"] is False
    body = json.loads(gzip.decompress(h.gz(payload)))
    assert body["batch_id"] == payload["batch_id"]


def test_patch_status_is_stored_with_the_os_end_of_life_judged_by_the_collector(client, db, enrolled):
    os_row = {"platform": "linux", "id": "debian", "version_id": "10", "pretty_name": "Debian GNU/Linux 10"}
    patch = {"type": "patch.status", "ts": "2026-11-22T00:00:00+00:00", "data": {
        "manager": "apt", "pending": [], "pending_count": 0, "security_count": 0, "reboot_required": False}}
    assert post(client, enrolled, h.batch([h.inventory({"os": [os_row]}), patch])).status_code == 202
    with db.session() as s:
        stored = s.exec(select(Event).where(Event.type == "patch.status")).one()
    assert stored.data["manager"] == "apt"
    assert stored.data["os_eol"]["status"] == "eol" and stored.data["os_eol"]["days_left"] < 0


def test_ingest_records_the_local_day_a_host_reported_once(client, db, enrolled):
    """A1 counts the days each host reported: the first batch of a local day marks it, later ones add nothing."""
    from collector.scoring.activity import local_day
    from collector.scoring.models import HostActivity

    for _ in range(2):
        assert post(client, enrolled, h.batch([h.heartbeat()])).status_code == 202
        with db.transaction() as s:  # let the next batch be judged a new report, not within the 5 s guard
            agent = s.get(Agent, enrolled["agent_id"])
            agent.last_seen_at = agent.last_seen_at - timedelta(days=1)
    with db.session() as s:
        days = s.exec(select(HostActivity.host_id, HostActivity.unit_id, HostActivity.day)).all()
    with db.session() as s:
        host = s.get(Host, enrolled["host_id"])
    assert days == [(host.id, host.unit_id, local_day(host.last_seen))]


def test_last_seen_is_kept_to_the_minute_but_a_new_local_day_always_counts(client, db, enrolled):
    """Two batches 20 s apart rewrite last-seen once; the one 10 s after local midnight marks the new day."""
    from datetime import datetime

    from collector import pipeline
    from collector.scoring.activity import LOCAL_TZ
    from collector.scoring.models import HostActivity

    def days() -> set:
        with db.session() as s:
            return set(s.exec(select(HostActivity.day).where(HostActivity.host_id == enrolled["host_id"])).all())

    midnight = datetime(2026, 3, 2, tzinfo=LOCAL_TZ)
    with db.transaction() as s:
        s.get(Agent, enrolled["agent_id"]).last_seen_at = midnight - timedelta(minutes=5)
    for at in (midnight - timedelta(seconds=30), midnight - timedelta(seconds=10), midnight + timedelta(seconds=10)):
        assert midnight.date() not in days()
        with db.transaction() as s:
            pipeline._mark_seen(s, agent=s.get(Agent, enrolled["agent_id"]), at=at)
        with db.session() as s:
            seen = s.get(Agent, enrolled["agent_id"]).last_seen_at
        # within the minute (the second batch) last-seen is not rewritten; across midnight it is
        assert seen == (midnight - timedelta(seconds=30) if at == midnight - timedelta(seconds=10) else at)
    assert midnight.date() in days()


def test_an_overloaded_server_answers_503_with_retry_after_and_stores_nothing(client, db, enrolled):
    from collector.ingest.worker import IngestWorkers

    busy = IngestWorkers(threads=1, max_queue=0)  # every batch finds the queue full
    normal, client.app.state.ingest_workers = client.app.state.ingest_workers, busy
    try:
        resp = post(client, enrolled, h.batch([h.heartbeat()]))
    finally:
        client.app.state.ingest_workers = normal
        busy.close()
    assert resp.status_code == 503 and 10 <= int(resp.headers["retry-after"]) <= 40
    assert "busy" in resp.json()["detail"]
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(IngestBatch)).one() == 0
    assert post(client, enrolled, h.batch([h.heartbeat()])).status_code == 202  # and it is taken later


def test_batches_received_together_answer_each_alone_and_none_is_stored_in_part(db, enrolled):
    """The ingest threads receive queued batches in one transaction (pipeline.receive_batches). Each
    still gets its own answer: stored, a replay (even of a batch in the same group), refused before
    writing (credential, malformed), or refused after writing began (a foreign identity, which fails
    the shared transaction, so each is received again alone and that one stores nothing)."""
    credential = enrolled["headers"]["Authorization"].removeprefix("Bearer ")
    first, second = h.batch([h.heartbeat(spool_items=1)]), h.batch([failure_item("alice"), failure_item("bob")])
    foreign = h.batch([h.inventory({"identity": [h.identity(machine_id="f" * 32)], "packages": [h.PKG]})])

    def request(payload, cred=credential):
        return pipeline.BatchRequest(cred, h.gz(payload), "gzip")

    limiter = RateLimiter(rate_per_s=1000, burst=1000)
    answers = pipeline.receive_batches(db, limiter=limiter, max_decompressed=1 << 20, requests=[
        request(first), request(second), request(second), request(first, cred=f"{enrolled['agent_id']}.wrong"),
        request({"not": "a batch"})])
    assert [type(a).__name__ for a in answers] == ["IngestResult", "IngestResult", "IngestResult", "Unauthorized",
                                                   "InvalidInput"]
    assert [(a.accepted, a.duplicate) for a in answers[:3]] == [(1, False), (2, False), (0, True)]
    assert counts(db) == (2, 2, 0)

    answers = pipeline.receive_batches(db, limiter=limiter, max_decompressed=1 << 20, requests=[
        request(h.batch([failure_item("carol")])), request(foreign), request(first)])
    assert isinstance(answers[0], pipeline.IngestResult) and answers[0].accepted == 1
    assert isinstance(answers[1], Forbidden) and "identity" in str(answers[1])
    assert answers[2] == pipeline.DUPLICATE
    assert counts(db) == (3, 3, 0)  # carol's batch alone; nothing of the foreign inventory
    with db.session() as s:
        users = sorted(e.data["user"] for e in s.exec(select(Event).where(Event.type == "auth.failure")))
    assert users == ["alice", "bob", "carol"]


def failure_item(user: str) -> dict:
    return {"type": "auth.failure", "ts": h.now_iso(),
            "data": {"action": "failed_password", "outcome": "failure", "user": user, "source_ip": "203.0.113.9",
                     "raw": f"Failed password for {user}"}}
