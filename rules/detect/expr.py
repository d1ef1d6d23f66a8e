"""Match expressions: ``all``/``any``/``not`` over leaves ``{field: path, <op>: value}``.

Compiled once at load into small objects whose ``matches(event)`` is pure and allocation-light.
Compliance checks call ``judge(scope)`` instead: three-valued (True / False / None = "could not
judge"), because a fact that was never collected must give "error", not "fail". The scope records
the absent paths (``scope.absent(field)``) and makes per-item scopes (``scope.child(item, index)``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.detect.fields import DETECT_NAMES, MISSING, FieldPath, parse_field

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
        return _OPS[self.op](_fold(actual, self.nocase), expected)

    def judge(self, scope: Any) -> bool | None:
        # An absent key is "not collected" (None: cannot judge); a present null is "not set" and, as in
        # detection, makes every operator false except `exists: false`.
        actual = self.field.lookup(scope)
        if actual is MISSING:
            if self.op == "exists":
                return self.value is False
            scope.absent(self.field)
            return None
        if actual is None:
            return self.op == "exists" and self.value is False
        if self.op == "exists":
            return self.value is True
        expected = self.value
        if isinstance(expected, Ref):
            expected = expected.path.lookup(scope)
            if expected is MISSING:
                scope.absent(self.value.path)
                return None
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
            scope.absent(self.field)
            return None
        if not isinstance(items, list | tuple):
            return False
        combine = _kleene_all if self.op == "every" else _kleene_any
        return combine(self.part.judge(scope.child(self.field, index, item)) for index, item in enumerate(items))


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


@dataclass
class Compiler:
    """Compiles raw YAML expressions, reporting problems through ``error(path, message)``.

    ``names``: the @-names field paths may use; ``field_check`` lets a caller reject paths it knows are
    wrong (checks: an unknown fact kind or parameter).
    """

    error: ErrorFn
    regexes: list[tuple[str, int, tuple[Any, ...]]]  # (pattern, flags, path) for the slowness check
    names: frozenset[str] = DETECT_NAMES
    field_check: FieldCheckFn | None = None
    _item_depth: int = 0  # > 0 inside every/some, where @item and item-relative paths make sense

    def compile(self, raw: Any, path: tuple[Any, ...]) -> Expr | None:
        if not isinstance(raw, Mapping):
            self.error(path, f"expression must be a mapping, not {type(raw).__name__}")
            return None
        for combinator in ("all", "any", "not"):
            if combinator in raw:
                return self._combinator(combinator, raw, path)
        return self._leaf(raw, path)

    def field(self, text: Any, path: tuple[Any, ...]) -> FieldPath | None:
        """Parse and vet one field path (also used for refs); None with an error recorded."""
        try:
            field = parse_field(text, self.names)
        except ValueError as exc:
            self.error(path, str(exc))
            return None
        inside = self._item_depth > 0
        if field.root == "item" and not inside:
            self.error(path, "@item addresses the current item and only works inside every/some")
            return None
        message = self.field_check(field, path, inside) if self.field_check is not None else None
        if message:
            self.error(path, message)
            return None
        return field

    def _combinator(self, name: str, raw: Mapping[str, Any], path: tuple[Any, ...]) -> Expr | None:
        if len(raw) != 1:
            extra = sorted(str(k) for k in raw if k != name)
            self.error(path, f"'{name}' must be the only key of its mapping (also found: {', '.join(extra)})")
            return None
        body = raw[name]
        if name == "not":
            inner = self.compile(body, (*path, name))
            return Not(inner) if inner is not None else None
        if not isinstance(body, list) or not body:
            self.error((*path, name), f"'{name}' takes a non-empty list of expressions")
            return None
        parts = [self.compile(item, (*path, name, i)) for i, item in enumerate(body)]
        if any(p is None for p in parts):
            return None
        return All(tuple(parts)) if name == "all" else AnyOf(tuple(parts))

    def _leaf(self, raw: Mapping[str, Any], path: tuple[Any, ...]) -> Expr | None:
        ops = [k for k in raw if k in OPERATORS]
        unknown = [k for k in raw if k not in OPERATORS and k not in LEAF_KEYS]
        ok = True
        for key in unknown:
            self.error((*path, key), f"unknown operator {key!r} (known: {', '.join(sorted(OPERATORS))}, all, any, not)")
            ok = False
        if "field" not in raw:
            self.error(path, "expression leaf needs 'field'")
            return None
        if len(ops) != 1:
            if unknown and not ops:
                return None  # the unknown key was almost certainly meant as the operator; one error is enough
            found = ", ".join(ops) if ops else "none"
            self.error(path, f"expression leaf needs exactly one operator (found: {found})")
            return None
        field = self.field(raw["field"], (*path, "field"))
        if field is None:
            return None
        op = ops[0]
        if op in QUANTIFIERS:
            return self._quantifier(raw, field, op, path, ok)
        nocase = raw.get("nocase", False)
        if not isinstance(nocase, bool):
            self.error((*path, "nocase"), "nocase must be true or false")
            return None
        if nocase and op not in STRING_OPS:
            self.error((*path, "nocase"), f"nocase applies only to string operators, not {op!r}")
            return None
        value = self._value(op, raw[op], nocase, (*path, op))
        if value is MISSING or not ok:
            return None
        return Leaf(field, op, value, nocase)

    def _quantifier(self, raw: Mapping[str, Any], field: FieldPath, op: str, path: tuple[Any, ...],
                    ok: bool) -> Expr | None:
        if "nocase" in raw:
            self.error((*path, "nocase"), f"nocase applies only to string operators, not {op!r}")
            return None
        self._item_depth += 1
        try:
            part = self.compile(raw[op], (*path, op))
        finally:
            self._item_depth -= 1
        return Quantifier(field, op, part) if part is not None and ok else None

    def _value(self, op: str, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        if isinstance(raw, Mapping):
            return self._ref(op, raw, path)
        checker = getattr(self, f"_value_{op}", None)
        if checker is not None:
            return checker(raw, nocase, path)
        # eq / contains / startswith / endswith
        if op in ("startswith", "endswith") and not isinstance(raw, str):
            return self._bad(path, f"{op} takes a string, not {raw!r}")
        if isinstance(raw, list):
            return self._bad(path, f"{op} takes a single value, not a list (use 'in' for a list)")
        return _fold(raw, nocase)

    def _ref(self, op: str, raw: Mapping[str, Any], path: tuple[Any, ...]) -> Any:
        if set(raw) != {"ref"}:
            return self._bad(path, "a mapping value must be {ref: <field path>}")
        if op in ("regex", "exists", "empty"):
            return self._bad(path, f"{op} does not take a ref")
        field = self.field(raw["ref"], (*path, "ref"))
        return MISSING if field is None else Ref(field)

    def _bad(self, path: tuple[Any, ...], message: str) -> Any:
        self.error(path, message)
        return MISSING

    def _value_in(self, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, list) or len(raw) > MAX_LIST:
            return self._bad(path, f"in takes a list (at most {MAX_LIST} items) or a ref")
        if any(isinstance(v, list | dict) for v in raw):
            return self._bad(path, "in takes a list of scalars")
        folded = _fold(raw, nocase)
        # A frozenset is only safe when every item is a string: {1} would also contain True.
        return frozenset(folded) if all(isinstance(v, str) for v in folded) else tuple(folded)

    def _value_regex(self, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, str):
            return self._bad(path, f"regex takes a string, not {raw!r}")
        flags = re.IGNORECASE if nocase else 0
        try:
            compiled = re.compile(raw, flags)
        except re.error as exc:
            return self._bad(path, f"regex does not compile: {exc}")
        self.regexes.append((raw, flags, path))
        return compiled

    def _value_cidr(self, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(v, str) for v in items):
            return self._bad(path, "cidr takes a network string or a list of them")
        try:
            return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in items)
        except ValueError as exc:
            return self._bad(path, f"bad network: {exc}")

    def _value_gt(self, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        if not _is_number(raw):
            return self._bad(path, f"comparison takes a number, not {raw!r}")
        return raw

    _value_lt = _value_gte = _value_lte = _value_gt

    def _value_exists(self, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, bool):
            return self._bad(path, f"exists takes true or false, not {raw!r}")
        return raw

    def _value_empty(self, raw: Any, nocase: bool, path: tuple[Any, ...]) -> Any:
        if not isinstance(raw, bool):
            return self._bad(path, f"empty takes true or false, not {raw!r}")
        return raw

