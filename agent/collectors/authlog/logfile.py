"""Parse a whole log stream (``khien-agent parse-log``, benchmarks): bounded lines, JSON out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from agent.collectors.authlog.parser import LineParser
from agent.wire import Item

SOURCES = ("auth", "syslog", "journal")
MAX_LINE_BYTES = 16 << 10
MAX_JOURNAL_LINE_BYTES = 64 << 10


def iter_lines(stream: IO[bytes], max_line: int, on_oversize: Callable[[], None]) -> Iterator[bytes]:
    """Lines of a binary stream; a line longer than ``max_line`` is skipped without being held whole."""
    readline = stream.readline
    while True:
        line = readline(max_line + 1)
        if not line:
            return
        if len(line) > max_line:
            on_oversize()
            while line and not line.endswith(b"\n"):
                line = readline(max_line + 1)
            continue
        yield line


def parse_stream(stream: IO[bytes], source: str, parser: LineParser) -> Iterator[Item]:
    """Items from a syslog-framed (``auth``/``syslog``) or ``journalctl -o json`` stream."""
    journal = source == "journal"
    cap = MAX_JOURNAL_LINE_BYTES if journal else MAX_LINE_BYTES
    parse_journal, parse_line = parser.parse_journal, parser.parse_line
    for line in iter_lines(stream, cap, lambda: parser.ignore("oversize")):
        item = parse_journal(_json(line)) if journal else parse_line(line.decode("utf-8", "replace"))
        if item is not None:
            yield item


def write_json_lines(items: Iterator[Item], out: IO[str]) -> int:
    """One ``{"type": ..., "data": ...}`` object per line; returns how many were written."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    n = 0
    for item in items:
        out.write(dumps({"type": item.type, "data": item.data}))
        out.write("\n")
        n += 1
    return n


def _json(line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can follow
        return {}
    return entry if isinstance(entry, dict) else {}
