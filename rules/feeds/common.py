"""Shared plumbing of the feed parsers: size caps, problem collection, typed field readers, progress.

Feed files are hostile input until validated: every reader checks the type it expects and raises
``Invalid`` with the JSON key path, and ``Problems`` gathers those per record so one run reports up to
20 of them at once (like a linter) and the caller imports all-or-nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rules.feeds.model import FeedError

MAX_BYTES = 2_000_000_000          # default cap of a feed file / directory / zip (uncompressed)
MAX_MEMBER_BYTES = 50_000_000      # one zip member or one file of an OSV directory
MAX_RECORDS = 2_000_000
MAX_ID = 128
MAX_NAME = 255
MAX_VERSION = 255
MAX_TEXT = 2_000
MAX_REFERENCES = 10
MAX_PROBLEMS = 20
PROGRESS_EVERY = 1_000

CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
_FRACTION = re.compile(r"(\.\d{6})\d+")   # Go writes nanoseconds; datetime takes microseconds

Progress = Callable[[int, int | None], None]


class Invalid(Exception):
    """One problem inside one record: where (a JSON key path or column) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class Problems:
    """Collects problem lines of one feed; raises FeedError at the 20th or on ``check``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, reason: str, file: str | None = None) -> None:
        """Record one problem; ``file`` overrides the feed path (a file inside a directory)."""
        label = file or str(self.path)
        self.items.append(f"{label}: {where}: {reason}" if where else f"{label}: {reason}")
        if len(self.items) >= MAX_PROBLEMS:
            raise self.error(stopped=True)

    def add_invalid(self, prefix: str, exc: Invalid, file: str | None = None) -> None:
        """Record an Invalid raised inside the record at ``prefix``."""
        self.add(join(prefix, exc.where), exc.reason, file)

    def error(self, *, stopped: bool = False) -> FeedError:
        if len(self.items) == 1:
            return FeedError(self.items[0], tuple(self.items))
        more = f" (stopped after {MAX_PROBLEMS})" if stopped else ""
        head = f"{self.path}: {len(self.items)} problems{more}:"
        return FeedError("\n  ".join([head, *self.items]), tuple(self.items))

    def check(self) -> None:
        if self.items:
            raise self.error()


class Ticker:
    """Calls on_progress(done, total) about every PROGRESS_EVERY steps and once at the end."""

    def __init__(self, on_progress: Progress | None, total: int | None) -> None:
        self.on_progress = on_progress
        self.total = total
        self.done = 0
        self._last = 0

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.on_progress is not None and self.done - self._last >= PROGRESS_EVERY:
            self._last = self.done
            self.on_progress(self.done, self.total)

    def finish(self) -> None:
        if self.on_progress is not None and (self._last != self.done or self.done == 0):
            self._last = self.done
            self.on_progress(self.done, self.total)


def join(prefix: str, where: str) -> str:
    """``affected[0]`` + ``ranges[1]`` → ``affected[0].ranges[1]``."""
    if not prefix:
        return where
    if not where:
        return prefix
    return f"{prefix}{where}" if where.startswith("[") else f"{prefix}.{where}"


def fail(path: Path | str, where: str, reason: str) -> FeedError:
    return FeedError(f"{path}: {where}: {reason}" if where else f"{path}: {reason}")


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of one file, refused above ``max_bytes``."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise fail(path, "", f"file is {size} bytes, larger than the {max_bytes}-byte cap")
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise fail(path, "", f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise fail(path, "", f"file is larger than the {max_bytes}-byte cap")
    return raw


def head(path: Path, size: int = 4096) -> bytes:
    """The first bytes of a file, for sniffing its kind."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise fail(path, "", f"cannot read: {exc.strerror or exc}") from exc


def decode_json(raw: bytes) -> Any:
    """Parsed JSON (UTF-8, BOM tolerated); raises Invalid naming line and column."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid("", f"not UTF-8 (byte {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise Invalid("", "invalid JSON: nested too deeply") from exc


def load_json_file(path: Path, max_bytes: int) -> Any:
    """Read and parse one JSON file; FeedError naming the file otherwise."""
    raw = read_file(path, max_bytes)
    try:
        return decode_json(raw)
    except Invalid as exc:
        raise fail(path, exc.where, exc.reason) from exc


def type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def want_dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(where, f"expected an object, got {type_name(value)}")
    return value


def want_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(where, f"expected a list, got {type_name(value)}")
    return value


def want_str(value: object, where: str, *, max_len: int | None = None, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(where, f"expected a string, got {type_name(value)}")
    if not empty and not value.strip():
        raise Invalid(where, "must not be empty")
    if max_len is not None and len(value) > max_len:
        raise Invalid(where, f"longer than {max_len} characters")
    return value


def get_str(obj: dict[str, Any], key: str, where: str, *, required: bool = False, max_len: int | None = None,
            empty: bool = False) -> str | None:
    """``obj[key]`` as a string; None when absent (or null) and not required."""
    value = obj.get(key)
    if value is None:
        if required:
            raise Invalid(join(where, key), "required")
        return None
    return want_str(value, join(where, key), max_len=max_len, empty=empty)


def get_list(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> list[Any]:
    value = obj.get(key)
    if value is None:
        if required:
            raise Invalid(join(where, key), "required")
        return []
    return want_list(value, join(where, key))


def get_dict(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        if required:
            raise Invalid(join(where, key), "required")
        return {}
    return want_dict(value, join(where, key))


def str_list(obj: dict[str, Any], key: str, where: str, *, max_len: int = MAX_ID) -> list[str]:
    """A list of non-empty strings."""
    items = get_list(obj, key, where)
    return [want_str(item, f"{join(where, key)}[{i}]", max_len=max_len) for i, item in enumerate(items)]


def parse_datetime(value: object, where: str) -> datetime:
    """An RFC 3339 timestamp as tz-aware UTC; a missing offset is read as UTC."""
    text = want_str(value, where)
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError as exc:
        raise Invalid(where, f"not an RFC 3339 timestamp: {text[:40]!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(value: object, where: str) -> date:
    """A calendar date written exactly ``YYYY-MM-DD``."""
    text = want_str(value, where).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise Invalid(where, f"expected a date like 2026-11-20, got {text[:40]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(where, f"not a real date: {text!r}") from exc


def parse_cve(value: object, where: str) -> str:
    text = want_str(value, where, max_len=MAX_ID).strip()
    if not CVE_RE.fullmatch(text):
        raise Invalid(where, f"not a CVE id (CVE-YYYY-NNNN): {text[:40]!r}")
    return text


def iso_z(moment: datetime) -> str:
    """``2024-09-03T20:45:12Z`` (UTC, Z suffix)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def norm_urgency(value: str | None) -> str | None:
    """``"Low**"`` → ``"low"``; blank → None."""
    if value is None:
        return None
    text = value.strip().rstrip("*").strip().lower()
    return text or None
