"""``run_check_examples``: every check's inline tests, judged exactly as a host's facts would be."""

from __future__ import annotations

from dataclasses import dataclass

from rules.checks.evaluate import evaluate_check
from rules.checks.model import Check, CheckExample, CheckSet


@dataclass(frozen=True, slots=True)
class CheckExampleResult:
    check_id: str
    name: str
    expected: str
    got: str
    passed: bool
    detail: str


def run_check_examples(checkset: CheckSet) -> list[CheckExampleResult]:
    """Run every example of every check (check-id order, then file order)."""
    return [_run(check, example) for check in checkset.checks.values() for example in check.tests]


def _run(check: Check, example: CheckExample) -> CheckExampleResult:
    params = {**check.params, **example.params}
    got, evidence = evaluate_check(check, example.facts, example.os, params)
    passed = got == example.expect
    detail = "" if passed else f"expected {example.expect}, got {got}" + (f" ({evidence})" if evidence else "")
    return CheckExampleResult(check.id, example.name, example.expect, got, passed, detail)
