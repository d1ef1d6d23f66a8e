"""Inline examples for converted Sigma rules: a positive event built from the detection's own values.

A positive example takes a value per field that each leaf accepts (`any` tries each branch, `not`
adds nothing) and is kept only if the expression, evaluated here with the engine's semantics,
accepts it; the engine runs the examples again after loading.
"""

from __future__ import annotations

import ipaddress
import re
import re._parser as sre_parse  # example strings for `re` values (private, stable since 3.11)
from collections.abc import Mapping
from typing import Any

RAW = "raw"
EXAMPLE_TS = "2026-03-02T11:00:00Z"
EXAMPLE_HOST = "web01"
NEGATIVE_RAW = "unrelated line"
MAX_CANDIDATES = 64


class NoExample(Exception):
    """No event satisfying the detection could be built (the rule is skipped with this reason)."""


# A positive example is built from the expression's own values (a value per field that each leaf
# accepts; `any` tries each branch, `not` adds nothing) and kept only if the expression, evaluated
# here with the engine's semantics, accepts it. The engine runs the examples again after loading.


def examples(match: dict[str, Any], event_types: list[str], program: str) -> list[dict[str, Any]]:
    positive = _positive(match, f"Mar  2 11:00:00 {EXAMPLE_HOST} {program}[4242]:")
    if positive is None:
        raise NoExample("could not build an example (no event satisfying the detection was found)")
    negative = {RAW: NEGATIVE_RAW, "process": "cron"}
    if _eval(match, negative):
        raise NoExample("could not build an example (an unrelated line would match too)")
    event_type = event_types[0]
    return [
        {"name": "an event built from the Sigma detection values", "alerts": 1,
         "events": [{"type": event_type, "ts": EXAMPLE_TS, "host": EXAMPLE_HOST, "data": positive}]},
        {"name": "an unrelated line", "alerts": 0,
         "events": [{"type": event_type, "ts": EXAMPLE_TS, "host": EXAMPLE_HOST, "data": negative}]},
    ]


def _positive(match: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    for constraints in _candidates(match):
        data = _build(constraints, prefix)
        if data is not None and _eval(match, data):
            return data
    return None


# A candidate is a list of (field, op, sample) the event must satisfy together.
Candidate = list[tuple[str, str, Any]]


def _candidates(expr: Mapping[str, Any]) -> list[Candidate]:
    if "all" in expr:
        combined: list[Candidate] = [[]]
        for sub in expr["all"]:
            combined = [a + b for a in combined for b in _candidates(sub)][:MAX_CANDIDATES]
        return combined
    if "any" in expr:
        return [c for sub in expr["any"] for c in _candidates(sub)][:MAX_CANDIDATES]
    if "not" in expr:
        return [[]]
    if expr.get("exists") is False:  # an absent field: nothing to add
        return [[]]
    sample = _sample(expr)
    return [] if sample is None else [[(expr["field"], _op(expr), sample)]]


def _op(leaf: Mapping[str, Any]) -> str:
    return next(k for k in leaf if k not in ("field", "nocase"))


def _sample(leaf: Mapping[str, Any]) -> Any:
    op = _op(leaf)
    value = leaf[op]
    if op in ("eq", "contains", "startswith", "endswith"):
        return value
    if op == "exists":
        return "x"
    if op == "cidr":
        network = ipaddress.ip_network(value, strict=False)
        return str(network.network_address + (1 if network.num_addresses > 2 else 0))
    if op == "regex":
        return _regex_sample(value)
    return None


def _build(constraints: Candidate, prefix: str) -> dict[str, Any] | None:
    by_field: dict[str, list[tuple[str, Any]]] = {}
    for name, op, sample in constraints:
        by_field.setdefault(name, []).append((op, sample))
    data: dict[str, Any] = {}
    for name, wants in by_field.items():
        exact = [s for op, s in wants if op == "eq"]
        if exact:
            data[name] = exact[0]
            continue
        wants = [(op, s) for op, s in wants if s is not None]
        if not wants:
            continue
        heads = [str(s) for op, s in wants if op == "startswith"]
        tails = [str(s) for op, s in wants if op == "endswith"]
        middle = [str(s) for op, s in wants if op not in ("startswith", "endswith")]
        if name == RAW and not heads:
            heads = [prefix]
        data[name] = _join([*heads[:1], *middle, *tails[:1]])
    if RAW not in data:
        data[RAW] = f"{prefix} example"
    return data


def _join(pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        out += piece if not out or out[-1].isspace() or piece[:1].isspace() else " " + piece
    return out


def _regex_sample(pattern: str) -> str | None:
    """A string the pattern matches, for the simple patterns Sigma rules use; None when unsure."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError):
        return None
    try:
        return _emit(list(parsed))
    except (NoExample, RecursionError, TypeError, ValueError):
        return None


def _emit(items: list[tuple[Any, Any]]) -> str:
    out = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_in_char(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            out.append(_emit(list(sub)) * max(low, min(1, high)))
        elif name == "SUBPATTERN":
            out.append(_emit(list(arg[-1])))
        elif name == "ATOMIC_GROUP":
            out.append(_emit(list(arg)))
        elif name == "BRANCH":
            out.append(_emit(list(arg[1][0])))
        elif name == "AT":
            continue
        else:
            raise NoExample(name)
    return "".join(out)


def _in_char(arg: list[tuple[Any, Any]]) -> str:
    for op, value in arg:
        name = str(op)
        if name == "NEGATE":
            raise NoExample(name)
        if name == "LITERAL":
            return chr(value)
        if name == "RANGE":
            return chr(value[0])
        if name == "CATEGORY":
            return {"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " ", "CATEGORY_WORD": "a"}.get(str(value), "a")
    raise NoExample("IN")


def _eval(expr: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """The engine's semantics for the operators this module writes."""
    if "all" in expr:
        return all(_eval(sub, data) for sub in expr["all"])
    if "any" in expr:
        return any(_eval(sub, data) for sub in expr["any"])
    if "not" in expr:
        return not _eval(expr["not"], data)
    op = _op(expr)
    want = expr[op]
    value = data.get(expr["field"])
    if op == "exists":
        return (value is not None) == want
    if value is None:
        return False
    nocase = expr.get("nocase", False)
    if op == "cidr":
        try:
            return ipaddress.ip_address(str(value)) in ipaddress.ip_network(want, strict=False)
        except ValueError:
            return False
    if op == "regex":
        return isinstance(value, str) and re.search(want, value, re.IGNORECASE if nocase else 0) is not None
    if op == "eq" and not isinstance(want, str):
        return bool(value == want)
    if not isinstance(value, str):
        return False
    have, text = (value.casefold(), str(want).casefold()) if nocase else (value, str(want))
    return {"eq": have == text, "contains": text in have, "startswith": have.startswith(text),
            "endswith": have.endswith(text)}[op]
