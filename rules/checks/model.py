"""Plain data types of compliance checks and policies, and the constants every module shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.detect.expr import Expr

DEFAULT_CHECKS_DIR = Path(__file__).resolve().parent.parent / "data" / "checks"
DEFAULT_POLICIES_DIR = Path(__file__).resolve().parent.parent / "data" / "policies"
DEFAULT_POLICY = "tcvn_11930_2017_server"
# A host whose security level (cấp độ) nobody recorded is judged as the common case for agency servers.
UNKNOWN_LEVEL = 3
LEVELS = (1, 2, 3, 4, 5)
STATUSES = ("pass", "fail", "not_applicable", "error")
WEIGHTS: Mapping[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 5}
# The agent's fixed fact kinds (agent/collectors/facts/kinds.py); rules/ may not import the agent, so the
# list is repeated here and a test keeps the two equal.
FACT_KINDS = ("sshd", "logindefs", "pam", "accounts", "sudoers", "sysctl", "firewall", "services", "auditd",
              "timesync", "antimalware", "logging", "files", "upgrades", "storage",
              # Not from the agent's facts: the evaluator adds it from the host's os-release (policy.os_facts),
              # so applies_to can gate on the OS version ({field: os.major, gte: 9}).
              "os")


@dataclass(frozen=True, slots=True)
class CheckExample:
    """An inline test: facts (kind -> facts), the host's os family, parameter overrides, the expected status."""

    name: str
    facts: Mapping[str, Any]
    os: str
    params: Mapping[str, Any]
    expect: str


@dataclass(frozen=True)
class Check:
    """A validated compliance check."""

    id: str
    title: Mapping[str, str]
    status: str
    severity: str
    critical: bool
    os: tuple[str, ...] | None  # None: any os
    kinds: tuple[str, ...]  # fact kinds that must be available
    when: Expr | None
    params: Mapping[str, Any]
    assertion: Expr
    evidence: tuple[Any, ...]  # FieldPath objects, in file order
    rationale: Mapping[str, str]
    remediation: Mapping[str, str]
    references: tuple[str, ...]
    tests: tuple[CheckExample, ...]
    file: str
    guarded: frozenset[str] = frozenset()  # paths tested with `exists`: absent means false, not unknown


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    title: Mapping[str, str]
    levels: frozenset[int]
    checks: tuple[str, ...]
    params: Mapping[str, Mapping[int, Any]]  # parameter -> level -> value


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    title: Mapping[str, str]
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class Policy:
    """A framework mapping: groups of requirements, each naming checks and per-level parameters."""

    id: str
    title: Mapping[str, str]
    framework: str
    references: tuple[str, ...]
    groups: tuple[Group, ...]
    file: str

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """Every requirement in file order (the order that decides which one's parameters win)."""
        return tuple(r for g in self.groups for r in g.requirements)


@dataclass(frozen=True)
class CheckSet:
    """Loaded checks and policies, each by id (sorted)."""

    checks: Mapping[str, Check]
    policies: Mapping[str, Policy]
    files: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"CheckSet({len(self.checks)} checks, {len(self.policies)} policies)"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict of one check on one host."""

    check_id: str
    status: str  # pass | fail | not_applicable | error
    severity: str
    critical: bool
    evidence: str
    requirements: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check_id": self.check_id, "status": self.status, "severity": self.severity,
                "critical": self.critical, "evidence": self.evidence, "requirements": list(self.requirements),
                "params": dict(self.params)}
