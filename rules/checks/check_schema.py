"""Validation of one check file's data into a ``Check``; every problem is reported with its line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rules.checks.model import FACT_KINDS, STATUSES, Check, CheckExample
from rules.detect.compile import Compiler
from rules.detect.expr import All, AnyOf, Expr, FieldCheckFn, Leaf, Not, Quantifier
from rules.detect.fields import CHECK_NAMES, FieldPath
from rules.detect.schema import ID_RE, SEVERITIES, Checker
from rules.detect.schema import STATUSES as LIFECYCLE

REQUIRED = ("id", "title", "status", "severity", "assert", "tests")
OPTIONAL = ("critical", "applies_to", "params", "evidence", "rationale", "remediation", "references")
EXAMPLE_KEYS = ("name", "facts", "expect")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_EXAMPLE_OS = "debian"
P = tuple[Any, ...]


def field_check(params: Mapping[str, Any]) -> FieldCheckFn:
    """Rejects a top-level path that does not start with a fact kind, and an unknown @param."""

    def check(field: FieldPath, path: P, inside_item: bool) -> str | None:
        head = field.parts[0] if field.parts else ""
        if field.root == "param" and head not in params:
            known = ", ".join(sorted(params)) or "none"
            return f"unknown parameter {head!r} (this check's params: {known})"
        if field.root == "data" and not inside_item and head not in FACT_KINDS:
            return f"{field.text!r} does not start with a fact kind ({', '.join(FACT_KINDS)})"
        return None

    return check


def build_check(data: Any, check: Checker, stem: str) -> Check | None:
    """Validate a parsed check file; returns the Check, or None with errors recorded in ``check``."""
    raw = check.mapping(data, (), "a check file")
    if raw is None:
        return None
    check.keys(raw, (), REQUIRED, OPTIONAL)
    check_id = _check_id(raw, check, stem)
    params = _params(raw.get("params", {}), check)
    check.compiler = Compiler(check.error, check.regexes, names=CHECK_NAMES, field_check=field_check(params or {}))
    os, kinds, when = _applies_to(raw.get("applies_to", {}), check)
    fields = {
        "title": _text(raw, "title", check, required=True),
        "status": check.choice(raw["status"], ("status",), "status", LIFECYCLE) if "status" in raw else None,
        "severity": check.choice(raw["severity"], ("severity",), "severity", SEVERITIES) if "severity" in raw
        else None,
        "critical": _flag(raw.get("critical", False), ("critical",), check),
        "rationale": _text(raw, "rationale", check),
        "remediation": _text(raw, "remediation", check),
        "references": check.string_list(raw.get("references", []), ("references",), "references"),
        "evidence": _evidence(raw.get("evidence", []), check),
        "assertion": check.compiler.compile(raw["assert"], ("assert",)) if "assert" in raw else None,
    }
    tests = _examples(raw["tests"], ("tests",), check, params or {}) if "tests" in raw else None
    if check.errors or check_id is None or params is None or kinds is None or tests is None:
        return None
    if any(v is None for v in fields.values()):
        return None
    guarded = frozenset(exists_paths(fields["assertion"]) | (exists_paths(when) if when is not None else set()))
    return Check(id=check_id, os=os, kinds=kinds, when=when, params=params, tests=tests, file=check.file,
                 guarded=guarded, **fields)


def exists_paths(expr: Expr) -> set[str]:
    """The field paths an expression tests with ``exists`` (the author anticipated their absence)."""
    if isinstance(expr, All | AnyOf):
        return set().union(*(exists_paths(p) for p in expr.parts))
    if isinstance(expr, Not | Quantifier):
        return exists_paths(expr.part)
    return {expr.field.text} if isinstance(expr, Leaf) and expr.op == "exists" else set()


def _check_id(raw: Mapping[str, Any], check: Checker, stem: str) -> str | None:
    if "id" not in raw:
        return None
    check_id = check.string(raw["id"], ("id",), "id")
    if check_id is None:
        return None
    if not ID_RE.match(check_id):
        check.error(("id",), f"id {check_id!r} is not snake_case with a domain prefix (e.g. ssh_lnx_root_login)")
        return None
    if check_id != stem:
        check.error(("id",), f"id {check_id!r} does not match the file name {stem!r}")
        return None
    return check_id


def _text(raw: Mapping[str, Any], key: str, check: Checker, required: bool = False) -> dict[str, Any] | None:
    if key not in raw:
        return None if required else {}
    return check.text(raw[key], (key,), key)


def _flag(raw: Any, path: P, check: Checker) -> bool | None:
    if isinstance(raw, bool):
        return raw
    check.error(path, f"{path[-1]} must be true or false, not {raw!r}")
    return None


def _params(raw: Any, check: Checker) -> dict[str, Any] | None:
    body = check.mapping(raw, ("params",), "params")
    if body is None:
        return None
    ok = True
    for name, value in body.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            check.error(("params", name), f"parameter name {name!r} must be snake_case")
            ok = False
        elif isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, list | dict) for v in value)):
            check.error(("params", name), f"parameter {name!r} must be a scalar or a list of scalars")
            ok = False
    return dict(body) if ok else None


def _applies_to(raw: Any, check: Checker) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, Expr | None]:
    """(os families or None for any, required kinds, when); kinds None on error."""
    path = ("applies_to",)
    body = check.mapping(raw, path, "applies_to")
    if body is None or not check.keys(body, path, (), ("os", "facts", "when")):
        return None, None, None
    os = None
    if "os" in body:
        os = check.string_list(body["os"], (*path, "os"), "applies_to.os")
        if os is not None and (not os or not all(NAME_RE.match(v) for v in os)):
            check.error((*path, "os"), "applies_to.os must be a non-empty list of lower-case os families")
    kinds = check.string_list(body.get("facts", []), (*path, "facts"), "applies_to.facts")
    for index, kind in enumerate(kinds or ()):
        if kind not in FACT_KINDS:
            check.error((*path, "facts", index), f"unknown fact kind {kind!r} (known: {', '.join(FACT_KINDS)})")
    when = check.compiler.compile(body["when"], (*path, "when")) if "when" in body else None
    return os, kinds, when


def _evidence(raw: Any, check: Checker) -> tuple[FieldPath, ...] | None:
    texts = check.string_list(raw, ("evidence",), "evidence")
    if texts is None:
        return None
    paths = [check.compiler.field(text, ("evidence", i)) for i, text in enumerate(texts)]
    return None if any(p is None for p in paths) else tuple(paths)


def _examples(raw: Any, path: P, check: Checker, params: Mapping[str, Any]) -> tuple[CheckExample, ...] | None:
    """The ``tests`` list; at least one pass and one fail example."""
    if not isinstance(raw, list) or not raw:
        check.error(path, "tests must be a non-empty list of examples")
        return None
    examples = [_example(item, (*path, i), check, params) for i, item in enumerate(raw)]
    if any(e is None for e in examples):
        return None
    for expect in ("pass", "fail"):
        if not any(e.expect == expect for e in examples):
            check.error(path, f"tests need at least one example with expect: {expect}")
    names = [e.name for e in examples]
    for index, name in enumerate(names):
        if name in names[:index]:
            check.error((*path, index, "name"), f"duplicate example name {name!r}")
    return tuple(examples)


def _example(raw: Any, path: P, check: Checker, params: Mapping[str, Any]) -> CheckExample | None:
    body = check.mapping(raw, path, "an example")
    if body is None or not check.keys(body, path, EXAMPLE_KEYS, ("os", "params")):
        return None
    name = check.string(body["name"], (*path, "name"), "example name")
    expect = check.choice(body["expect"], (*path, "expect"), "expect", STATUSES)
    os = check.string(body.get("os", DEFAULT_EXAMPLE_OS), (*path, "os"), "example os")
    facts = _example_facts(body["facts"], (*path, "facts"), check)
    overrides = check.mapping(body.get("params", {}), (*path, "params"), "example params")
    for key, value in (overrides or {}).items():
        if key not in params:
            check.error((*path, "params", key), f"unknown parameter {key!r} (this check's params: "
                                                f"{', '.join(sorted(params)) or 'none'})")
            return None
        if message := param_type_error(key, params[key], [value], "this check"):
            check.error((*path, "params", key), message)
            return None
    if None in (name, expect, os, facts, overrides):
        return None
    return CheckExample(name, facts, os, dict(overrides), expect)


def _example_facts(raw: Any, path: P, check: Checker) -> dict[str, Any] | None:
    body = check.mapping(raw, path, "example facts (kind -> facts)")
    if body is None:
        return None
    facts: dict[str, Any] = {}
    for kind, value in body.items():
        if kind not in FACT_KINDS:
            check.error((*path, kind), f"unknown fact kind {kind!r} (known: {', '.join(FACT_KINDS)})")
            return None
        if not isinstance(value, Mapping):
            check.error((*path, kind), f"facts of {kind!r} must be a mapping")
            return None
        # The agent always says whether a kind is available; an example that leaves it out means "it is".
        facts[kind] = {"available": True, **value}
    return facts


def _value_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else ("a list" if isinstance(value, list) else None)


def param_type_error(name: str, default: Any, values: Any, check_id: str) -> str | None:
    """A value whose kind differs from the check's default ("90" for 90) would silently always fail."""
    expected = _value_kind(default)
    for value in values:
        got = _value_kind(value)
        if expected is not None and got is not None and got != expected:
            return f"parameter {name!r} of {check_id} is {expected} (default {default!r}), not {value!r}"
    return None
