"""What agents report they dropped, summed in the database for /metrics: live agents only, hostile
shapes ignored, and a bounded set of agent-chosen reason labels."""

from __future__ import annotations

from sqlalchemy import update

from collector.agents import service as agents
from collector.agents.models import Agent
from tests.collector import helpers as h


def enroll(client, db, n: int) -> list[dict]:
    token = h.enroll_token(db, max_uses=n)
    out = []
    for i in range(n):
        body = client.post("/api/v1/agent/enroll",
                           json={"token": token, **h.identity(machine_id=f"{i:032x}", hostname=f"web{i:02d}")}).json()
        body["headers"] = h.batch_headers(body)
        out.append(body)
    return out


def report(client, agent: dict, dropped: dict[str, int]) -> None:
    resp = client.post("/api/v1/agent/batches", content=h.gz(h.batch([h.heartbeat(dropped=dropped)])),
                       headers=agent["headers"])
    assert resp.status_code == 202, resp.text


def set_heartbeat(db, agent_id: str, heartbeat) -> None:
    """A stored heartbeat the ingest schema would refuse today (an older server's, or written by hand)."""
    with db.transaction() as s:
        s.exec(update(Agent).where(Agent.id == agent_id).values(last_heartbeat=heartbeat))


def drops_metric(client) -> dict[str, float]:
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("khien_agent_reported_dropped_items{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def test_drops_are_summed_over_live_agents_and_hostile_shapes_count_nothing(client, db):
    a, b, revoked, listed, texted, _silent = enroll(client, db, 6)
    report(client, a, {"spool_full": 5, "rate_limited:authlog": 2, "huge": 2**63 - 1})
    report(client, b, {"spool_full": 7})
    report(client, revoked, {"spool_full": 1000})
    with db.transaction() as s:
        s.exec(update(Agent).where(Agent.id == revoked["agent_id"]).values(revoked=True))
    set_heartbeat(db, listed["agent_id"], {"dropped": [40, 50]})
    set_heartbeat(db, texted["agent_id"], {"dropped": {"spool_full": "9", "disk_full": None, "huge": 2**63 - 1}})
    with db.session() as s:
        totals = agents.reported_drops(s)
    # A sum past 64 bits is no error (PostgreSQL sums numeric; SQLite's total() is a float).
    assert float(totals.pop("huge")) == float(2**64 - 2)
    assert totals == {"spool_full": 12, "rate_limited:authlog": 2}
    assert drops_metric(client) == {"spool_full": 12.0, "rate_limited:authlog": 2.0, "huge": float(2**64 - 2)}


def test_only_the_largest_reasons_are_named_and_a_reason_no_longer_reported_goes(client, db):
    a, b = enroll(client, db, 2)
    report(client, a, {f"r{i:02d}": 100 + i for i in range(30)})
    report(client, b, {f"s{i:02d}": i + 1 for i in range(30)})  # 1..30: the smallest fall under "other"
    with db.session() as s:
        totals = agents.reported_drops(s, top=agents.REPORTED_DROP_REASONS)
    assert len(totals) == agents.REPORTED_DROP_REASONS + 1
    named_small = [f"s{i:02d}" for i in range(10, 30)]  # the 20 largest of b's, with a's 30: 50 names
    assert set(totals) == {f"r{i:02d}" for i in range(30)} | set(named_small) | {"other"}
    assert totals["other"] == sum(range(1, 11)) and sum(totals.values()) == sum(range(100, 130)) + sum(range(1, 31))
    assert len(drops_metric(client)) == agents.REPORTED_DROP_REASONS + 1

    report(client, a, {"spool_full": 3})
    report(client, b, {})
    assert drops_metric(client) == {"spool_full": 3.0}
