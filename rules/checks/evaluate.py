"""Judging one check over one host's facts: pass / fail / not_applicable / error, with evidence text.

Order: the os filter, the kinds the check needs, ``when``, then ``assert``. Expressions are judged
three-valued (``Expr.judge``): a key the agent never sent (its kind being available) cannot be judged
and gives ``error`` naming the path; a present null is "not set" and judged like detection does.
A path the check also tests with ``exists`` is one whose absence the author handles (e.g. a keyword
older OpenSSH does not have): reading it while absent is simply false there.
Nothing raises: an exception inside evaluation becomes ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rules.checks.model import Check
from rules.detect.expr import Expr
from rules.detect.fields import MISSING, FieldPath

MAX_VALUE_CHARS = 200
MAX_MISSING_SHOWN = 5
MAX_ITEMS_SHOWN = 5
MAX_LABEL_CHARS = 60


class Scope:
    """What a check's expressions see: the facts (``data``), parameters, the os family, the current item.

    ``missing`` collects the absent paths read, spelled from the document root (``accounts.users[3].uid``);
    ``notes`` names the items that decided a top-level every/some, for the evidence of a failed check.
    """

    __slots__ = ("ctx", "data", "guarded", "host", "item", "missing", "notes", "os", "param", "prefix", "type",
                 "unit")

    def __init__(self, data: Any, param: Mapping[str, Any], os: str | None, *, item: Any = None,
                 prefix: str = "", missing: list[str] | None = None, guarded: frozenset[str] = frozenset()) -> None:
        self.data, self.param, self.os, self.item, self.prefix = data, param, os, item, prefix
        self.guarded = guarded
        self.missing = [] if missing is None else missing
        self.notes: list[str] = []
        self.ctx = self.type = self.host = self.unit = None  # detection-only names; never valid in a check

    def child(self, field: FieldPath, index: int, item: Any) -> Scope:
        """The scope of one item of the list at ``field`` (for every/some)."""
        data = item if isinstance(item, Mapping) else {}
        return Scope(data, self.param, self.os, item=item, prefix=f"{self.name(field)}[{index}]",
                     missing=self.missing, guarded=self.guarded)

    def name(self, field: FieldPath) -> str:
        if field.root == "item":
            return self.prefix or field.text
        if field.root == "data" and self.prefix:
            return f"{self.prefix}.{field.text}"
        return field.text

    def absent(self, field: FieldPath) -> bool | None:
        """An absent path: False when the check tests it with `exists`, else None (recorded: cannot judge)."""
        if field.text in self.guarded:
            return False
        self.missing.append(self.name(field))
        return None

    def note_items(self, field: FieldPath, op: str, items: list[tuple[int, Any]]) -> None:
        if self.prefix or not items:
            return  # nested quantifiers would only repeat what the outer one says
        shown = ", ".join(f"{self.name(field)}[{i}] {_label(item)}" for i, item in items[:MAX_ITEMS_SHOWN])
        more = f" (+{len(items) - MAX_ITEMS_SHOWN} more)" if len(items) > MAX_ITEMS_SHOWN else ""
        self.notes.append(f"{'items not matching' if op == 'every' else 'items matching'}: {shown}{more}")


def _label(item: Any) -> str:
    """An item as a person would name it: its ``name`` when it has one."""
    value = item.get("name", item) if isinstance(item, Mapping) else item
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 1] + "…"


def is_available(facts: Mapping[str, Any], kind: str) -> bool:
    body = facts.get(kind)
    return isinstance(body, Mapping) and body.get("available") is True


def unavailable_reason(facts: Mapping[str, Any], kind: str) -> str:
    body = facts.get(kind)
    if not isinstance(body, Mapping):
        return f"facts of kind {kind!r} not collected"
    error = body.get("error")
    return f"facts of kind {kind!r} not available" + (f" ({_clip(str(error))})" if error else "")


def evaluate_check(check: Check, facts: Mapping[str, Any], os_family: str | None,
                   params: Mapping[str, Any]) -> tuple[str, str]:
    """(status, evidence) of ``check`` over ``facts`` (kind -> facts)."""
    try:
        return _evaluate(check, facts, os_family, params)
    except Exception as exc:  # noqa: BLE001 - a surprising fact shape must cost one check, not the report
        return "error", _clip(f"evaluation failed: {type(exc).__name__}: {exc}")


def _evaluate(check: Check, facts: Mapping[str, Any], os_family: str | None,
              params: Mapping[str, Any]) -> tuple[str, str]:
    if check.os is not None and os_family not in check.os:
        host = "unknown" if os_family is None else repr(os_family)
        return "not_applicable", f"applies to os {', '.join(check.os)}; host os is {host}"
    for kind in check.kinds:
        if not is_available(facts, kind):
            return "not_applicable", unavailable_reason(facts, kind)
    scope = Scope(facts, params, os_family, guarded=check.guarded)
    if check.when is not None:
        result = check.when.judge(scope)
        if result is None:
            return _undecided(check, scope, facts)
        if not result:
            return "not_applicable", "the check's 'when' condition does not hold"
        scope.missing.clear()  # what `when` read and noted says nothing about the assertion's outcome
        scope.notes.clear()
    result = check.assertion.judge(scope)
    if result is None:
        return _undecided(check, scope, facts)
    if result:
        return "pass", evidence_text(check, scope)
    return "fail", "; ".join(part for part in (evidence_text(check, scope), *scope.notes) if part)


def _undecided(check: Check, scope: Scope, facts: Mapping[str, Any]) -> tuple[str, str]:
    """An expression read absent facts: a kind that is not available makes the check not applicable
    (the check forgot to list it in applies_to.facts); otherwise the agent's facts lack a key: error."""
    missing = list(dict.fromkeys(scope.missing))
    kinds = dict.fromkeys(name.split(".")[0].split("[")[0] for name in missing if not name.startswith("@"))
    for kind in kinds:
        if not is_available(facts, kind):
            return "not_applicable", unavailable_reason(facts, kind)
    shown = ", ".join(missing[:MAX_MISSING_SHOWN]) + (f" (+{len(missing) - MAX_MISSING_SHOWN} more)"
                                                     if len(missing) > MAX_MISSING_SHOWN else "")
    evidence = evidence_text(check, scope)
    return "error", f"missing fact: {shown}" + (f"; {evidence}" if evidence else "")


def evidence_text(check: Check, scope: Scope) -> str:
    """``path = value; ...`` for the check's evidence paths (JSON values, each clipped)."""
    parts = []
    for field in check.evidence:
        value = field.lookup(scope)
        shown = "(missing)" if value is MISSING else _clip(json.dumps(value, ensure_ascii=False, default=str))
        parts.append(f"{field.text} = {shown}")
    return "; ".join(parts)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 1] + "…"


def judge(expr: Expr, facts: Mapping[str, Any], params: Mapping[str, Any], os_family: str | None) -> bool | None:
    """One expression over facts, three-valued (for tests and tools)."""
    return expr.judge(Scope(facts, params, os_family))
