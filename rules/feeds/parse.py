"""``detect_kind`` and ``parse_feed``: the one entry point the collector calls for an imported feed file.

The kind is sniffed from content, never from the file name, because operators rename files when they
carry them across the air gap. Each JSON file is parsed once: detection reuses the loaded document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rules.feeds.common import MAX_BYTES, Progress, fail, head, load_json_file
from rules.feeds.kev import looks_like_kev, parse_kev
from rules.feeds.model import FEED_KINDS, FeedError, ParsedFeed
from rules.feeds.official import csv_header, looks_like_warnings_json, parse_warnings
from rules.feeds.osv import is_zip, looks_like_record, parse_osv
from rules.feeds.tracker import looks_like_tracker, parse_tracker

JSON = "json"
CSV = "csv"


def _shape(path: Path) -> str:
    """``osv`` (directory or zip), ``json`` or ``csv`` from the first bytes; FeedError otherwise."""
    if not path.exists():
        raise fail(path, "", "no such file or directory")
    if path.is_dir():
        if next(path.rglob("*.json"), None) is None:
            raise fail(path, "", "directory holds no *.json OSV records")
        return "osv"
    start = head(path)
    if is_zip(start):
        return "osv"
    text = start.decode("utf-8", errors="ignore").lstrip("\ufeff").lstrip()
    if text.startswith(("{", "[")):
        return JSON
    if csv_header(text.splitlines()[0] if text else "") is not None:
        return CSV
    raise fail(path, "", "unknown feed format: not an OSV zip or directory, a JSON feed, or the warnings CSV")


def kind_of_json(path: Path, data: Any) -> str:
    """Which feed a loaded JSON document is; FeedError naming the file when none fits."""
    if looks_like_kev(data):
        return "kev"
    if looks_like_warnings_json(data):
        return "warnings"
    if looks_like_record(data):
        return "osv"
    if looks_like_tracker(data):
        return "debian-tracker"
    raise fail(path, "", "unknown feed format: JSON is not a KEV catalog, khien-warnings, an OSV record "
                         "or the Debian security tracker")


def detect_kind(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The feed kind of a file or directory, one of FEED_KINDS."""
    path = Path(path)
    shape = _shape(path)
    if shape == CSV:
        return "warnings"
    if shape == JSON:
        return kind_of_json(path, load_json_file(path, max_bytes))
    return shape


def parse_feed(path: Path, *, kind: str | None = None, on_progress: Progress | None = None,
               max_bytes: int = MAX_BYTES) -> ParsedFeed:
    """Read, validate and normalize one feed; FeedError (naming file and place) when anything is wrong."""
    path = Path(path)
    if kind is not None and kind not in FEED_KINDS:
        raise FeedError(f"{path}: unknown feed kind {kind!r}; expected one of {', '.join(FEED_KINDS)}")
    shape = _shape(path)
    if shape in ("osv", CSV):
        found = "osv" if shape == "osv" else "warnings"
        if kind not in (None, found):
            raise fail(path, "", f"this is an {found!r} feed, not {kind!r}")
        if found == "osv":
            return parse_osv(path, on_progress=on_progress, max_bytes=max_bytes)
        return parse_warnings(path, None, on_progress=on_progress, max_bytes=max_bytes)
    data = load_json_file(path, max_bytes)
    kind = kind or kind_of_json(path, data)
    if kind == "osv":
        if not isinstance(data, dict):
            raise fail(path, "", "an OSV record is a JSON object")
        return parse_osv(path, on_progress=on_progress, max_bytes=max_bytes, single=data)
    if kind == "kev":
        return parse_kev(path, data, on_progress=on_progress)
    if kind == "warnings":
        return parse_warnings(path, data, on_progress=on_progress, max_bytes=max_bytes)
    return parse_tracker(path, data, on_progress=on_progress)
