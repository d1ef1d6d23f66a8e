"""Folding detections into alerts: same dedupe key within the rule's suppress window → one alert."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from rules.detect.model import Alert, Detection
from rules.detect.ruleset import RuleSet

MAX_EVENT_IDS = 20


def fold(detections: Iterable[Detection], ruleset: RuleSet) -> list[Alert]:
    """Dedupe in memory; alerts come out in the order they were opened."""
    alerts: list[Alert] = []
    open_index: dict[str, int] = {}  # dedupe key -> index of its latest alert
    for det in detections:
        rule = ruleset.rules.get(det.rule_id)
        suppress = timedelta(seconds=rule.suppress_s if rule is not None else 0)
        index = open_index.get(det.key)
        if index is not None and suppress and det.first_ts <= alerts[index].last_seen + suppress:
            alerts[index] = _merge(alerts[index], det)
            continue
        open_index[det.key] = len(alerts)
        alerts.append(Alert(rule_id=det.rule_id, severity=det.severity, host=det.host, group=det.group, key=det.key,
                            count=1, first_seen=det.first_ts, last_seen=det.last_ts, event_ids=det.event_ids))
    return alerts


def merge_ids(old: tuple[int, ...], new: tuple[int, ...]) -> tuple[int, ...]:
    """Union keeping order of arrival; the latest MAX_EVENT_IDS survive."""
    merged = list(old)
    seen = set(old)
    for event_id in new:
        if event_id not in seen:
            seen.add(event_id)
            merged.append(event_id)
    return tuple(merged[-MAX_EVENT_IDS:])


def _merge(alert: Alert, det: Detection) -> Alert:
    return replace(alert, count=alert.count + 1, first_seen=min(alert.first_seen, det.first_ts),
                   last_seen=max(alert.last_seen, det.last_ts), event_ids=merge_ids(alert.event_ids, det.event_ids))
