"""The spool and sender on a disk that fills up: a real tmpfs of 1 MiB, really full (ENOSPC).

What must hold: nothing raises out of the spool for a full disk, every item it could not keep is
counted (``disk_full``) and shows in the stats at once, those counts reach the file as soon as it
takes writes again, an acknowledgement that cannot be written only costs a duplicate resend, and the
heartbeat still reaches the server to report the loss.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.sender import Sender, Transport
from agent.spool import Spool, SpoolUnwritable, read_stats
from agent.state import Credentials
from agent.wire import Item
from tests.agent.fake_server import FakeCollector, in_process_agent
from tests.smallfs import fill, release, tmpfs

MIB = 1024


def item(n: int, pad: int = 0) -> Item:
    return Item("agent.error", {"collector": "test", "error": "x" * pad or f"e{n}", "count": n})


def counts(texts: list[str]) -> list[int]:
    return [json.loads(t)["data"]["count"] for t in texts]


def fill_spool_until_refused(spool: Spool, start: int) -> list[int]:
    """Put items numbered from ``start`` until the full disk refuses one; returns the numbers kept.
    The WAL file may still have room from earlier writes, so the first puts after ``fill`` can work."""
    n = start
    while spool.put(item(n, pad=500)):
        n += 1
        assert n < start + 10_000, "the spool never noticed the full disk"
    return list(range(start, n))


def truncate_wal(path: Path) -> None:
    """Checkpoint the WAL into the database and cut it to zero bytes: the next write needs new space."""
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def test_a_full_disk_costs_counted_items_never_the_spool(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "state", size_kib=MIB) as state:
        spool = Spool(state / "spool.db")
        assert spool.put(item(0))
        fill(state)
        kept = [0, *fill_spool_until_refused(spool, 1)]
        for n in range(10_001, 10_004):
            assert spool.put(item(n, pad=500)) is False
        assert spool.unwritable == "disk_full"
        spool.count_drop("rate_limited:fim", 3)  # a flood-gate flush on the full disk must not raise
        stats = spool.stats()
        assert stats["dropped"] == {"disk_full": 4, "rate_limited:fim": 3}
        assert spool.losses == 7
        # The in-memory depth was put back after the refused transactions: it matches the file.
        on_disk = read_stats(state / "spool.db")
        assert stats["items"] == on_disk["items"] == len(kept) and stats["bytes"] == on_disk["bytes"]
        assert on_disk["dropped"] == {}  # nothing could be written: the counts wait in memory
        with pytest.raises(SpoolUnwritable) as refused:  # a batch id that cannot be recorded is not sent
            spool.next_batch(10, 10**6)
        assert refused.value.reason == "disk_full"

        release(state)
        assert spool.put(item(999))
        assert spool.unwritable is None
        spool.close()
        again = Spool(state / "spool.db")  # the counts went to disk with the first write that worked
        assert again.stats()["dropped"] == {"disk_full": 4, "rate_limited:fim": 3}
        batch = again.next_batch(10_000, 10**9)
        assert counts(batch.items) == [*kept, 999]  # what was kept is intact, in order
        again.close()


def test_an_ack_the_disk_refuses_costs_a_duplicate_resend_not_a_loss(server: FakeCollector, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "state", size_kib=MIB) as state:
        spool = Spool(state / "spool.db")
        spool.put_many(item(n, pad=200) for n in range(20))
        agent_id, secret = server.add_agent()
        sender = Sender(spool, Transport(server.url), Credentials(server=server.url, agent_id=agent_id, secret=secret),
                        batch_max_items=10)
        first = spool.next_batch(10, 10**6)  # assigned while there is room
        truncate_wal(state / "spool.db")
        fill(state)
        result = sender.drain()
        assert result.outcome == "spool_unwritable" and "disk_full" in (result.error or "")
        assert list(server.batches.values()) == [10]  # the server stored it ...
        assert spool.next_batch(10, 10**6) == first  # ... but the agent still holds it, same id, same items
        assert sender.drain().outcome == "spool_unwritable"  # every later tick: no crash, no loss
        release(state)
        result = sender.drain()
        assert result.ok and result.duplicates >= 1 and result.items == 20
        assert sorted(server.batches.values()) == [10, 10]
        assert sorted(counts(server.items)) == list(range(20))  # each item stored exactly once
        assert spool.stats()["dropped"] == {} and spool.stats()["items"] == 0
        spool.close()


def heartbeats(server: FakeCollector) -> list[dict]:
    return [i["data"] for i in map(json.loads, server.items) if i["type"] == "host.heartbeat"]


def test_the_heartbeat_reports_disk_full_losses_directly(server: FakeCollector, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "state", size_kib=2 * MIB) as state, in_process_agent(server, state) as runner:
        assert runner.run_once().ok  # heartbeat and the inventory baseline, through the spool
        fill(state)
        kept = fill_spool_until_refused(runner.spool, 1)
        sent_before = len(heartbeats(server))
        runner.run_once()  # collectors run into the full disk; the heartbeat cannot be spooled
        dropped = runner.spool.stats()["dropped"]
        assert set(dropped) == {"disk_full"} and dropped["disk_full"] >= 1
        assert len(heartbeats(server)) == sent_before + 1  # sent on its own, reporting the loss
        assert heartbeats(server)[-1]["dropped"] == dropped

        release(state)
        assert runner.run_once().ok  # everything kept goes out; the heartbeat is spooled again
        assert runner.spool.stats()["items"] == 0
        assert heartbeats(server)[-1]["dropped"] == dropped
        assert read_stats(state / "spool.db")["dropped"] == dropped
        sent = sorted(i["data"]["count"] for i in map(json.loads, server.items) if i["type"] == "agent.error")
        assert sent == kept
