"""Helpers shared by the facts tests (no tests here): fixture paths and a canned command runner."""

from __future__ import annotations

import json
from pathlib import Path

from agent.collectors.facts._common import CommandResult
from agent.wire import Batch, Item
from collector.ingest.schema import parse_batch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "facts"
DEBIAN = FIXTURES / "debian"
RHEL = FIXTURES / "rhel"
LOOP = FIXTURES / "loop"
COMMANDS = FIXTURES / "commands"


def output(name: str) -> str:
    return (COMMANDS / name).read_text()


class FakeRunner:
    """Answers commands from a table: argv prefix -> stdout (str), CommandResult, or None (not installed)."""

    def __init__(self, table: dict[tuple[str, ...], str | CommandResult | None] | None = None) -> None:
        self.table = table or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> CommandResult:
        self.calls.append(list(argv))
        for prefix, answer in sorted(self.table.items(), key=lambda kv: -len(kv[0])):
            if tuple(argv[:len(prefix)]) == prefix:
                if answer is None:
                    return CommandResult(-1, error=f"{argv[0]}: not installed", missing=True)
                if isinstance(answer, CommandResult):
                    return answer
                return CommandResult(0, answer)
        return CommandResult(-1, error=f"{argv[0]}: not installed", missing=True)


def validate(items: list[Item]):
    """Items as a batch through the collector's validators; returns the parsed batch."""
    return parse_batch(json.dumps(Batch(items=[i.to_dict() for i in items]).to_dict()).encode())
