"""``run_examples``: every rule's inline tests, each in a fresh engine holding only that rule."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rules.detect.alerts import fold
from rules.detect.engine import Engine
from rules.detect.model import Example, Rule
from rules.detect.ruleset import RuleSet


@dataclass(frozen=True, slots=True)
class ExampleResult:
    rule_id: str
    name: str
    expected: int
    got: int
    passed: bool
    detail: str


def run_examples(ruleset: RuleSet) -> list[ExampleResult]:
    """Run every example of every rule (rule-id order, then file order)."""
    return [_run(rule, example) for rule in ruleset.rules.values() for example in rule.tests]


def _run(rule: Rule, example: Example) -> ExampleResult:
    # Stable sort: events written with equal timestamps keep their file order.
    ordered = sorted(example.events, key=lambda e: e.ts)
    events = [replace(event, id=index) for index, event in enumerate(ordered, start=1)]
    single = RuleSet([rule], (rule.file,))
    engine = Engine(single)
    detections = [d for event in events for d in engine.process(event)]
    alerts = fold(detections, single)
    got = len(alerts)
    passed = got == example.alerts
    detail = "" if passed else (
        f"expected {example.alerts} alert(s), got {got}"
        + (f" (events {', '.join(str(i) for a in alerts for i in a.event_ids)})" if alerts else ""))
    return ExampleResult(rule.id, example.name, example.alerts, got, passed, detail)
