"""Compliance checks: load and validate check and policy files, judge a host's facts, score a policy.

Pure: stdlib and pyyaml only; expressions, YAML-with-lines loading and load errors come from
``rules.detect``. The format is documented in ``docs/checks-format.md``.
"""

from rules.checks.examples import CheckExampleResult, run_check_examples
from rules.checks.loader import load_checks
from rules.checks.model import (
    DEFAULT_CHECKS_DIR,
    DEFAULT_POLICIES_DIR,
    DEFAULT_POLICY,
    FACT_KINDS,
    UNKNOWN_LEVEL,
    WEIGHTS,
    Check,
    CheckExample,
    CheckResult,
    CheckSet,
    Group,
    Policy,
    Requirement,
)
from rules.checks.policy import evaluate_host, os_facts, os_family, plan, policy_score
from rules.checks.report import check_report, checks_lint_report, checks_test_report

__all__ = [
    "DEFAULT_CHECKS_DIR",
    "DEFAULT_POLICIES_DIR",
    "DEFAULT_POLICY",
    "FACT_KINDS",
    "UNKNOWN_LEVEL",
    "WEIGHTS",
    "Check",
    "CheckExample",
    "CheckExampleResult",
    "CheckResult",
    "CheckSet",
    "Group",
    "Policy",
    "Requirement",
    "check_report",
    "checks_lint_report",
    "checks_test_report",
    "evaluate_host",
    "load_checks",
    "os_facts",
    "os_family",
    "plan",
    "policy_score",
    "run_check_examples",
]
