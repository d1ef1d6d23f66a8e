"""``load_rules``: read rule files, validate all of them, and report every error of the run at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rules.detect.model import LoadError, Rule, RuleLoadErrors
from rules.detect.regexguard import slow_patterns
from rules.detect.ruleset import RuleSet
from rules.detect.schema import Checker, build_rule
from rules.detect.yamlload import Lines, YamlError, load_yaml

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "data" / "detections"
SUFFIXES = (".yaml", ".yml")
# A rule file is a page of YAML; a huge one is a mistake and would only slow the load down.
MAX_FILE_BYTES = 1_000_000


def load_rules(paths: Iterable[Path] | None = None) -> RuleSet:
    """Load rules from directories and/or files; raise RuleLoadErrors listing every problem."""
    errors: list[LoadError] = []
    files = data_files([DEFAULT_RULES_DIR] if paths is None else [Path(p) for p in paths], errors)
    rules: dict[str, Rule] = {}
    pending_regexes: list[tuple[Checker, str, int, tuple]] = []
    for file in files:
        check, rule = _load_file(file)
        errors.extend(check.errors)
        pending_regexes.extend((check, pattern, flags, path) for pattern, flags, path in check.regexes)
        if rule is None:
            continue
        if rule.id in rules:
            other = rules[rule.id].file
            errors.append(LoadError(str(file), check.lines.of(("id",)),
                                    f"duplicate id {rule.id!r}: also defined in {other}"))
            continue
        rules[rule.id] = rule
    errors.extend(_regex_errors(pending_regexes))
    if errors:
        raise RuleLoadErrors(sorted(errors, key=lambda e: (e.file, e.line or 0)))
    return RuleSet(rules.values(), tuple(str(f) for f in files))


def data_files(paths: list[Path], errors: list[LoadError]) -> list[Path]:
    """The YAML files of these directories (top level only) and files, each once; missing paths are errors."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            # Retired rules live in deprecated/ and must never load; we only read the top level anyway.
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            errors.append(LoadError(str(path), None, "no such file or directory"))
    seen: set[Path] = set()
    unique = []
    for file in files:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            unique.append(file)
    return unique


def read_yaml_file(file: Path) -> tuple[Checker, Any]:
    """The parsed YAML of one rule-data file and a Checker for its errors; data None when unreadable."""
    try:
        raw = file.read_bytes()
        if len(raw) > MAX_FILE_BYTES:
            raise YamlError(None, f"file larger than {MAX_FILE_BYTES} bytes")
        data, lines = load_yaml(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        check = Checker(str(file), Lines())
        check.error((), f"cannot read: {exc}")
        return check, None
    except YamlError as exc:
        check = Checker(str(file), Lines())
        check.errors.append(LoadError(str(file), exc.line, exc.message))
        return check, None
    return Checker(str(file), lines), data


def _load_file(file: Path) -> tuple[Checker, Rule | None]:
    check, data = read_yaml_file(file)
    if data is None and check.errors:
        return check, None
    return check, build_rule(data, check, file.stem)


def _regex_errors(pending: list[tuple[Checker, str, int, tuple]]) -> list[LoadError]:
    if not pending:
        return []
    slow = slow_patterns([(pattern, flags) for _, pattern, flags, _ in pending])
    return [LoadError(check.file, check.lines.of(path),
                      f"regex {pattern!r} is too slow on adversarial input (catastrophic backtracking); "
                      "avoid nested or overlapping repeats such as (a+)+, (a|aa)* or (.*a){n}")
            for check, pattern, flags, path in pending if (pattern, flags) in slow]
