"""The ``file.change`` validator: what FIM declares and sends is accepted; hostile shapes are not."""

from __future__ import annotations

import json

import pytest

from agent.collectors.fim import FimCollector
from agent.wire import Batch, Item
from collector.errors import InvalidInput
from collector.ingest.items.fim import FileChange
from collector.ingest.schema import item_data_models, parse_batch


def body(data: dict) -> bytes:
    return json.dumps(Batch(items=[Item("file.change", data).to_dict()]).to_dict()).encode()


def test_declared_fields_are_the_validator_fields():
    models = item_data_models()
    assert models["file.change"] is FileChange
    for item_type, fields in FimCollector.fields.items():
        assert set(fields) <= set(models[item_type].model_fields), item_type
    assert set(FimCollector.fields["file.change"]) == set(FileChange.model_fields)


def test_summary_shape_is_accepted():
    data = {"path": "/usr/lib", "action": "summary", "scan": "realtime", "count": 3000,
            "sample_paths": ["/usr/lib/a"] * 20, "reason": "burst", "web_root": False}
    assert parse_batch(body(data)).items[0].data.count == 3000


@pytest.mark.parametrize(("patch", "field"), [
    ({"changed_attributes": {"owner": {"old": 1, "new": 2}}}, "changed_attributes"),
    ({"changed_attributes": {"size": {"old": 1, "new": 2, "evil": 3}}}, "changed_attributes"),
    ({"sample_paths": ["/x"] * 21}, "sample_paths"),
    ({"path": "/" + "a" * 4096}, "path"),
    ({"action": "renamed"}, "action"),
    ({"mode": "rwxr-xr-x"}, "mode"),
    ({"sha256": "abc"}, "sha256"),
    ({"mtime": "2026-01-01T00:00:00"}, "mtime"),
    ({"content": "secret"}, "content"),
])
def test_hostile_or_malformed_items_are_refused(patch, field):
    data = {"path": "/etc/hosts", "action": "modified", "kind": "file", "scan": "rescan"} | patch
    with pytest.raises(InvalidInput, match=field):
        parse_batch(body(data))
