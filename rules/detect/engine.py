"""The detection engine: feeds events through matching rules and their correlation state."""

from __future__ import annotations

import json
from typing import Any

from rules.detect.correlate import Entry, SequenceTracker, ThresholdTracker
from rules.detect.fields import MISSING, parse_field
from rules.detect.model import Detection, EngineEvent, Rule
from rules.detect.ruleset import RuleSet

MAX_EVENT_IDS = 20


class Engine:
    """Stateful, single-threaded; ``process`` returns detections in rule-id order."""

    def __init__(self, ruleset: RuleSet, *, max_groups: int = 10_000) -> None:
        self.ruleset = ruleset
        self.max_groups = max_groups
        self._seq = 0
        self._counts = {"events": 0, "warmed": 0, "detections": 0}
        self._trackers: dict[str, ThresholdTracker | SequenceTracker] = {}
        self._group_paths: dict[str, tuple[Any, ...]] = {}
        for rule in ruleset.rules.values():
            self._setup(rule)

    def _setup(self, rule: Rule) -> None:
        if rule.threshold is not None:
            t = rule.threshold
            self._trackers[rule.id] = ThresholdTracker(t.count, t.window_s, self.max_groups)
            group_by = t.group_by
        elif rule.sequence is not None:
            s = rule.sequence
            self._trackers[rule.id] = SequenceTracker([st.count for st in s.steps], s.within_s, self.max_groups)
            group_by = s.group_by
        else:
            group_by = ()
        self._group_paths[rule.id] = tuple(parse_field(f) for f in group_by)

    def process(self, event: EngineEvent) -> list[Detection]:
        """Evaluate one event; return the detections it completes."""
        self._counts["events"] += 1
        detections = self._run(event)
        self._counts["detections"] += len(detections)
        return detections

    def warm(self, event: EngineEvent) -> None:
        """Update correlation state without emitting (replaying history after a restart)."""
        self._counts["warmed"] += 1
        self._run(event)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: events, warmed, detections, evicted_groups (also per rule as evicted_groups:<id>)."""
        stats = dict(self._counts)
        stats["evicted_groups"] = 0
        stats["expired_groups"] = 0
        for rule_id, tracker in sorted(self._trackers.items()):
            stats["evicted_groups"] += tracker.table.evicted
            stats["expired_groups"] += tracker.table.expired
            stats[f"evicted_groups:{rule_id}"] = tracker.table.evicted
        return stats

    def live_groups(self) -> int:
        """How many correlation groups are held right now (all rules)."""
        return sum(len(t.table.groups) for t in self._trackers.values())

    def _run(self, event: EngineEvent) -> list[Detection]:
        self._seq += 1
        entry: Entry = (event.ts.timestamp(), self._seq, event.id, event.ts)
        detections = []
        for rule in self.ruleset.rules_for(event.type):
            detection = self._evaluate(rule, event, entry)
            if detection is not None:
                detections.append(detection)
        return detections

    def _evaluate(self, rule: Rule, event: EngineEvent, entry: Entry) -> Detection | None:
        if rule.match is not None and not rule.match.matches(event):
            return None
        tracker = self._trackers.get(rule.id)
        if tracker is None:
            return self._detection(rule, event, [entry])
        group = self._group(rule, event)
        if isinstance(tracker, ThresholdTracker):
            entries = tracker.add(_group_key(group), entry)
        else:
            assert rule.sequence is not None
            matches = [event.type in step.event_types and (step.match is None or step.match.matches(event))
                       for step in rule.sequence.steps]
            if not any(matches):
                return None
            entries = tracker.add(_group_key(group), entry, matches)
        return self._detection(rule, event, entries, group) if entries else None

    def _group(self, rule: Rule, event: EngineEvent) -> tuple[tuple[str, Any], ...]:
        values = []
        for path in self._group_paths[rule.id]:
            value = path.resolve(event)
            values.append((path.text, None if value is MISSING else value))
        return (("@host", event.host), *values)

    def _detection(self, rule: Rule, event: EngineEvent, entries: list[Entry],
                   group: tuple[tuple[str, Any], ...] | None = None) -> Detection:
        group = group if group is not None else (("@host", event.host),)
        visible = group[1:]  # the host is its own field; `group` lists only group_by values
        key = json.dumps([rule.id, event.host, [v for _, v in visible]], sort_keys=True, default=str,
                         ensure_ascii=False)
        ids = tuple(e[2] for e in entries if e[2] is not None)[-MAX_EVENT_IDS:]
        return Detection(rule_id=rule.id, severity=rule.severity, host=event.host, group=visible, key=key,
                         first_ts=min(entries)[3], last_ts=max(entries)[3], count=len(entries), event_ids=ids)


def _group_key(group: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    """The correlation-table key of a group: strings and None as they are (the common case, and no
    tuple can equal them), anything else through ``_hashable``."""
    return tuple(v if v is None or type(v) is str else _hashable(v) for _, v in group)


def _hashable(value: Any) -> Any:
    """Group values may be lists or mappings (JSON from agents); make them usable as dict keys."""
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, bool | int | float | str) or value is None:
        # Keep 1 and True (and 1.0) apart: they are different values from an event's point of view.
        return (type(value).__name__, value)
    return ("repr", repr(value))
