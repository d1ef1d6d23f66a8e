"""Remediation deadlines: the SLA table (``rules/data/sla/``) as data, and the due date of a finding.

A finding's deadline is a pure function of its class, the host's security level and exposure, and
when its clock started; computing it (rather than storing a hand-set date) is what lets a reopened
finding keep its original deadline and a reclassified one (a CVE added to KEV) move to the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from rules.detect.durations import parse_duration
from rules.detect.loader import read_yaml_file
from rules.detect.model import LoadError

DATA_FILE = Path(__file__).parent / "data" / "sla" / "remediation_deadlines.yaml"
CLASSES = ("P0", "P1", "P2", "P3", "P4", "critical_misconfig", "failed_check", "eol")
COLUMNS = ("exposed", "internal", "strict")
# Order of urgency, most urgent first: the "worst open finding" of a host is the first in this list.
URGENCY = ("P0", "critical_misconfig", "P1", "P2", "eol", "failed_check", "P3", "P4")


class SlaDataError(ValueError):
    """The SLA table is malformed; ``errors`` name the file and line of each problem."""

    def __init__(self, errors: list[LoadError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Cell:
    fix: timedelta
    mitigate: timedelta | None = None


@dataclass(frozen=True, slots=True)
class SlaTable:
    version: str
    cells: dict[tuple[str, str], Cell]  # (class, column) -> cell
    labels: dict[str, dict[str, str]]  # class -> {vi, en}


@dataclass(frozen=True, slots=True)
class Deadline:
    due_at: datetime
    mitigate_by: datetime | None
    column: str
    version: str


def column_for(*, level: int | None, internet_facing: bool) -> str:
    """Which column of the table applies: level 4–5 first, then exposed/level 3/unknown, else internal."""
    if level is not None and level >= 4:
        return "strict"
    if internet_facing or level is None or level == 3:
        return "exposed"
    return "internal"


def deadline(table: SlaTable, finding_class: str, *, level: int | None, internet_facing: bool,
             clock_start: datetime) -> Deadline:
    column = column_for(level=level, internet_facing=internet_facing)
    try:
        cell = table.cells[(finding_class, column)]
    except KeyError:
        raise ValueError(f"unknown finding class {finding_class!r}; known: {', '.join(CLASSES)}") from None
    return Deadline(due_at=clock_start + cell.fix,
                    mitigate_by=clock_start + cell.mitigate if cell.mitigate else None,
                    column=column, version=table.version)


def class_for_cvss(score: float | None) -> str | None:
    """P1–P4 from a CVSS base score (the table's bands); None when there is no score."""
    if score is None:
        return None
    if score >= 9.0:
        return "P1"
    if score >= 7.0:
        return "P2"
    if score >= 4.0:
        return "P3"
    return "P4"


def worst(classes: list[str]) -> str | None:
    """The most urgent class present (URGENCY order), or None for an empty list."""
    ranked = [c for c in URGENCY if c in classes]
    return ranked[0] if ranked else None


def load_sla(path: Path = DATA_FILE) -> SlaTable:
    """Parse and validate the table; every problem is reported at once, with file and line."""
    check, data = read_yaml_file(path)
    if data is None:
        raise SlaDataError(check.errors)
    cells: dict[tuple[str, str], Cell] = {}
    labels: dict[str, dict[str, str]] = {}
    root = check.mapping(data, (), "the SLA file")
    if root is not None and check.keys(root, (), ("version", "classes"), ("clock",)):
        version = check.string(root["version"], ("version",), "version")
        classes = check.mapping(root["classes"], ("classes",), "classes") or {}
        for name in CLASSES:
            if name not in classes:
                check.error(("classes",), f"missing class {name!r}")
        for name, raw in classes.items():
            path_ = ("classes", name)
            if name not in CLASSES:
                check.error(path_, f"unknown class {name!r}; known: {', '.join(CLASSES)}")
                continue
            entry = check.mapping(raw, path_, f"class {name}")
            if entry is None or not check.keys(entry, path_, ("label", *COLUMNS), ()):
                continue
            label = check.mapping(entry["label"], (*path_, "label"), "label")
            if label is not None and check.keys(label, (*path_, "label"), ("vi", "en"), ()):
                labels[name] = {k: str(v) for k, v in label.items()}
            for column in COLUMNS:
                cell = _cell(check, entry[column], (*path_, column))
                if cell is not None:
                    cells[(name, column)] = cell
    if check.errors:
        raise SlaDataError(check.errors)
    return SlaTable(version=version or "", cells=cells, labels=labels)


def _cell(check, raw, path) -> Cell | None:
    cell = check.mapping(raw, path, "a deadline cell")
    if cell is None or not check.keys(cell, path, ("fix",), ("mitigate",)):
        return None
    try:
        fix = timedelta(seconds=parse_duration(cell["fix"]))
        mitigate = timedelta(seconds=parse_duration(cell["mitigate"])) if "mitigate" in cell else None
    except ValueError as exc:
        check.error(path, str(exc))
        return None
    if fix <= timedelta(0):
        check.error((*path, "fix"), "the fix deadline must be positive")
        return None
    if mitigate is not None and mitigate > fix:
        check.error((*path, "mitigate"), "the mitigate milestone must not come after the fix deadline")
        return None
    return Cell(fix=fix, mitigate=mitigate)


@lru_cache(maxsize=1)
def builtin_sla() -> SlaTable:
    return load_sla()
