"""``load_checks``: read check and policy files, validate all of them, and report every error at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rules.checks.check_schema import build_check
from rules.checks.model import DEFAULT_CHECKS_DIR, DEFAULT_POLICIES_DIR, Check, CheckSet, Policy
from rules.checks.policy_schema import build_policy, cross_check
from rules.detect.loader import data_files, read_yaml_file
from rules.detect.model import LoadError, RuleLoadErrors
from rules.detect.regexguard import slow_patterns
from rules.detect.schema import Checker

PathsArg = Iterable[Path | str] | Path | str | None


def load_checks(checks_dirs: PathsArg = None, policies_dirs: PathsArg = None) -> CheckSet:
    """Load checks and policies from directories and/or files; raise RuleLoadErrors listing every problem."""
    errors: list[LoadError] = []
    check_files = _files(checks_dirs, DEFAULT_CHECKS_DIR, errors)
    policy_files = _files(policies_dirs, DEFAULT_POLICIES_DIR, errors)
    checks, check_checkers = _load_all(check_files, build_check, errors)
    policies, policy_checkers = _load_all(policy_files, build_policy, errors)
    # A check whose file is broken is already reported; naming it in a policy is not a second error.
    broken = {f.stem for f in check_files} - set(checks)
    for policy in policies.values():
        checker = policy_checkers[policy.id]
        cross_check(policy, checker, checks, broken)
        errors.extend(checker.errors)
    errors.extend(_regex_errors(check_checkers))
    if errors:
        raise RuleLoadErrors(sorted(errors, key=lambda e: (e.file, e.line or 0)))
    return CheckSet(dict(sorted(checks.items())), dict(sorted(policies.items())),
                    tuple(str(f) for f in [*check_files, *policy_files]))


def _files(arg: PathsArg, default: Path, errors: list[LoadError]) -> list[Path]:
    if arg is None:
        paths = [default]
    elif isinstance(arg, str | Path):
        paths = [Path(arg)]
    else:
        paths = [Path(p) for p in arg]
    return data_files(paths, errors)


def _load_all(files: list[Path], build: Callable[[Any, Checker, str], Any],
              errors: list[LoadError]) -> tuple[dict[str, Any], dict[str, Checker]]:
    """Build every file; a duplicate id is an error on the second file. Returns items and checkers by id."""
    items: dict[str, Check | Policy] = {}
    checkers: dict[str, Checker] = {}
    for file in files:
        checker, data = read_yaml_file(file)
        item = build(data, checker, file.stem) if not checker.errors else None
        if item is not None and item.id in items:
            checker.error(("id",), f"duplicate id {item.id!r}: also defined in {items[item.id].file}")
            item = None
        if item is None:
            errors.extend(checker.errors)
            continue
        items[item.id] = item
        checkers[item.id] = checker
    return items, checkers


def _regex_errors(checkers: dict[str, Checker]) -> list[LoadError]:
    """Regexes that fail the time bound (checked in one batch: the guard's cost is per call)."""
    pending = [(c, pattern, flags, path) for c in checkers.values() for pattern, flags, path in c.regexes]
    if not pending:
        return []
    slow = slow_patterns([(pattern, flags) for _, pattern, flags, _ in pending])
    return [LoadError(c.file, c.lines.of(path), f"regex {pattern!r} is too slow on adversarial input "
                      "(catastrophic backtracking); avoid nested or overlapping repeats such as (a+)+")
            for c, pattern, flags, path in pending if (pattern, flags) in slow]
