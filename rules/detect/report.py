"""Text reports for ``khien rules lint`` and ``khien rules test``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rules.detect.examples import run_examples
from rules.detect.loader import load_rules
from rules.detect.model import RuleLoadErrors


def lint_report(paths: Iterable[Path] | None = None) -> tuple[int, str]:
    """(0, "N rules OK") or (1, every load error one per line)."""
    try:
        ruleset = load_rules(paths)
    except RuleLoadErrors as exc:
        return 1, "\n".join(str(e) for e in exc.errors)
    return 0, f"{len(ruleset.rules)} rules OK"


def test_report(paths: Iterable[Path] | None = None) -> tuple[int, str]:
    """Run every inline example; exit 1 on a load error or a failing example."""
    try:
        ruleset = load_rules(paths)
    except RuleLoadErrors as exc:
        lines = [str(e) for e in exc.errors]
        return 1, "\n".join([*lines, f"{len(lines)} load error(s); no examples run"])
    return examples_report([(r.rule_id, r) for r in run_examples(ruleset)], len(ruleset.rules), "rules")


def examples_report(results: list[tuple[str, object]], owners: int, noun: str) -> tuple[int, str]:
    """Exit code and text for inline-example results given as (rule or check id, result) pairs."""
    failed = [(owner, r) for owner, r in results if not r.passed]
    lines = [f"FAIL {owner}: {r.name}: {r.detail}" for owner, r in failed]
    lines.append(f"{len(results)} examples in {owners} {noun}: {len(results) - len(failed)} passed, "
                 f"{len(failed)} failed")
    return (1 if failed else 0), "\n".join(lines)


test_report.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it as a test
