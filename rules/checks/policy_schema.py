"""Validation of one policy file into a ``Policy``, and its cross-check against the loaded checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.checks.check_schema import NAME_RE, param_type_error
from rules.checks.model import LEVELS, Check, Group, Policy, Requirement
from rules.detect.schema import ID_RE, Checker

POLICY_KEYS = (("id", "title", "framework", "groups"), ("references", "description", "version"))
GROUP_KEYS = (("id", "title", "requirements"), ("description",))
REQUIREMENT_KEYS = (("id", "title", "levels", "checks"), ("params", "description", "references"))
P = tuple[Any, ...]


def build_policy(data: Any, check: Checker, stem: str) -> Policy | None:
    """Validate a parsed policy file; returns the Policy, or None with errors recorded in ``check``."""
    raw = check.mapping(data, (), "a policy file")
    if raw is None:
        return None
    check.keys(raw, (), *POLICY_KEYS)
    policy_id = check.string(raw["id"], ("id",), "id") if "id" in raw else None
    if policy_id is not None and (not ID_RE.match(policy_id) or policy_id != stem):
        check.error(("id",), f"id {policy_id!r} must be snake_case and match the file name {stem!r}")
        policy_id = None
    title = check.text(raw["title"], ("title",), "title") if "title" in raw else None
    framework = check.string(raw["framework"], ("framework",), "framework") if "framework" in raw else None
    references = check.string_list(raw.get("references", []), ("references",), "references")
    groups = _groups(raw["groups"], check) if "groups" in raw else None
    if check.errors or None in (policy_id, title, framework, references, groups):
        return None
    return Policy(policy_id, title, framework, references, groups, check.file)


def _groups(raw: Any, check: Checker) -> tuple[Group, ...] | None:
    if not isinstance(raw, list) or not raw:
        check.error(("groups",), "groups must be a non-empty list")
        return None
    groups = [_group(item, ("groups", i), check) for i, item in enumerate(raw)]
    if any(g is None for g in groups):
        return None
    _unique([g.id for g in groups], [("groups", i, "id") for i in range(len(groups))], "group", check)
    requirements = [(r.id, ("groups", gi, "requirements", ri, "id"))
                    for gi, g in enumerate(groups) for ri, r in enumerate(g.requirements)]
    _unique([r for r, _ in requirements], [p for _, p in requirements], "requirement", check)
    return tuple(groups)


def _unique(ids: list[str], paths: list[P], what: str, check: Checker) -> None:
    for index, item in enumerate(ids):
        if item in ids[:index]:
            check.error(paths[index], f"duplicate {what} id {item!r}")


def _name(raw: Mapping[str, Any], path: P, check: Checker, what: str) -> str | None:
    name = check.string(raw["id"], (*path, "id"), f"{what} id")
    if name is not None and not NAME_RE.match(name):
        check.error((*path, "id"), f"{what} id {name!r} must be snake_case")
        return None
    return name


def _group(raw: Any, path: P, check: Checker) -> Group | None:
    body = check.mapping(raw, path, "a group")
    if body is None or not check.keys(body, path, *GROUP_KEYS):
        return None
    name = _name(body, path, check, "group")
    title = check.text(body["title"], (*path, "title"), "title")
    items = body["requirements"]
    if not isinstance(items, list) or not items:
        check.error((*path, "requirements"), "requirements must be a non-empty list")
        return None
    requirements = [_requirement(item, (*path, "requirements", i), check) for i, item in enumerate(items)]
    if name is None or title is None or any(r is None for r in requirements):
        return None
    return Group(name, title, tuple(requirements))


def _requirement(raw: Any, path: P, check: Checker) -> Requirement | None:
    body = check.mapping(raw, path, "a requirement")
    if body is None or not check.keys(body, path, *REQUIREMENT_KEYS):
        return None
    name = _name(body, path, check, "requirement")
    title = check.text(body["title"], (*path, "title"), "title")
    levels = _levels(body["levels"], (*path, "levels"), check)
    checks = check.string_list(body["checks"], (*path, "checks"), "checks")
    if checks is not None and not checks:
        check.error((*path, "checks"), "checks must name at least one check")
        checks = None
    params = _params(body.get("params", {}), (*path, "params"), check, levels) if levels else None
    if None in (name, title, levels, checks, params):
        return None
    return Requirement(name, title, levels, checks, params)


def _levels(raw: Any, path: P, check: Checker) -> frozenset[int] | None:
    if (isinstance(raw, list) and raw and len(set(raw)) == len(raw)
            and all(isinstance(v, int) and not isinstance(v, bool) and v in LEVELS for v in raw)):
        return frozenset(raw)
    check.error(path, f"levels must be a non-empty list of distinct security levels 1-5, not {raw!r}")
    return None


def _params(raw: Any, path: P, check: Checker, levels: frozenset[int]) -> dict[str, dict[int, Any]] | None:
    """name -> {level: value}; a plain value (not a level mapping) holds at every level of the requirement."""
    body = check.mapping(raw, path, "params")
    if body is None:
        return None
    result: dict[str, dict[int, Any]] = {}
    for name, value in body.items():
        if not isinstance(value, Mapping):
            result[name] = dict.fromkeys(sorted(levels), value)
            continue
        bad = [k for k in value if isinstance(k, bool) or k not in levels]
        if bad:
            check.error((*path, name), f"parameter {name!r} gives values for levels {bad!r} outside this "
                                       f"requirement's levels {sorted(levels)}")
            return None
        result[name] = dict(value)
    return result


def cross_check(policy: Policy, check: Checker, checks: Mapping[str, Check], broken: set[str]) -> None:
    """Every check a requirement names must exist (``broken``: ids of check files that failed to load,
    not reported again), and every parameter it sets must belong to one of them."""
    for gi, group in enumerate(policy.groups):
        for ri, requirement in enumerate(group.requirements):
            path = ("groups", gi, "requirements", ri)
            for ci, check_id in enumerate(requirement.checks):
                if check_id not in checks and check_id not in broken:
                    check.error((*path, "checks", ci), f"unknown check {check_id!r}")
            present = [checks[c] for c in requirement.checks if c in checks]
            for name, by_level in requirement.params.items():
                owners = [c for c in present if name in c.params]
                if len(present) == len(requirement.checks) and not owners:
                    check.error((*path, "params", name),
                                f"parameter {name!r} is not a parameter of any of this requirement's checks")
                for owner in owners:
                    message = param_type_error(name, owner.params[name], by_level.values(), owner.id)
                    if message:
                        check.error((*path, "params", name), message)

