"""Helpers shared by the FIM tests (no tests here): a collector on temp dirs, runs validated by the schema."""

from __future__ import annotations

import json
import time
from pathlib import Path

from agent.collectors.base import ListSink
from agent.collectors.fim import FimCollector
from agent.wire import Batch, Item
from collector.ingest.schema import parse_batch


def make(tmp_path: Path, **kwargs) -> tuple[FimCollector, Path]:
    """A collector watching ``tmp_path/w`` with its state in ``tmp_path/state``; a whole rescan every run."""
    watched = tmp_path / "w"
    watched.mkdir(exist_ok=True)
    kwargs.setdefault("paths", [str(watched)])
    kwargs.setdefault("web_roots", [])
    kwargs.setdefault("rescan_every_s", 0)
    kwargs.setdefault("slice_ms", None)  # whole rescans per run unless a test is about pacing
    return FimCollector(tmp_path / "state", **kwargs), watched


def validate(items: list[Item]) -> None:
    """Every item must pass the collector's validators, as a batch on the wire would."""
    if items:
        parse_batch(json.dumps(Batch(items=[i.to_dict() for i in items]).to_dict()).encode())


def run(collector: FimCollector) -> list[Item]:
    """One run; asserts it did not fail and that what it emitted validates."""
    sink = ListSink()
    stats = collector.run(sink)
    assert stats.status == "ok", stats.last_error
    validate(sink.items)
    return sink.items


def settle(collector: FimCollector, max_runs: int = 1000) -> list[Item]:
    """Run until no rescan is in progress (e.g. the pass that follows the baseline); returns the items."""
    items = run(collector)
    for _ in range(max_runs):
        if collector.walk is None:
            return items
        items += run(collector)
    raise AssertionError(f"rescan still running after {max_runs} runs")


def changes(collector: FimCollector) -> dict[str, dict]:
    """One run's ``file.change`` items by path (actions are unique per path in these tests)."""
    return {i.data["path"]: i.data for i in run(collector) if i.type == "file.change"}


def poll(collector: FimCollector, predicate, timeout: float = 5.0, interval: float = 0.05) -> list[Item]:
    """Run until an emitted item satisfies ``predicate``; returns everything emitted so far."""
    seen: list[Item] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += run(collector)
        if any(predicate(i) for i in seen):
            return seen
        time.sleep(interval)
    raise AssertionError(f"no matching item within {timeout}s: {[i.data for i in seen]}")
