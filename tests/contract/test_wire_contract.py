"""The agent's wire format against the collector's validators — the one place the two meet."""

from __future__ import annotations

import pytest

from agent.collectors.authlog import AuthLogCollector
from agent.collectors.base import ListSink
from agent.collectors.fim import FimCollector
from agent.collectors.inventory import InventoryCollector
from agent.collectors.netwatch import NetWatchCollector
from agent.collectors.patches import PatchCollector, WindowsPatchCollector
from agent.heartbeat import HeartbeatCollector
from agent.wire import HEARTBEAT_FIELDS, INVENTORY_SECTIONS, ITEM_TYPES, SCHEMA_VERSION, SECTION_FIELDS, Batch, Item
from collector.errors import InvalidInput
from collector.ingest import schema
from collector.ingest.service import decode_body


def test_field_lists_match_the_validators():
    assert SCHEMA_VERSION == schema.SCHEMA_VERSION
    assert ITEM_TYPES == schema.ITEM_TYPES == set(schema.item_data_models())
    assert tuple(schema.row_models()) == INVENTORY_SECTIONS
    for section, model in schema.row_models().items():
        assert tuple(model.model_fields) == SECTION_FIELDS[section], section
    assert tuple(schema.Heartbeat.model_fields) == HEARTBEAT_FIELDS


@pytest.mark.parametrize("collector_cls", [InventoryCollector, HeartbeatCollector, PatchCollector,
                                           WindowsPatchCollector, AuthLogCollector, FimCollector,
                                           NetWatchCollector])
def test_each_collector_declares_fields_the_collector_accepts(collector_cls):
    models = schema.item_data_models()
    for item_type, fields in collector_cls.fields.items():
        assert item_type in models, item_type
        assert set(fields) <= set(models[item_type].model_fields), (item_type, fields)


def test_what_the_agent_sends_from_this_host_passes_the_collector():
    sink = ListSink()
    inventory = InventoryCollector()
    heartbeat = HeartbeatCollector(lambda: {"items": 3, "bytes": 1024, "dropped": {"spool_full": 2}},
                                   lambda: [inventory])
    inventory.run(sink)
    heartbeat.run(sink)
    sink.emit(Item("agent.error", {"collector": "inventory", "error": "PermissionError: /etc/shadow", "count": 1}))
    assert [i.type for i in sink.items] == ["inventory.snapshot", "host.heartbeat", "agent.error"]
    body = Batch(items=[i.to_dict() for i in sink.items]).encode()
    batch = schema.parse_batch(decode_body(body, content_encoding="gzip", max_decompressed=50 << 20))
    snapshot = batch.items[0].data
    assert snapshot.full is True
    assert snapshot.sections.packages.rows and snapshot.sections.os.rows[0].platform == "linux"
    assert batch.items[1].data.dropped == {"spool_full": 2}


def test_the_validators_reject_what_the_agent_must_never_send():
    rows = [{"name": "root", "uid": 0, "gid": 0, "password_status": "set", "hash": "$6$x$y"}]
    body = Batch(items=[Item("inventory.snapshot", {"full": True, "sections": {
        "users": {"hash": "0" * 64, "rows": rows}}}).to_dict()]).encode()
    with pytest.raises(InvalidInput, match=r"users\.rows\.0\.hash"):
        schema.parse_batch(decode_body(body, content_encoding="gzip", max_decompressed=50 << 20))
