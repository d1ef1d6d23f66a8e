"""The heartbeat carries exactly HEARTBEAT_FIELDS and passes the collector's own validator."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import psutil

from agent import __version__
from agent.collectors.base import Collector, ListSink
from agent.heartbeat import HeartbeatCollector
from agent.spool import Spool
from agent.wire import HEARTBEAT_FIELDS, Batch, Item
from collector.ingest.schema import Heartbeat, parse_batch


class Broken(Collector):
    name = "broken"

    def collect(self):
        raise RuntimeError("disk on fire")


def test_heartbeat_fields_and_values(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_item_bytes=300)
    spool.put(Item("agent.error", {"collector": "x", "error": "y" * 400}))  # oversize: counted drop
    spool.put(Item("agent.error", {"collector": "x", "error": "y"}))
    broken = Broken()
    broken.run(ListSink())
    heartbeat = HeartbeatCollector(spool.stats, lambda: [broken, heartbeat])
    sink = ListSink()
    heartbeat.run(sink)
    assert [i.type for i in sink.items] == ["host.heartbeat"]
    data = sink.items[0].data
    assert tuple(data) == HEARTBEAT_FIELDS
    assert data["agent_version"] == __version__
    assert data["spool_items"] == 1 and data["spool_bytes"] > 0
    assert data["dropped"] == {"oversize_item": 1}
    assert data["dead_letters"] == 0
    assert data["platform"] == "linux"
    assert abs(data["rss_bytes"] - psutil.Process(os.getpid()).memory_info().rss) < 50 * 1024 * 1024
    assert data["cpu_percent"] >= 0 and data["agent_uptime_s"] >= 0 and data["host_uptime_s"] > 0
    assert data["collectors"]["broken"]["status"] == "error"
    assert "disk on fire" in data["collectors"]["broken"]["last_error"]
    assert set(data["collectors"]) == {"broken", "heartbeat"}
    Heartbeat.model_validate(data)  # the collector's validator: strict, unknown fields forbidden
    parse_batch(_raw(sink.items))  # and as a whole batch on the wire
    spool.close()


def _raw(items: list[Item]) -> bytes:
    return gzip.decompress(Batch(items=[i.to_dict() for i in items]).encode())


def test_heartbeat_declares_its_fields_and_platforms() -> None:
    heartbeat = HeartbeatCollector(lambda: {})
    assert heartbeat.fields == {"host.heartbeat": HEARTBEAT_FIELDS}
    assert heartbeat.platforms == {"linux", "windows", "darwin"}
    assert set(heartbeat.snapshot()["collectors"]) == {"heartbeat"}
    Heartbeat.model_validate(heartbeat.snapshot())
