"""Parsing of a rule's inline ``tests``: example events, ``repeat``/``every`` shorthand, expectations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rules.detect.durations import parse_duration
from rules.detect.model import EngineEvent, Example

if TYPE_CHECKING:
    from rules.detect.schema import Checker

EXAMPLE_KEYS = ("name", "alerts", "events")
EVENT_KEYS = ("type", "ts", "host", "data", "unit", "ctx", "repeat", "every")
# Examples document behaviour; thousands of copies would only slow `rules test` down.
MAX_EXAMPLE_EVENTS = 5_000
P = tuple[Any, ...]


def parse_examples(raw: Any, path: P, check: Checker) -> tuple[Example, ...] | None:
    """Validate the ``tests`` list; requires at least one positive and one negative example."""
    if not isinstance(raw, list) or not raw:
        check.error(path, "tests must be a non-empty list of examples")
        return None
    examples = [_example(item, (*path, i), check) for i, item in enumerate(raw)]
    if any(e is None for e in examples):
        return None
    if not any(e.alerts >= 1 for e in examples):
        check.error(path, "tests need at least one positive example (alerts >= 1)")
    if not any(e.alerts == 0 for e in examples):
        check.error(path, "tests need at least one negative example (alerts: 0)")
    names = [e.name for e in examples]
    for index, name in enumerate(names):
        if name in names[:index]:
            check.error((*path, index, "name"), f"duplicate example name {name!r}")
    return tuple(examples)


def _example(raw: Any, path: P, check: Checker) -> Example | None:
    body = check.mapping(raw, path, "an example")
    if body is None or not check.keys(body, path, EXAMPLE_KEYS, ()):
        return None
    name = check.string(body["name"], (*path, "name"), "example name")
    alerts = check.count(body["alerts"], (*path, "alerts"), "alerts", minimum=0)
    events = _events(body["events"], (*path, "events"), check)
    if name is None or alerts is None or events is None:
        return None
    return Example(name, alerts, events)


def _events(raw: Any, path: P, check: Checker) -> tuple[EngineEvent, ...] | None:
    if not isinstance(raw, list) or not raw:
        check.error(path, "events must be a non-empty list")
        return None
    events: list[EngineEvent] = []
    previous: datetime | None = None
    ok = True
    for index, item in enumerate(raw):
        # Keep going after a bad event so one run reports every bad event of the example.
        expanded = _event(item, (*path, index), check, previous)
        if expanded is None:
            ok = False
            continue
        events.extend(expanded)
        previous = expanded[-1].ts
        if len(events) > MAX_EXAMPLE_EVENTS:
            check.error((*path, index), f"an example may hold at most {MAX_EXAMPLE_EVENTS} events")
            return None
    return tuple(events) if ok else None


def _event(raw: Any, path: P, check: Checker, previous: datetime | None) -> list[EngineEvent] | None:
    body = check.mapping(raw, path, "an example event")
    if body is None or not check.keys(body, path, ("type", "host"), EVENT_KEYS[1:2] + EVENT_KEYS[3:]):
        return None
    event_type = check.string(body["type"], (*path, "type"), "event type")
    host = check.string(body["host"], (*path, "host"), "host")
    data = check.mapping(body.get("data", {}), (*path, "data"), "data")
    ctx = check.mapping(body["ctx"], (*path, "ctx"), "ctx") if "ctx" in body else None
    unit = check.string(body["unit"], (*path, "unit"), "unit") if "unit" in body else None
    repeat, every = _repeat(body, path, check)
    start = _start(body, path, check, previous, every)
    if None in (event_type, host, data, repeat, start) or ("ctx" in body and ctx is None) or \
            ("unit" in body and unit is None):
        return None
    step = timedelta(seconds=every or 0)
    return [EngineEvent(type=event_type, ts=start + step * i, host=host, data=data, unit=unit, ctx=ctx)
            for i in range(repeat)]


def _repeat(body: Mapping[str, Any], path: P, check: Checker) -> tuple[int | None, int | None]:
    if "repeat" not in body:
        if "every" in body:
            check.error((*path, "every"), "every is only meaningful with repeat")
            return None, None
        return 1, None
    repeat = check.count(body["repeat"], (*path, "repeat"), "repeat")
    if "every" not in body:
        check.error((*path, "repeat"), "repeat needs every (the gap between copies)")
        return None, None
    try:
        return repeat, parse_duration(body["every"])
    except ValueError as exc:
        check.error((*path, "every"), f"every: {exc}")
        return None, None


def _start(body: Mapping[str, Any], path: P, check: Checker, previous: datetime | None,
           every: int | None) -> datetime | None:
    """The first copy's timestamp: ``ts`` if given, else one ``every`` after the previous event."""
    if "ts" not in body:
        if every is not None and previous is not None:
            return previous + timedelta(seconds=every)
        check.error(path, "missing key 'ts' (only a repeat after another event may omit it)")
        return None
    raw = body["ts"]
    try:
        ts = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        ts = None
    if ts is None or ts.utcoffset() is None:
        check.error((*path, "ts"), f"ts must be an ISO 8601 time with a zone (e.g. 2026-03-01T08:00:00Z), not {raw!r}")
        return None
    return ts
