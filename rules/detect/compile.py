"""Compiling raw YAML match expressions into ``rules.detect.expr`` trees, with errors by path.

Apart from the evaluation code so each stays small: the loader compiles once, the engine evaluates often.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.detect.expr import (
    LEAF_KEYS,
    MAX_LIST,
    OPERATORS,
    QUANTIFIERS,
    STRING_OPS,
    All,
    AnyOf,
    ErrorFn,
    Expr,
    FieldCheckFn,
    Leaf,
    Not,
    Quantifier,
    Ref,
    _fold,
    _is_number,
)
from rules.detect.fields import DETECT_NAMES, MISSING, FieldPath, parse_field


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

