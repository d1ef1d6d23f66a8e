"""Text reports for ``khien checks lint``/``test`` and the per-host ``khien check`` output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rules.checks.examples import run_check_examples
from rules.checks.loader import PathsArg, load_checks
from rules.checks.model import DEFAULT_POLICY, CheckSet
from rules.checks.policy import evaluate_host, policy_score, resolve_level
from rules.detect.model import RuleLoadErrors
from rules.detect.report import examples_report

STATUS_LABELS = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A", "error": "ERROR"}


def checks_lint_report(checks_dirs: PathsArg = None, policies_dirs: PathsArg = None) -> tuple[int, str]:
    """(0, "N checks, M policies OK") or (1, every load error one per line)."""
    try:
        checkset = load_checks(checks_dirs, policies_dirs)
    except RuleLoadErrors as exc:
        return 1, "\n".join([*(str(e) for e in exc.errors), f"{len(exc.errors)} load error(s)"])
    return 0, f"{len(checkset.checks)} checks, {len(checkset.policies)} policies OK"


def checks_test_report(checks_dirs: PathsArg = None, policies_dirs: PathsArg = None) -> tuple[int, str]:
    """Run every inline example; exit 1 on a load error or a failing example."""
    try:
        checkset = load_checks(checks_dirs, policies_dirs)
    except RuleLoadErrors as exc:
        lines = [str(e) for e in exc.errors]
        return 1, "\n".join([*lines, f"{len(lines)} load error(s); no examples run"])
    return examples_report([(r.check_id, r) for r in run_check_examples(checkset)], len(checkset.checks), "checks")


checks_test_report.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it as a test


def check_report(checkset: CheckSet, facts: Mapping[str, Any], *, os_family: str | None, level: int | None,
                 policy_id: str | None = DEFAULT_POLICY, fmt: str = "table",
                 os_release: Mapping[str, Any] | None = None) -> str:
    """The results of one host as a table (one line per check, then the summary) or as JSON."""
    if fmt not in ("table", "json"):
        raise ValueError(f"format must be table or json, not {fmt!r}")
    results = evaluate_host(checkset, facts, os_family=os_family, level=level, policy_id=policy_id,
                            os_release=os_release)
    score = policy_score(results)
    level = resolve_level(level)
    if fmt == "json":
        rows = [{**r.to_dict(), "title": dict(checkset.checks[r.check_id].title)} for r in results]
        return json.dumps({"policy": policy_id, "level": level, "os": os_family, "score": score, "results": rows},
                          ensure_ascii=False, indent=2, default=str)
    lines = [f"{STATUS_LABELS[r.status]:<6} {r.severity:<8} {r.check_id}  {checkset.checks[r.check_id].title['en']}"
             + (f"  [{r.evidence}]" if r.evidence else "") for r in results]
    shown = "n/a (nothing judged)" if score["score"] is None else f"{score['score']:.1f}%"
    lines.append(f"policy {policy_id or '(none: every check)'}, level {level}, os {os_family or 'unknown'}: "
                 f"{len(results)} checks, {score['passed']} passed, {score['failed']} failed, "
                 f"{score['not_applicable']} not applicable, {score['error']} error"
                 + (f", {score['critical_failed']} critical failed" if score["critical_failed"] else ""))
    lines.append(f"score {shown}")
    return "\n".join(lines)
