"""Match expressions: ``all``/``any``/``not`` over leaves ``{field: path, <op>: value}``.

Compiled once at load into small objects whose ``matches(event)`` is pure and allocation-light.
Compliance checks call ``judge(scope)`` instead: three-valued (True / False / None = "could not
judge"), because a fact that was never collected must give "error", not "fail". The scope decides
what an absent path means (``scope.absent(field)`` returns None or False), names the items that
decided an every/some (``scope.note_items``) and makes per-item scopes (``scope.child``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.detect.fields import MISSING, FieldPath

STRING_OPS = frozenset({"eq", "in", "contains", "startswith", "endswith", "regex"})
QUANTIFIERS = frozenset({"every", "some"})
OPERATORS = STRING_OPS | QUANTIFIERS | {"cidr", "gt", "lt", "gte", "lte", "exists", "empty"}
LEAF_KEYS = frozenset({"field", "nocase"})
# Bounds a rule's literal lists; a longer list belongs in @ctx, not in the rule file.
MAX_LIST = 10_000

ErrorFn = Callable[[tuple[Any, ...], str], None]
# (field, yaml path, inside every/some) -> an error message, or None when the path is fine.
FieldCheckFn = Callable[[FieldPath, tuple[Any, ...], bool], "str | None"]


class Expr:
    """Base of compiled expressions."""

    def matches(self, event: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def judge(self, scope: Any) -> bool | None:  # pragma: no cover - abstract
        raise NotImplementedError


def _kleene_all(results: Any) -> bool | None:
    """False as soon as one part is false; None if a part could not be judged; else True."""
    unknown = False
    for result in results:
        if result is False:
            return False
        unknown = unknown or result is None
    return None if unknown else True


def _kleene_any(results: Any) -> bool | None:
    unknown = False
    for result in results:
        if result is True:
            return True
        unknown = unknown or result is None
    return None if unknown else False


@dataclass(frozen=True, slots=True)
class All(Expr):
    parts: tuple[Expr, ...]

    def matches(self, event: Any) -> bool:
        return all(p.matches(event) for p in self.parts)

    def judge(self, scope: Any) -> bool | None:
        return _kleene_all(p.judge(scope) for p in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf(Expr):
    parts: tuple[Expr, ...]

    def matches(self, event: Any) -> bool:
        return any(p.matches(event) for p in self.parts)

    def judge(self, scope: Any) -> bool | None:
        return _kleene_any(p.judge(scope) for p in self.parts)


@dataclass(frozen=True, slots=True)
class Not(Expr):
    part: Expr

    def matches(self, event: Any) -> bool:
        return not self.part.matches(event)

    def judge(self, scope: Any) -> bool | None:
        result = self.part.judge(scope)
        return None if result is None else not result


@dataclass(frozen=True, slots=True)
class Ref:
    """A value read from the same event at evaluation time."""

    path: FieldPath


@dataclass(frozen=True, slots=True)
class Leaf(Expr):
    field: FieldPath
    op: str
    value: Any  # literal (prepared at load) or Ref
    nocase: bool = False

    def matches(self, event: Any) -> bool:
        actual = self.field.resolve(event)
        if self.op == "exists":
            return (actual is not MISSING) == self.value
        if actual is MISSING:
            return False
        expected = self.value
        if isinstance(expected, Ref):
            expected = expected.path.resolve(event)
            if expected is MISSING:
                return False
            expected = _prepare_runtime(self.op, expected, self.nocase)
            if expected is MISSING:
                return False
        return _OPS[self.op](_fold(actual, True) if self.nocase else actual, expected)

    def judge(self, scope: Any) -> bool | None:
        # An absent key is "not collected" (None: cannot judge); a present null is "not set" and, as in
        # detection, makes every operator false except `exists: false`.
        actual = self.field.lookup(scope)
        if actual is MISSING:
            if self.op == "exists":
                return self.value is False
            return scope.absent(self.field)
        if actual is None:
            return self.op == "exists" and self.value is False
        if self.op == "exists":
            return self.value is True
        expected = self.value
        if isinstance(expected, Ref):
            expected = expected.path.lookup(scope)
            if expected is MISSING:
                return scope.absent(self.value.path)
            expected = MISSING if expected is None else _prepare_runtime(self.op, expected, self.nocase)
            if expected is MISSING:
                return False
        return _OPS[self.op](_fold(actual, self.nocase), expected)


class _ItemView:
    """An event seen from inside ``every``/``some``: ``data`` and ``@item`` are the item, the rest is the event."""

    __slots__ = ("_event", "data", "item")

    def __init__(self, event: Any, item: Any) -> None:
        self._event = event
        self.data = item if isinstance(item, Mapping) else {}
        self.item = item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._event, name)


@dataclass(frozen=True, slots=True)
class Quantifier(Expr):
    """``{field: list, every|some: expr}``: the expression evaluated on each item of a list."""

    field: FieldPath
    op: str  # "every" | "some"
    part: Expr

    def matches(self, event: Any) -> bool:
        items = self.field.resolve(event)
        if not isinstance(items, list | tuple):
            return False
        test = all if self.op == "every" else any
        return test(self.part.matches(_ItemView(event, item)) for item in items)

    def judge(self, scope: Any) -> bool | None:
        items = self.field.lookup(scope)
        if items is MISSING:
            return scope.absent(self.field)
        if not isinstance(items, list | tuple):
            return False
        # Every item is judged (no short cut) so the scope can name the items that decided the outcome.
        results = [self.part.judge(scope.child(self.field, index, item)) for index, item in enumerate(items)]
        deciding = self.op != "every"  # the false items decide `every`, the true ones `some`
        scope.note_items(self.field, self.op, [(i, items[i]) for i, r in enumerate(results) if r is deciding])
        return (_kleene_all if self.op == "every" else _kleene_any)(results)


def _fold(value: Any, nocase: bool) -> Any:
    if not nocase:
        return value
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list | tuple):
        return [v.casefold() if isinstance(v, str) else v for v in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; an event flag must not match a port number.
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _op_in(actual: Any, expected: Any) -> bool:
    if isinstance(expected, frozenset) and isinstance(actual, str | int | float):
        return actual in expected and not isinstance(actual, bool)
    return isinstance(expected, list | tuple) and any(_same(actual, e) for e in expected)


def _op_contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list | tuple):
        return any(_same(a, expected) for a in actual)
    return False


def _op_cidr(actual: Any, networks: Any) -> bool:
    if not isinstance(actual, str):
        return False
    try:
        address = ipaddress.ip_address(actual.strip())
    except ValueError:
        return False
    # ipaddress compares raw integers across versions, so check the version explicitly.
    return any(address.version == net.version and address in net for net in networks)


def _str_op(fn: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, e: isinstance(a, str) and isinstance(e, str) and fn(a, e)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _same,
    "in": _op_in,
    "contains": _op_contains,
    "startswith": _str_op(str.startswith),
    "endswith": _str_op(str.endswith),
    "regex": lambda a, e: isinstance(a, str) and e.search(a) is not None,
    "cidr": _op_cidr,
    "gt": lambda a, e: _is_number(a) and _is_number(e) and a > e,
    "lt": lambda a, e: _is_number(a) and _is_number(e) and a < e,
    "gte": lambda a, e: _is_number(a) and _is_number(e) and a >= e,
    "lte": lambda a, e: _is_number(a) and _is_number(e) and a <= e,
    "empty": lambda a, e: isinstance(a, str | list | tuple | Mapping) and (len(a) == 0) == e,
}


def _prepare_runtime(op: str, value: Any, nocase: bool) -> Any:
    """Shape a referenced value like a literal would have been at load; MISSING if unusable."""
    if op == "cidr":
        items = value if isinstance(value, list | tuple) else [value]
        try:
            return [ipaddress.ip_network(str(v), strict=False) for v in items]
        except ValueError:
            return MISSING
    if op == "in":
        if isinstance(value, list | tuple | set | frozenset):
            return _fold(list(value), nocase)
        return MISSING
    return _fold(value, nocase)
