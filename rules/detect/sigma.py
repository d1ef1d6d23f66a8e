"""Sigma import: convert the Sigma rules whose log source Khiên collects into Khiên detection rules.

pySigma parses the rules (detections, modifiers, condition trees); this module maps what Khiên can
evaluate and reports everything else as skipped, with the reason. Only Linux auth-log rules are
candidates (product ``linux``; service ``auth``, ``sshd``, ``sudo``, ``syslog`` or none): keyword
detections match the original log line (``raw``), field detections a small explicit field map.

Supported value modifiers: ``contains``, ``startswith``, ``endswith``, ``all``, ``re`` (with its
``i``/``m``/``s`` flags), ``cidr``, ``cased`` and plain (case-insensitive, wildcard) equality.
Conditions: ``and``/``or``/``not``, ``1 of``/``all of`` selectors. Aggregations (``| count() > 5``,
``near``) and correlation rules are skipped. Every converted rule gets a generated positive and
negative inline example, checked here against the converted expression and again by the engine in
``import_sigma``.

This is the only module that imports pySigma (an optional server dependency); ``rules.detect``
itself does not import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from rules.detect.examples import run_examples
from rules.detect.loader import load_rules
from rules.detect.model import RuleLoadErrors
from rules.detect.sigma_examples import RAW, NoExample, examples

AUTH_TYPES = ["auth.failure", "auth.success", "auth.sudo", "auth.su"]
# Sigma logsource service (product linux) -> Khiên event types. None: no service and no category.
SERVICES: dict[str | None, list[str]] = {
    "sshd": ["auth.failure", "auth.success"],
    "auth": [*AUTH_TYPES, "account.change"],
    "syslog": [*AUTH_TYPES, "account.change"],
    None: [*AUTH_TYPES, "account.change"],
    "sudo": ["auth.sudo"],
}
# Sigma field names (as written in SigmaHQ rules, and Khiên's own names) -> Khiên data fields.
FIELDS: dict[str, str] = {
    **{name: "user" for name in ("User", "user", "UserName", "username", "SubjectUserName")},
    **{name: "target_user" for name in ("TargetUserName", "TargetUser", "target_user")},
    **{name: "source_ip" for name in ("SourceIp", "src_ip", "IpAddress", "source_ip", "SourceAddress")},
    **{name: "source_port" for name in ("SourcePort", "src_port", "IpPort", "source_port")},
    **{name: "command" for name in ("CommandLine", "command", "cmd")},
    **{name: "process" for name in ("Image", "process", "ProcessName", "program")},
    **{name: "pid" for name in ("ProcessId", "pid")},
    **{name: "tty" for name in ("tty", "TTY")},
    **{name: "cwd" for name in ("CurrentDirectory", "cwd", "pwd")},
    **{name: "host" for name in ("Hostname", "hostname", "host")},
    **{name: name for name in ("action", "outcome", "method", "group", "uid", "gid")},
}
SUPPORTED_MODIFIERS = frozenset({"contains", "startswith", "endswith", "all", "re", "i", "ignorecase", "m",
                                 "multiline", "s", "dotall", "cidr", "cased"})
_MODIFIER_NAMES = {cls: name for name, cls in reversed(modifier_mapping.items())}
SEVERITIES = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_INLINE_FLAGS = {SigmaRegularExpressionFlag.MULTILINE: "m", SigmaRegularExpressionFlag.DOTALL: "s"}
REMEDIATION = "See the Sigma rule's references"


@dataclass(frozen=True, slots=True)
class SigmaSkip:
    """A Sigma file or rule that was not converted, and why."""

    file: str
    rule_title: str | None
    reason: str


@dataclass
class SigmaImport:
    """Converted rules as (Khiên rule id, rule mapping ready to dump as YAML), and everything skipped."""

    rules: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    skipped: list[SigmaSkip] = field(default_factory=list)


class _Skip(Exception):
    """Raised inside the conversion of one rule; the message is the reported reason."""


def convert_sigma(paths: Iterable[Path]) -> SigmaImport:
    """Convert every Sigma rule in ``paths`` (files, or directories searched for *.yml/*.yaml)."""
    result = SigmaImport()
    used: set[str] = set()
    for file in _sigma_files(paths, result):
        try:
            collection = SigmaCollection.from_yaml(file.read_text(encoding="utf-8"), collect_errors=True)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, SigmaError, ValueError, TypeError, KeyError) as exc:
            result.skipped.append(SigmaSkip(str(file), None, f"could not load the Sigma file: {_one_line(exc)}"))
            continue
        if len(collection) == 0:
            result.skipped.append(SigmaSkip(str(file), None, "no Sigma rule in file"))
        for rule in collection:
            title = rule.title or None
            try:
                rule_id, mapping = _convert(rule, used)
            except _Skip as exc:
                result.skipped.append(SigmaSkip(str(file), title, str(exc)))
                continue
            except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as exc:  # odd input, not a crash
                result.skipped.append(SigmaSkip(str(file), title, f"could not convert: {_one_line(exc)}"))
                continue
            used.add(rule_id)
            result.rules.append((rule_id, mapping))
    return result


def import_sigma(src: Iterable[Path], out_dir: Path) -> tuple[int, str]:
    """Convert ``src`` into ``out_dir`` (one YAML per rule), then load the directory and run its examples.

    Returns (exit code, report). Exit 1 only when a written rule fails to load or an example fails;
    skipped Sigma rules are reported but are not an error.
    """
    converted = convert_sigma(src)
    out_dir.mkdir(parents=True, exist_ok=True)
    for rule_id, mapping in converted.rules:
        text = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=120)
        (out_dir / f"{rule_id}.yaml").write_text(text, encoding="utf-8")
    lines = [f"converted {rule_id}" for rule_id, _ in converted.rules]
    for skip in converted.skipped:
        named = f" ({skip.rule_title})" if skip.rule_title else ""
        lines.append(f"skipped {skip.file}{named}: {skip.reason}")
    code = 0
    if converted.rules:
        try:
            ruleset = load_rules([out_dir / f"{rule_id}.yaml" for rule_id, _ in converted.rules])
        except RuleLoadErrors as exc:
            lines.extend(f"load error: {e}" for e in exc.errors)
            code = 1
        else:
            results = run_examples(ruleset)
            failed = [r for r in results if not r.passed]
            lines.extend(f"FAIL {r.rule_id}: {r.name}: {r.detail}" for r in failed)
            code = 1 if failed else 0
    lines.append(f"{len(converted.rules)} Sigma rule(s) converted into {out_dir}, {len(converted.skipped)} skipped")
    return code, "\n".join(lines)


# --- files -------------------------------------------------------------------------------------------


def _sigma_files(paths: Iterable[Path], result: SigmaImport) -> list[Path]:
    files: list[Path] = []
    for path in (Path(p) for p in paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml")))
        elif path.is_file():
            files.append(path)
        else:
            result.skipped.append(SigmaSkip(str(path), None, "no such file or directory"))
    return files


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --- one rule ----------------------------------------------------------------------------------------


def _convert(rule: Any, used: set[str]) -> tuple[str, dict[str, Any]]:
    if isinstance(rule, SigmaCorrelationRule):
        raise _Skip("correlation rule (aggregation over events) is not supported")
    if not isinstance(rule, SigmaRule):
        raise _Skip(f"unsupported Sigma document ({type(rule).__name__})")
    if rule.errors:
        raise _Skip(_error_reason(rule.errors[0]))
    event_types = _event_types(rule)
    _check_aggregation(rule)
    keyword_only = _check_items(rule)
    if not keyword_only:  # account changes share field names (user, group) with a different meaning
        event_types = [t for t in event_types if t != "account.change"]
    try:
        trees = [condition.parsed for condition in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise _Skip(_error_reason(exc)) from None
    exprs = [_expr(tree) for tree in trees if tree is not None]
    if not exprs:
        raise _Skip("empty condition")
    match = exprs[0] if len(exprs) == 1 else {"any": exprs}
    rule_id = _rule_id(rule, used)
    tests = _examples_or_skip(match, event_types, "sudo" if rule.logsource.service == "sudo" else "sshd")
    title = f"[Sigma] {rule.title}"
    description = " ".join((rule.description or f"Imported Sigma rule: {rule.title}.").split())
    origin = f" (Sigma rule {rule.id}" + (f" by {rule.author}" if rule.author else "") + ")" if rule.id else ""
    falsepositives = [" ".join(str(f).split()) for f in rule.falsepositives if str(f).strip()]
    mapping: dict[str, Any] = {
        "id": rule_id,
        "title": {"vi": title, "en": title},
        "status": "experimental",
        "severity": SEVERITIES[str(rule.level).lower()] if rule.level is not None else "medium",
        "event_type": event_types[0] if len(event_types) == 1 else event_types,
        "match": match,
        "suppress": "30m",
        "tags": _tags(rule),
        "description": {"vi": f"[Sigma] {description}{origin}", "en": f"[Sigma] {description}{origin}"},
        "falsepositives": {"vi": falsepositives, "en": list(falsepositives)},
        "remediation": {"vi": REMEDIATION, "en": REMEDIATION},
        "references": [str(r) for r in rule.references],
        "tests": tests,
    }
    return rule_id, mapping


def _error_reason(exc: BaseException) -> str:
    return f"invalid Sigma rule: {_one_line(exc)}"


_AGGREGATION = re.compile(r"\|\s*(\w+)")


def _check_aggregation(rule: SigmaRule) -> None:
    for condition in rule.detection.condition:
        found = _AGGREGATION.search(condition)
        if found:
            raise _Skip(f"aggregation condition {found[1]!r} is not supported ({condition.strip()!r}); "
                        "write a Khiên threshold or sequence rule instead")


def _event_types(rule: SigmaRule) -> list[str]:
    source = rule.logsource
    product, service, category = source.product, source.service, source.category
    if product != "linux":
        raise _Skip(f"log source not collected: product {product or 'none'!r} (only linux auth logs)")
    if category is not None:
        raise _Skip(f"log source not collected: category {category!r} (only linux auth logs)")
    if service not in SERVICES:
        raise _Skip(f"log source not collected: service {service!r} (supported: auth, sshd, sudo, syslog)")
    return list(SERVICES[service])


def _items(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _items(item)
        else:
            yield item


def _check_items(rule: SigmaRule) -> bool:
    """Skip reasons that name the modifier or field, before the condition tree hides them.

    Returns whether every detection item is a keyword (matches the raw line, no field).
    """
    keyword_only = True
    for name, detection in rule.detection.detections.items():
        for item in _items(detection):
            for modifier in item.modifiers:
                mod = _MODIFIER_NAMES.get(modifier, modifier.__name__)
                if mod not in SUPPORTED_MODIFIERS:
                    raise _Skip(f"unsupported modifier {mod!r} in {name}"
                                + (f" (field {item.field})" if item.field else ""))
            if item.field is not None and item.field not in FIELDS:
                raise _Skip(f"unknown field {item.field!r} in {name}: Khiên auth events have no such field")
            keyword_only = keyword_only and item.field is None
    return keyword_only


# --- expressions -------------------------------------------------------------------------------------


def _expr(node: Any) -> dict[str, Any]:
    if isinstance(node, ConditionAND | ConditionOR):
        key = "all" if isinstance(node, ConditionAND) else "any"
        args = [_expr(arg) for arg in node.args]
        flat: list[dict[str, Any]] = []
        for arg in args:  # (a and (b and c)) reads better as one list
            flat.extend(arg[key] if set(arg) == {key} else [arg])
        return {key: flat}
    if isinstance(node, ConditionNOT):
        return {"not": _expr(node.args[0])}
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _leaf(FIELDS[node.field], node.value, keyword=False)
    if isinstance(node, ConditionValueExpression):
        return _leaf(RAW, node.value, keyword=True)
    raise _Skip(f"unsupported condition element {type(node).__name__}")


def _leaf(name: str, value: Any, *, keyword: bool) -> dict[str, Any]:
    if isinstance(value, SigmaNull):
        return {"field": name, "exists": False}
    if isinstance(value, SigmaBool):
        return {"field": name, "eq": bool(value.boolean)}
    if isinstance(value, SigmaNumber):
        if keyword:
            return {"field": name, "contains": str(value.number), "nocase": True}
        return {"field": name, "eq": value.number}
    if isinstance(value, SigmaCIDRExpression):
        return {"field": name, "cidr": value.cidr}
    if isinstance(value, SigmaRegularExpression):
        return _regex_leaf(name, value)
    if isinstance(value, SigmaString):
        return _string_leaf(name, value, keyword=keyword, nocase=not isinstance(value, SigmaCasedString))
    raise _Skip(f"unsupported value type {type(value).__name__}")


def _regex_leaf(name: str, value: SigmaRegularExpression) -> dict[str, Any]:
    parts = list(value.regexp.s)
    if not all(isinstance(p, str) for p in parts):
        raise _Skip("unsupported regular expression value")
    inline = "".join(sorted(_INLINE_FLAGS[f] for f in value.flags if f in _INLINE_FLAGS))
    pattern = (f"(?{inline})" if inline else "") + "".join(parts)
    leaf: dict[str, Any] = {"field": name, "regex": pattern}
    if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
        leaf["nocase"] = True
    return leaf


def _string_leaf(name: str, value: SigmaString, *, keyword: bool, nocase: bool) -> dict[str, Any]:
    parts = list(value.s)
    for part in parts:
        if not isinstance(part, str | SpecialChars):
            raise _Skip("unsupported placeholder value (%name%)")
    if keyword:  # a keyword matches anywhere in the line
        parts = [SpecialChars.WILDCARD_MULTI, *parts, SpecialChars.WILDCARD_MULTI]
    while len(parts) > 1 and parts[0] == parts[1] == SpecialChars.WILDCARD_MULTI:
        parts.pop(0)
    while len(parts) > 1 and parts[-1] == parts[-2] == SpecialChars.WILDCARD_MULTI:
        parts.pop()
    star = SpecialChars.WILDCARD_MULTI
    lead, trail = bool(parts) and parts[0] == star, bool(parts) and parts[-1] == star
    inner = parts[int(lead): len(parts) - int(trail)]
    leaf: dict[str, Any]
    if not inner:
        return {"field": name, "exists": True}
    if all(isinstance(p, str) for p in inner):
        text = "".join(inner)  # type: ignore[arg-type]
        op = "contains" if lead and trail else "endswith" if lead else "startswith" if trail else "eq"
        leaf = {"field": name, op: text}
    else:
        regex = "".join(".*" if p == star else "." if p == SpecialChars.WILDCARD_SINGLE else _escape(str(p))
                        for p in inner)
        leaf = {"field": name, "regex": ("" if lead else "^") + regex + ("" if trail else "$")}
    if nocase:
        leaf["nocase"] = True
    return leaf


def _escape(text: str) -> str:
    """Like re.escape, but leaves spaces and other plain characters readable."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def _tags(rule: SigmaRule) -> list[str]:
    tags = []
    for tag in rule.tags:
        text = str(tag).lower()
        if tag.namespace.lower() == "attack" and _TAG_RE.match(text) and text not in tags:
            tags.append(text)
    return tags


def _rule_id(rule: SigmaRule, used: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", rule.title.lower()).strip("_")[:60].strip("_")
    if not slug:
        slug = re.sub(r"[^a-z0-9]+", "_", str(rule.id or "rule").lower()).strip("_")
    base = f"sigma_{slug}"
    if base not in used:
        return base
    suffix = re.sub(r"[^a-z0-9]", "", str(rule.id or "").lower())[:8]
    candidate = f"{base}_{suffix}" if suffix else base
    n = 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _examples_or_skip(match: dict[str, Any], event_types: list[str], program: str) -> list[dict[str, Any]]:
    try:
        return examples(match, event_types, program)
    except NoExample as exc:
        raise _Skip(str(exc)) from None
