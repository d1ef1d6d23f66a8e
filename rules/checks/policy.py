"""Policies applied to a host: which checks at which security level, with which parameters; the score.

A host at level N is judged by the checks of every requirement whose ``levels`` contain N. A check named
by several of those requirements is evaluated once; for each of its parameters the first requirement (in
file order) that sets a value for N wins, else the check's default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rules.checks.evaluate import evaluate_check
from rules.checks.model import DEFAULT_POLICY, LEVELS, UNKNOWN_LEVEL, WEIGHTS, Check, CheckResult, CheckSet, Policy


def resolve_level(level: int | None) -> int:
    """``None`` (level not recorded) -> UNKNOWN_LEVEL; anything outside 1-5 is a caller bug."""
    if level is None:
        return UNKNOWN_LEVEL
    if isinstance(level, bool) or level not in LEVELS:
        raise ValueError(f"security level must be 1-5, not {level!r}")
    return level


def get_policy(checkset: CheckSet, policy_id: str) -> Policy:
    try:
        return checkset.policies[policy_id]
    except KeyError:
        known = ", ".join(checkset.policies) or "none loaded"
        raise ValueError(f"unknown policy {policy_id!r} (known: {known})") from None


def plan(checkset: CheckSet, level: int | None, policy_id: str | None = DEFAULT_POLICY,
         ) -> list[tuple[Check, dict[str, Any], tuple[str, ...]]]:
    """(check, params, requirement ids) for every check that applies at ``level``, by check id.

    ``policy_id=None`` plans every loaded check with its default parameters (no requirements).
    """
    level = resolve_level(level)
    if policy_id is None:
        return [(check, dict(check.params), ()) for check in checkset.checks.values()]
    policy = get_policy(checkset, policy_id)
    requirements: dict[str, list[str]] = {}
    params: dict[str, dict[str, Any]] = {}
    for requirement in policy.requirements:
        if level not in requirement.levels:
            continue
        for check_id in requirement.checks:
            check = checkset.checks[check_id]
            requirements.setdefault(check_id, []).append(requirement.id)
            chosen = params.setdefault(check_id, {})
            for name, by_level in requirement.params.items():
                if name in check.params and name not in chosen and level in by_level:
                    chosen[name] = by_level[level]
    return [(checkset.checks[c], {**checkset.checks[c].params, **params[c]}, tuple(dict.fromkeys(requirements[c])))
            for c in sorted(requirements)]


def kinds_of(facts: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept the whole facts document too: ``{"kinds": {...}}`` ("kinds" is never a kind's name)."""
    inner = facts.get("kinds") if isinstance(facts, Mapping) else None
    return inner if isinstance(inner, Mapping) else (facts if isinstance(facts, Mapping) else {})


def evaluate_host(checkset: CheckSet, facts: Mapping[str, Any], *, os_family: str | None, level: int | None,
                  policy_id: str | None = DEFAULT_POLICY,
                  os_release: Mapping[str, Any] | None = None) -> list[CheckResult]:
    """Results of the checks that apply at ``level`` (None: UNKNOWN_LEVEL) under the policy, by check id.

    ``os_release`` (``id``, ``id_like``, ``version_id``) becomes the ``os`` kind checks may read.
    """
    kinds = kinds_of(facts)
    if os_release is not None:
        kinds = {**kinds, "os": os_facts(os_release)}
    results = []
    for check, params, requirements in plan(checkset, level, policy_id):
        status, evidence = evaluate_check(check, kinds, os_family, params)
        results.append(CheckResult(check.id, status, check.severity, check.critical, evidence, requirements,
                                   params))
    return results


def policy_score(results: Iterable[CheckResult]) -> dict[str, Any]:
    """Σ weight(passed) / Σ weight(passed + failed) × 100; None when no weight was judged."""
    results = list(results)
    counts = _counts(results)
    passed_weight = sum(WEIGHTS[r.severity] for r in results if r.status == "pass")
    judged_weight = passed_weight + sum(WEIGHTS[r.severity] for r in results if r.status == "fail")
    score = round(passed_weight * 100 / judged_weight, 1) if judged_weight else None
    return {"score": score, **counts,
            "critical_failed": sum(1 for r in results if r.status == "fail" and r.critical),
            "weight_passed": passed_weight, "weight_judged": judged_weight, "weights": dict(WEIGHTS)}


def _counts(results: list[CheckResult]) -> dict[str, int]:
    names = {"pass": "passed", "fail": "failed", "not_applicable": "not_applicable", "error": "error"}
    counts = dict.fromkeys(names.values(), 0)
    for result in results:
        counts[names[result.status]] += 1
    return counts


RHEL_LIKE = frozenset({"rhel", "centos", "fedora", "rocky", "almalinux", "ol"})


def os_family(os_release: Mapping[str, Any] | None) -> str | None:
    """debian for Debian/Ubuntu and derivatives, rhel for the Red Hat family, else None.

    ``os_release``: ``id`` and ``id_like`` as in /etc/os-release (the agent's ``os`` inventory row).
    """
    if not os_release:
        return None
    names = {str(os_release.get("id") or "").lower(), *str(os_release.get("id_like") or "").lower().split()}
    if names & {"debian", "ubuntu"}:
        return "debian"
    if names & RHEL_LIKE:
        return "rhel"
    return None


def os_facts(os_release: Mapping[str, Any]) -> dict[str, Any]:
    """The ``os`` kind: family, id, version_id and the major version as a number (None if not numeric)."""
    version = str(os_release.get("version_id") or "")
    major = version.split(".", 1)[0]
    return {"available": True, "family": os_family(os_release), "id": os_release.get("id"),
            "version_id": version or None, "major": int(major) if major.isdigit() else None}
