"""The spool: durable across restarts, capped with counted drops, acks and batch ids that survive a kill."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.spool import Spool, read_stats
from agent.wire import Batch, Item

REPO = Path(__file__).resolve().parents[2]


def item(n: int, pad: int = 0) -> Item:
    return Item("agent.error", {"collector": "test", "error": "x" * pad or f"e{n}", "count": n})


def counts(items: list[str]) -> list[int]:
    return [json.loads(i)["data"]["count"] for i in items]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    s = Spool(tmp_path / "spool.db")
    yield s
    s.close()


def test_survives_reopen(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool.db", max_bytes=600)
    for n in range(10):
        first.put(item(n, pad=50))
    before = first.stats()
    first.close()
    again = Spool(tmp_path / "spool.db", max_bytes=600)
    assert again.stats() == before
    assert before["dropped"]["spool_full"] > 0  # counters are persisted too
    batch = again.next_batch(100, 10**6)
    assert counts(batch.items) == list(range(10 - before["items"], 10))
    again.close()


def test_byte_cap_drops_oldest_and_counts_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1000)
    size = len(json.dumps(item(0, pad=100).to_dict(), separators=(",", ":")))
    for n in range(20):
        spool.put(item(n, pad=100))
    stats = spool.stats()
    kept = 1000 // size
    assert stats["items"] == kept
    assert stats["bytes"] <= 1000
    assert stats["dropped"] == {"spool_full": 20 - kept}
    assert counts(spool.next_batch(100, 10**6).items) == list(range(20 - kept, 20))  # the newest survive
    spool.close()


def test_oversize_item_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_item_bytes=200)
    assert spool.put(item(1, pad=500)) is False
    assert spool.put(item(2)) is True
    assert spool.stats()["dropped"] == {"oversize_item": 1}
    assert spool.stats()["items"] == 1
    spool.close()


def test_unserialisable_item_is_counted_not_raised(spool: Spool) -> None:
    assert spool.put(Item("agent.error", {"bad": object()})) is False
    assert spool.stats()["dropped"] == {"encode_error": 1}


def test_batches_respect_item_and_byte_limits(spool: Spool) -> None:
    for n in range(10):
        spool.put(item(n, pad=100))
    size = len(json.dumps(item(0, pad=100).to_dict(), separators=(",", ":")))
    first = spool.next_batch(4, 10**6)
    assert counts(first.items) == [0, 1, 2, 3]
    spool.ack(first.batch_id)
    second = spool.next_batch(100, size * 3 + 1)
    assert counts(second.items) == [4, 5, 6]
    spool.ack(second.batch_id)
    lone = spool.next_batch(100, 10)  # one item over the byte limit still goes, alone
    assert counts(lone.items) == [7]


def test_pending_batch_is_returned_until_acked(spool: Spool) -> None:
    for n in range(3):
        spool.put(item(n))
    batch = spool.next_batch(2, 10**6)
    spool.put(item(99))
    again = spool.next_batch(100, 10**6)
    assert again == batch  # same id, same agent_time, same items, even with new items queued


def test_ack_removes_only_that_batch(spool: Spool) -> None:
    for n in range(6):
        spool.put(item(n))
    batch = spool.next_batch(3, 10**6)
    assert spool.ack("not-a-batch") == 0
    assert spool.ack(batch.batch_id) == 3
    assert spool.stats()["items"] == 3
    rest = spool.next_batch(100, 10**6)
    assert rest.batch_id != batch.batch_id
    assert counts(rest.items) == [3, 4, 5]


KILL_MID_SEND = """
import os, sys
from pathlib import Path
from agent.spool import Spool
from agent.wire import Batch, Item
spool = Spool(Path(sys.argv[1]))
for n in range(5):
    spool.put(Item("agent.error", {"collector": "t", "error": "e", "count": n}))
batch = spool.next_batch(3, 10**6)
print(batch.batch_id, batch.agent_time, flush=True)
os.kill(os.getpid(), 9)  # killed while the request is in flight: no close, no ack
"""


def test_pending_batch_resent_with_same_id_after_kill(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    proc = subprocess.run([sys.executable, "-c", KILL_MID_SEND, str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9
    batch_id, agent_time = proc.stdout.split()
    spool = Spool(path)
    batch = spool.next_batch(100, 10**6)
    assert (batch.batch_id, batch.agent_time) == (batch_id, agent_time)
    assert counts(batch.items) == [0, 1, 2]
    spool.ack(batch.batch_id)
    assert counts(spool.next_batch(100, 10**6).items) == [3, 4]
    spool.close()


def test_split_halves_a_batch_in_order(spool: Spool) -> None:
    for n in range(5):
        spool.put(item(n))
    batch = spool.next_batch(100, 10**6)
    assert spool.split(batch.batch_id) is True
    first = spool.next_batch(100, 10**6)
    assert first.batch_id != batch.batch_id
    assert counts(first.items) == [0, 1]
    spool.ack(first.batch_id)
    second = spool.next_batch(100, 10**6)
    assert counts(second.items) == [2, 3, 4]
    spool.ack(second.batch_id)
    spool.put(item(9))
    single = spool.next_batch(100, 10**6)
    assert spool.split(single.batch_id) is False


def test_dead_letter_keeps_items_and_counts(spool: Spool) -> None:
    for n in range(4):
        spool.put(item(n))
    batch = spool.next_batch(3, 10**6)
    assert spool.dead_letter(batch.batch_id, "rejected_schema", "items.0.data: bad") == 3
    stats = spool.stats()
    assert stats["items"] == 1
    assert stats["dead_letters"] == 3
    assert stats["dead_letter_reasons"] == {"rejected_schema": 3}
    db = sqlite3.connect(spool.path)
    rows = db.execute("SELECT batch_id, reason, detail, body FROM dead_letters ORDER BY id").fetchall()
    assert [json.loads(r[3])["data"]["count"] for r in rows] == [0, 1, 2]
    assert {r[:3] for r in rows} == {(batch.batch_id, "rejected_schema", "items.0.data: bad")}


def test_read_stats_without_writing(tmp_path: Path) -> None:
    assert read_stats(tmp_path / "absent.db") is None
    spool = Spool(tmp_path / "spool.db")
    spool.put(item(1))
    spool.count_drop("collector_overflow", 2)
    stats = read_stats(tmp_path / "spool.db")
    assert stats["items"] == 1
    assert stats["dropped"] == {"collector_overflow": 2}
    spool.close()


def test_concurrent_puts_and_drain_lose_nothing(spool: Spool) -> None:
    def producer(base: int) -> None:
        for n in range(200):
            spool.put(item(base + n))

    threads = [threading.Thread(target=producer, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    seen: list[int] = []
    while any(t.is_alive() for t in threads) or spool.stats()["items"]:
        batch = spool.next_batch(50, 10**6)
        if batch:
            seen.extend(counts(batch.items))
            spool.ack(batch.batch_id)
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(k * 1000 + n for k in range(4) for n in range(200))


def test_encoded_body_is_exactly_the_wire_batch(spool: Spool) -> None:
    spool.put(Item("agent.error", {"collector": "tiếng việt", "error": "lỗi \"quoted\"", "count": 1}))
    spool.put(Item("host.heartbeat", {"agent_version": "0.1.0", "agent_uptime_s": 1.5}))
    batch = spool.next_batch(100, 10**6)
    reference = Batch(items=batch.decoded(), batch_id=batch.batch_id, agent_time=batch.agent_time)
    body = gzip.decompress(batch.encode())
    assert json.loads(body) == reference.to_dict()
    assert json.loads(body) == json.loads(gzip.decompress(reference.encode()))
