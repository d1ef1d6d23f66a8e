"""Plain data types shared by the loader, the engine and the alert folding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.detect.expr import Expr


@dataclass(frozen=True, slots=True)
class LoadError:
    """One problem in one rule file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line is not None else f"{self.file}: {self.message}"


class RuleLoadErrors(ValueError):
    """Every load error of a run; ``errors`` keeps them in file order."""

    def __init__(self, errors: list[LoadError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One normalized event as the engine sees it; ``ts`` must be timezone-aware."""

    type: str
    ts: datetime
    host: str
    data: Mapping[str, Any]
    id: int | None = None
    unit: str | None = None
    ctx: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # Naive and aware datetimes cannot be compared; fail at the edge, not deep in a window.
        if not isinstance(self.ts, datetime) or self.ts.utcoffset() is None:
            raise ValueError(f"EngineEvent.ts must be a timezone-aware datetime, not {self.ts!r}")


@dataclass(frozen=True, slots=True)
class Threshold:
    count: int
    window_s: int
    group_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    event_types: frozenset[str]
    match: Expr | None
    count: int = 1


@dataclass(frozen=True, slots=True)
class Sequence:
    within_s: int
    steps: tuple[Step, ...]
    group_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Example:
    """An inline test: events (already expanded, in file order) and the expected alert count."""

    name: str
    alerts: int
    events: tuple[EngineEvent, ...]


@dataclass(frozen=True)
class Rule:
    """A validated detection rule."""

    id: str
    title: Mapping[str, str]
    status: str
    severity: str
    event_types: frozenset[str]
    match: Expr | None
    threshold: Threshold | None
    sequence: Sequence | None
    suppress_s: int
    tags: tuple[str, ...]
    description: Mapping[str, str]
    falsepositives: Mapping[str, tuple[str, ...]]
    remediation: Mapping[str, str]
    references: tuple[str, ...]
    tests: tuple[Example, ...]
    file: str

    @property
    def window_s(self) -> int:
        """How far back this rule's correlation state reaches (0 for single-event rules)."""
        if self.threshold is not None:
            return self.threshold.window_s
        if self.sequence is not None:
            return self.sequence.within_s
        return 0


@dataclass(frozen=True, slots=True)
class Detection:
    """One firing of one rule."""

    rule_id: str
    severity: str
    host: str
    group: tuple[tuple[str, Any], ...]
    key: str
    first_ts: datetime
    last_ts: datetime
    count: int
    event_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """Detections with the same dedupe key folded within the rule's suppress window."""

    rule_id: str
    severity: str
    host: str
    group: tuple[tuple[str, Any], ...]
    key: str
    count: int
    first_seen: datetime
    last_seen: datetime
    event_ids: tuple[int, ...]
