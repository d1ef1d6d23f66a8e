"""Validation of one rule file's data into a ``Rule``; every problem is reported with its line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rules.detect.compile import Compiler
from rules.detect.durations import parse_duration
from rules.detect.examples_data import parse_examples
from rules.detect.expr import Expr
from rules.detect.fields import parse_field
from rules.detect.model import LoadError, Rule, Sequence, Step, Threshold
from rules.detect.yamlload import Lines

SEVERITIES = ("info", "low", "medium", "high", "critical")
STATUSES = ("experimental", "test", "stable", "deprecated")
REQUIRED = ("id", "title", "status", "severity", "tests")
OPTIONAL = ("event_type", "match", "threshold", "sequence", "suppress", "tags", "description", "falsepositives",
            "remediation", "references")
ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
LANGS = ("vi", "en")
P = tuple[Any, ...]


class Checker:
    """Collects errors for one file and the regexes that still need the time-bound check."""

    def __init__(self, file: str, lines: Lines) -> None:
        self.file = file
        self.lines = lines
        self.errors: list[LoadError] = []
        self.regexes: list[tuple[str, int, P]] = []
        self.compiler = Compiler(self.error, self.regexes)

    def error(self, path: P, message: str) -> None:
        self.errors.append(LoadError(self.file, self.lines.of(path), message))

    def keys(self, raw: Mapping[str, Any], path: P, required: tuple[str, ...], optional: tuple[str, ...]) -> bool:
        ok = True
        for key in raw:
            if key not in required and key not in optional:
                self.error((*path, key), f"unknown key {key!r}")
                ok = False
        for key in required:
            if key not in raw:
                self.error(path, f"missing key {key!r}")
                ok = False
        return ok

    def mapping(self, raw: Any, path: P, what: str) -> Mapping[str, Any] | None:
        if isinstance(raw, Mapping):
            return raw
        self.error(path, f"{what} must be a mapping, not {_kind(raw)}")
        return None

    def string(self, raw: Any, path: P, what: str) -> str | None:
        if isinstance(raw, str) and raw.strip():
            return raw
        self.error(path, f"{what} must be a non-empty string, not {_kind(raw)}")
        return None

    def string_list(self, raw: Any, path: P, what: str) -> tuple[str, ...] | None:
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            return tuple(raw)
        self.error(path, f"{what} must be a list of strings")
        return None

    def choice(self, raw: Any, path: P, what: str, choices: tuple[str, ...]) -> str | None:
        if isinstance(raw, str) and raw in choices:
            return raw
        self.error(path, f"{what} must be one of {', '.join(choices)}, not {raw!r}")
        return None

    def duration(self, raw: Any, path: P, what: str, positive: bool) -> int | None:
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            self.error(path, f"{what}: {exc}")
            return None
        if positive and seconds == 0:
            self.error(path, f"{what} must be longer than 0 seconds")
            return None
        return seconds

    def count(self, raw: Any, path: P, what: str, minimum: int = 1) -> int | None:
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= minimum:
            return raw
        self.error(path, f"{what} must be an integer >= {minimum}, not {raw!r}")
        return None

    def event_types(self, raw: Any, path: P) -> frozenset[str] | None:
        items = raw if isinstance(raw, list) else [raw]
        if items and all(isinstance(v, str) and v.strip() for v in items):
            return frozenset(items)
        self.error(path, "event_type must be an event type or a non-empty list of them")
        return None

    def group_by(self, raw: Any, path: P) -> tuple[str, ...] | None:
        fields = self.string_list(raw, path, "group_by")
        if fields is None:
            return None
        for index, text in enumerate(fields):
            try:
                parse_field(text)
            except ValueError as exc:
                self.error((*path, index), str(exc))
                return None
        return fields

    def text(self, raw: Any, path: P, what: str, lists: bool = False) -> dict[str, Any] | None:
        """A {vi, en} pair of strings (or of string lists)."""
        body = self.mapping(raw, path, what)
        if body is None or not self.keys(body, path, LANGS, ()):
            return None
        result: dict[str, Any] = {}
        for lang in LANGS:
            value = self.string_list(body[lang], (*path, lang), f"{what}.{lang}") if lists else \
                self.string(body[lang], (*path, lang), f"{what}.{lang}")
            if value is None:
                return None
            result[lang] = value
        return result


def _kind(raw: Any) -> str:
    return "null" if raw is None else type(raw).__name__


def build_rule(data: Any, check: Checker, stem: str) -> Rule | None:
    """Validate a parsed file; returns the Rule, or None with errors recorded in ``check``."""
    raw = check.mapping(data, (), "a rule file")
    if raw is None:
        return None
    check.keys(raw, (), REQUIRED, OPTIONAL)
    rule_id = _rule_id(raw, check, stem)
    fields = {
        "title": check.text(raw["title"], ("title",), "title") if "title" in raw else None,
        "status": check.choice(raw["status"], ("status",), "status", STATUSES) if "status" in raw else None,
        "severity": check.choice(raw["severity"], ("severity",), "severity", SEVERITIES) if "severity" in raw else None,
        "suppress_s": check.duration(raw.get("suppress", 0), ("suppress",), "suppress", positive=False),
        "tags": _tags(raw.get("tags", []), check),
        "description": check.text(raw["description"], ("description",), "description") if "description" in raw
        else {},
        "falsepositives": check.text(raw["falsepositives"], ("falsepositives",), "falsepositives", lists=True)
        if "falsepositives" in raw else {"vi": (), "en": ()},
        "remediation": check.text(raw["remediation"], ("remediation",), "remediation") if "remediation" in raw
        else {},
        "references": check.string_list(raw.get("references", []), ("references",), "references"),
    }
    match = check.compiler.compile(raw["match"], ("match",)) if "match" in raw else None
    threshold, sequence, event_types = _correlation(raw, check, match)
    tests = parse_examples(raw.get("tests"), ("tests",), check) if "tests" in raw else None
    if check.errors or rule_id is None or event_types is None or tests is None:
        return None
    if any(v is None for v in fields.values()):
        return None
    return Rule(id=rule_id, event_types=event_types, match=match, threshold=threshold, sequence=sequence,
                tests=tests, file=check.file, **fields)


def _rule_id(raw: Mapping[str, Any], check: Checker, stem: str) -> str | None:
    if "id" not in raw:
        return None
    rule_id = check.string(raw["id"], ("id",), "id")
    if rule_id is None:
        return None
    if not ID_RE.match(rule_id):
        check.error(("id",), f"id {rule_id!r} is not snake_case with a domain prefix (e.g. ssh_lnx_brute_force)")
        return None
    if rule_id != stem:
        check.error(("id",), f"id {rule_id!r} does not match the file name {stem!r}")
        return None
    return rule_id


def _tags(raw: Any, check: Checker) -> tuple[str, ...] | None:
    tags = check.string_list(raw, ("tags",), "tags")
    if tags is None:
        return None
    for index, tag in enumerate(tags):
        if not TAG_RE.match(tag):
            check.error(("tags", index), f"tag {tag!r} must be lower case (e.g. attack.t1110.001)")
            return None
    return tags


def _correlation(raw: Mapping[str, Any], check: Checker, match: Expr | None):
    """Returns (threshold, sequence, event_types); event_types None on error."""
    event_types = check.event_types(raw["event_type"], ("event_type",)) if "event_type" in raw else None
    if "threshold" in raw and "sequence" in raw:
        check.error(("threshold",), "threshold and sequence are exclusive; use one")
        return None, None, None
    if "sequence" in raw:
        sequence = _sequence(raw["sequence"], check, event_types)
        if sequence is None:
            return None, None, None
        return None, sequence, frozenset().union(*(s.event_types for s in sequence.steps))
    if "event_type" not in raw:
        check.error((), "missing key 'event_type'")
    threshold = _threshold(raw["threshold"], check) if "threshold" in raw else None
    if "threshold" in raw and threshold is None:
        return None, None, None
    return threshold, None, event_types


def _threshold(raw: Any, check: Checker) -> Threshold | None:
    path = ("threshold",)
    body = check.mapping(raw, path, "threshold")
    if body is None or not check.keys(body, path, ("count", "window"), ("group_by",)):
        return None
    count = check.count(body["count"], (*path, "count"), "threshold.count")
    window = check.duration(body["window"], (*path, "window"), "threshold.window", positive=True)
    group_by = check.group_by(body.get("group_by", []), (*path, "group_by"))
    if count is None or window is None or group_by is None:
        return None
    return Threshold(count, window, group_by)


def _sequence(raw: Any, check: Checker, default_types: frozenset[str] | None) -> Sequence | None:
    path = ("sequence",)
    body = check.mapping(raw, path, "sequence")
    if body is None or not check.keys(body, path, ("within", "steps"), ("group_by",)):
        return None
    within = check.duration(body["within"], (*path, "within"), "sequence.within", positive=True)
    group_by = check.group_by(body.get("group_by", []), (*path, "group_by"))
    raw_steps = body["steps"]
    if not isinstance(raw_steps, list) or len(raw_steps) < 2:
        check.error((*path, "steps"), "sequence.steps must be a list of at least two steps")
        return None
    steps = [_step(item, (*path, "steps", i), check, default_types) for i, item in enumerate(raw_steps)]
    if within is None or group_by is None or any(s is None for s in steps):
        return None
    return Sequence(within, tuple(steps), group_by)


def _step(raw: Any, path: P, check: Checker, default_types: frozenset[str] | None) -> Step | None:
    body = check.mapping(raw, path, "a sequence step")
    if body is None or not check.keys(body, path, (), ("event_type", "match", "count")):
        return None
    if "event_type" in body:
        types = check.event_types(body["event_type"], (*path, "event_type"))
    elif default_types is not None:
        types = default_types
    else:
        check.error(path, "missing key 'event_type' (a step needs one unless the rule sets event_type)")
        return None
    count = check.count(body.get("count", 1), (*path, "count"), "step count")
    match = check.compiler.compile(body["match"], (*path, "match")) if "match" in body else None
    if types is None or count is None or ("match" in body and match is None):
        return None
    return Step(types, match, count)
