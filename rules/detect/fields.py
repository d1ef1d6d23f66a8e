"""Field paths: dotted names into an event's ``data``, or ``@``-names into its envelope and context.

Compliance checks use the same paths over a facts document, with their own ``@``-names
(``@param.<name>``, ``@os``, ``@item``); each caller says which ``@``-names it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()

# @-name -> (root, takes a dotted rest). Roots "data", "ctx" and "param" are mappings on the event;
# the others are plain attributes.
_NAMES: dict[str, tuple[str, bool]] = {
    "@type": ("type", False), "@host": ("host", False), "@unit": ("unit", False), "@ctx": ("ctx", True),
    "@param": ("param", True), "@os": ("os", False), "@item": ("item", False),
}
DETECT_NAMES = frozenset({"@type", "@host", "@unit", "@ctx"})
CHECK_NAMES = frozenset({"@param", "@os", "@item"})
_MAPPING_ROOTS = frozenset({"data", "ctx", "param"})
_SEGMENT = re.compile(r"^[^.\s]+$")


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A compiled path; ``resolve`` returns the value or MISSING."""

    text: str
    root: str  # "data", "ctx", "param", or an envelope attribute name
    parts: tuple[str, ...]

    def resolve(self, event: Any) -> Any:
        if self.root == "data":
            value: Any = event.data
        elif self.root == "ctx":
            value = event.ctx
        else:
            return self.lookup(event) if self.root == "param" else _none_missing(getattr(event, self.root, None))
        for part in self.parts:
            # EAFP on the hot path of every rule evaluation: parts are strings, so indexing a list,
            # a string or a number with one raises TypeError (never a wrong hit).
            try:
                value = value[part]
            except (KeyError, TypeError):
                return MISSING
        # JSON null is how agents say "not known"; treating it as absent keeps `exists` honest.
        return MISSING if value is None else value

    def lookup(self, event: Any) -> Any:
        """Like ``resolve``, but a present JSON null stays None: checks tell "not set" from "not collected".

        Facts have keys that contain dots (sysctl names, file paths): a segment that is not a key is
        joined with the following ones, longest first (``sysctl.values.net.ipv4.ip_forward``).
        """
        if self.root not in _MAPPING_ROOTS:
            return _none_missing(getattr(event, self.root, None))
        return _descend(getattr(event, self.root, None), self.parts)


def _descend(value: Any, parts: tuple[str, ...]) -> Any:
    while parts:
        if not isinstance(value, Mapping):
            return MISSING
        if parts[0] in value:
            value, parts = value[parts[0]], parts[1:]
            continue
        for end in range(len(parts), 1, -1):
            key = ".".join(parts[:end])
            if key in value:
                value, parts = value[key], parts[end:]
                break
        else:
            return MISSING
    return value


def _none_missing(value: Any) -> Any:
    return MISSING if value is None else value


def parse_field(text: object, names: frozenset[str] = DETECT_NAMES) -> FieldPath:
    """Compile a field path; raise ValueError naming what is wrong. ``names``: the @-names allowed."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"field path must be a non-empty string, not {text!r}")
    if text.startswith("@"):
        head, _, rest = text.partition(".")
        root, dotted = _NAMES.get(head, ("", False))
        if head not in names or bool(rest) != dotted:
            known = ", ".join(f"{n}.<name>" if _NAMES[n][1] else n for n in sorted(names))
            raise ValueError(f"unknown field {text!r}: use {known}")
        return FieldPath(text, root, _segments(text, rest) if dotted else ())
    return FieldPath(text, "data", _segments(text, text))


def _segments(text: str, dotted: str) -> tuple[str, ...]:
    parts = tuple(dotted.split("."))
    if not all(_SEGMENT.match(p) for p in parts):
        raise ValueError(f"bad field path {text!r}")
    return parts
