"""Helpers shared by the detection-engine tests (no tests here): write real rule files, build events."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rules.detect import EngineEvent, RuleSet, load_rules

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

HEADER = """\
id: {id}
title: {{vi: "Quy tắc thử", en: "Test rule"}}
status: test
severity: high
"""

# Valid but never run by the engine tests; run_examples tests write their own.
DEFAULT_TESTS = """\
tests:
  - name: positive
    alerts: 1
    events:
      - {type: x.y, ts: "2026-03-01T08:00:00Z", host: h1}
  - name: negative
    alerts: 0
    events:
      - {type: x.y, ts: "2026-03-01T08:00:00Z", host: h1}
"""


def rule_text(rule_id: str, body: str, tests: str | None = None) -> str:
    """A complete rule file: header, the given body (YAML, dedented), and tests."""
    return HEADER.format(id=rule_id) + textwrap.dedent(body).strip("\n") + "\n" + \
        (textwrap.dedent(tests).strip("\n") + "\n" if tests is not None else DEFAULT_TESTS)


def write_rule(directory: Path, rule_id: str, body: str, tests: str | None = None, stem: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem or rule_id}.yaml"
    path.write_text(rule_text(rule_id, body, tests), encoding="utf-8")
    return path


def load_one(tmp_path: Path, rule_id: str, body: str, tests: str | None = None) -> RuleSet:
    return load_rules([write_rule(tmp_path / "rules", rule_id, body, tests)])


def ev(event_type: str, seconds: float = 0, host: str = "h1", *, id: int | None = None, unit: str | None = None,
       ctx: dict | None = None, **data) -> EngineEvent:
    return EngineEvent(type=event_type, ts=T0 + timedelta(seconds=seconds), host=host, data=data, id=id, unit=unit,
                       ctx=ctx)
