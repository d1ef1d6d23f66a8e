"""``AuthLogCollector``: auth and account events from /var/log/auth.log, /var/log/secure or the journal."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from agent.collectors.authlog.events import FIELDS
from agent.collectors.authlog.journal import JournalError, JournalReader
from agent.collectors.authlog.parser import IDENTIFIERS, LineParser
from agent.collectors.authlog.tail import DEFAULT_PATHS, FileTail, TailError
from agent.collectors.base import Collector
from agent.wire import Item


class AuthLogError(Exception):
    """The auth log exists but cannot be read."""


class AuthLogCollector(Collector):
    """Follow the auth log (file first, journal as fallback) and emit auth/account items."""

    name = "authlog"
    platforms = frozenset({"linux"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = FIELDS

    def __init__(self, state_dir: Path, *, paths: Sequence[Path | str] = DEFAULT_PATHS, start_at_end: bool = True,
                 max_lines_per_run: int = 5000, max_bytes_per_run: int = 4 << 20,
                 max_line_bytes: int = 16 << 10, use_journal: bool = True, journalctl: str = "journalctl",
                 journal_identifiers: Sequence[str] = IDENTIFIERS) -> None:
        super().__init__()
        state_dir = Path(state_dir)
        self.tail = FileTail(state_dir / "authlog-position.json", [Path(p) for p in paths],
                             start_at_end=start_at_end, max_lines=max_lines_per_run, max_bytes=max_bytes_per_run,
                             max_line_bytes=max_line_bytes)
        self.journal = JournalReader(state_dir / "authlog-journal.json", identifiers=journal_identifiers,
                                     max_entries=max_lines_per_run, start_at_end=start_at_end,
                                     journalctl=journalctl) if use_journal else None
        self.file_parser = LineParser("file")
        self.journal_parser = LineParser("journal")
        self.status = "not started"
        self._last_error: str | None = None

    @property
    def counters(self) -> dict[str, Any]:
        """Lines recognised and ignored (by reason) since start, file and journal together."""
        ignored = self.file_parser.ignored + self.journal_parser.ignored + self.tail.counters
        if self.journal is not None:
            ignored += self.journal.counters
        ignored.pop("truncated", None)
        recognised = self.file_parser.recognised + self.journal_parser.recognised
        return {"recognised": recognised, "ignored": dict(ignored), "truncations": self.tail.counters["truncated"]}

    def collect(self) -> Iterator[Item]:
        """New lines since the last run, as items; the position is saved once they are handed on."""
        try:
            use_file = self.tail.following or self.tail.current_path() is not None
            if use_file or self.journal is None or not self.journal.available():
                yield from self._from_file()
            else:
                yield from self._from_journal()
        except (TailError, JournalError) as exc:
            yield from self._failed(str(exc))
        else:
            self._last_error = None

    def _from_file(self) -> Iterator[Item]:
        lines = self.tail.read()
        parse = self.file_parser.parse_line
        for line in lines:
            item = parse(line.decode("utf-8", "replace"))
            if item is not None:
                yield item
        self.tail.commit()
        self.status = self.tail.status

    def _from_journal(self) -> Iterator[Item]:
        assert self.journal is not None
        entries = self.journal.read()
        parse = self.journal_parser.parse_journal
        for entry in entries:
            item = parse(entry)
            if item is not None:
                yield item
        self.journal.commit()
        self.status = self.journal.status

    def _failed(self, message: str) -> Iterator[Item]:
        """Raise the first time (one agent.error), then stay quiet while the same problem lasts."""
        self.status = f"error: {message}"
        if message != self._last_error:
            self._last_error = message
            raise AuthLogError(message)
        yield from ()
