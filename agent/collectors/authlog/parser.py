"""Turn log lines (syslog text or journal JSON entries) into auth items, counting what is ignored."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent.collectors.authlog import accounts, sshd, sudo_su
from agent.collectors.authlog.events import MAX_COUNT, MAX_TEXT, Parsed, clean, int_or_none
from agent.collectors.authlog.syslog import Record, frame
from agent.wire import Item, utc_now

# Program name -> parser. Everything else is skipped before any message regex runs.
PARSERS: dict[str, Callable[[str], Parsed]] = {
    "sshd": sshd.parse, "sshd-session": sshd.parse, "sshd-auth": sshd.parse,
    "sudo": sudo_su.parse_sudo, "su": sudo_su.parse_su,
    **dict.fromkeys(("useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd", "chpasswd",
                     "gpasswd", "chage", "chsh", "chfn", "newusers", "groupmems"), accounts.parse),
}
IDENTIFIERS: tuple[str, ...] = tuple(PARSERS)
_REPEATED = re.compile(r"message repeated (\d{1,9}) times: \[ ?(.*)\]$", re.S)


class LineParser:
    """Stateless apart from its counters: ``recognised`` and ``ignored`` by reason."""

    def __init__(self, source: str = "file") -> None:
        self.source = source
        self.recognised = 0
        self.ignored: Counter[str] = Counter()
        self._now, self._now_at = "", 0.0

    @property
    def counters(self) -> dict[str, Any]:
        """What the heartbeat shows: lines turned into items and lines ignored, by reason."""
        return {"recognised": self.recognised, "ignored": dict(self.ignored)}

    def ignore(self, reason: str, n: int = 1) -> None:
        """Count a line that produced no item."""
        self.ignored[reason] += n

    def parse_line(self, line: str) -> Item | None:
        """A syslog line (any framing) as an item, or None (counted)."""
        line = line.rstrip("\r\n").lstrip("\x00")  # NUL runs are left by crashes on preallocated files
        record = frame(line)
        if record is None:
            self.ignore("garbage" if line.strip() else "empty")
            return None
        return self.parse_record(record, line)

    def parse_journal(self, entry: dict[str, Any]) -> Item | None:
        """One ``journalctl -o json`` entry as an item, or None (counted)."""
        program = _text(entry.get("SYSLOG_IDENTIFIER"))
        message = _text(entry.get("MESSAGE"))
        if not program or message is None:
            self.ignore("garbage")
            return None
        pid = _text(entry.get("SYSLOG_PID")) or _text(entry.get("_PID"))
        record = Record(_journal_ts(entry.get("__REALTIME_TIMESTAMP")), _text(entry.get("_HOSTNAME")), program,
                        int_or_none(pid), message)
        return self.parse_record(record, f"{program}[{pid}]: {message}" if pid else f"{program}: {message}")

    def parse_record(self, record: Record, raw: str) -> Item | None:
        """A framed record through its program's parser."""
        parser = PARSERS.get(record.program)
        if parser is None:
            self.ignore("other_program")
            return None
        message, count = record.message, 1
        if message.startswith("message repeated "):
            repeated = _REPEATED.match(message)
            if repeated is not None:
                count, message = min(int(repeated[1]), MAX_COUNT), repeated[2]
        parsed = parser(message)
        if isinstance(parsed, str):
            self.ignore(parsed, count)
            return None
        self.recognised += count
        item_type, data = parsed
        data.update(process=record.program, pid=record.pid, host=record.host, log_ts=record.log_ts,
                    source=self.source, raw=raw[:MAX_TEXT].replace("\x00", "\ufffd"))
        if item_type != "account.change":
            data["count"] = min(data.get("count", 1) * count, MAX_COUNT)
        return Item(item_type, clean(data), self._timestamp())

    def _timestamp(self) -> str:
        """Collection time, refreshed every 100 ms: formatting it per line costs more than parsing."""
        now = time.monotonic()
        if now - self._now_at >= 0.1:
            self._now, self._now_at = utc_now(), now
        return self._now


def _text(value: Any) -> str | None:
    """Journal JSON fields are strings, or byte arrays when not valid UTF-8, or lists when repeated."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(b, int) for b in value[:MAX_TEXT]):
        return bytes(b & 0xFF for b in value[:MAX_TEXT]).decode("utf-8", "replace")
    if isinstance(value, list) and value:
        return _text(value[0])
    return None


def _journal_ts(value: Any) -> str:
    """``__REALTIME_TIMESTAMP`` (µs since the epoch) as ISO 8601 UTC."""
    text = _text(value)
    if not text or not text.isascii() or not text.isdigit() or len(text) > 20:
        return ""
    try:
        return datetime.fromtimestamp(int(text) / 1_000_000, UTC).isoformat(timespec="microseconds")
    except (OverflowError, ValueError, OSError):  # past year 9999: a corrupt entry, not a reason to stop
        return ""
