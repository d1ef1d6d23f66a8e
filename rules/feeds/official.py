"""Official warnings (cảnh báo) from a national authority, in Khiên's own ``khien-warnings/1`` format.

Authorities such as the Ministry of Public Security (A05) or NCSC publish warnings as documents, not
machine feeds; an operator transcribes them into this JSON or CSV (docs/feeds.md) so findings whose CVE
is officially warned about can be flagged. CSV is what spreadsheets export, so a UTF-8 BOM, Vietnamese
yes/no words and NFD-composed diacritics are all accepted.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.feeds.common import (
    MAX_ID,
    MAX_RECORDS,
    MAX_TEXT,
    Invalid,
    Problems,
    Progress,
    Ticker,
    fail,
    get_list,
    get_str,
    parse_cve,
    parse_date,
    read_file,
    want_dict,
)
from rules.feeds.model import OfficialWarning, ParsedFeed

FORMAT = "khien-warnings/1"
CSV_HEADER = ("id", "title", "cves", "source", "date", "exploited", "url")
YES = frozenset({"true", "1", "có", "co", "yes", "x"})
NO = frozenset({"false", "0", "không", "khong", "no", ""})
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class _Doc:
    """The parts of a warnings document that identify it."""

    sources: tuple[str, ...]
    version: str
    warnings: tuple[OfficialWarning, ...]


def looks_like_warnings_json(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("format"), str) and data["format"].startswith(
        "khien-warnings/")


def csv_header(first_line: str) -> tuple[str, ...] | None:
    """The normalized header if this line is the warnings CSV header (``url`` may be left out)."""
    cells = tuple(cell.strip().strip('"').strip().lower() for cell in first_line.lstrip("\ufeff").split(","))
    return cells if cells in (CSV_HEADER, CSV_HEADER[:-1]) else None


def _exploited(text: str, where: str) -> bool:
    word = unicodedata.normalize("NFC", text).strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise Invalid(where, f"expected true/false/1/0/có/không, got {text[:40]!r}")


def _url(text: str | None, where: str) -> str | None:
    if text is None or not text.strip():
        return None
    url = text.strip()
    if len(url) > MAX_URL or not url.startswith(("https://", "http://")):
        raise Invalid(where, f"expected an http(s) URL up to {MAX_URL} characters, got {url[:60]!r}")
    return url


def _text(value: str | None, where: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", (value or "").strip())
    if not text:
        raise Invalid(where, "required")
    if len(text) > limit:
        raise Invalid(where, f"longer than {limit} characters")
    return text


def _keep(out: list[OfficialWarning], warning: OfficialWarning, seen: dict[str, str], where: str,
          problems: Problems) -> None:
    """Append unless the id was already used (ids identify warnings across imports)."""
    if warning.id in seen:
        problems.add(where, f"duplicate id {warning.id!r}: also at {seen[warning.id]}")
        return
    seen[warning.id] = where
    out.append(warning)


def _cves(values: list[Any], where: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_cve(v, f"{where}[{i}]") for i, v in enumerate(values)))


# -- JSON ---------------------------------------------------------------------------------------------------


def _json_warning(raw: object, where: str, default_source: str) -> OfficialWarning:
    item = want_dict(raw, where)
    exploited = item.get("exploited", False)
    if not isinstance(exploited, bool):
        raise Invalid(f"{where}.exploited", "expected true or false")
    return OfficialWarning(
        id=_text(get_str(item, "id", where, max_len=MAX_ID), f"{where}.id", MAX_ID),
        title=_text(get_str(item, "title", where, empty=True), f"{where}.title", MAX_TEXT),
        cves=_cves(get_list(item, "cves", where, required=True), f"{where}.cves"),
        source=_text(get_str(item, "source", where, max_len=MAX_ID), f"{where}.source", MAX_ID)
        if item.get("source") is not None else default_source,
        date=parse_date(item.get("date"), f"{where}.date"),
        exploited=exploited,
        url=_url(get_str(item, "url", where, empty=True), f"{where}.url"),
    )


def _json_doc(path: Path, data: dict[str, Any], problems: Problems, on_progress: Progress | None) -> _Doc:
    try:
        if data.get("format") != FORMAT:
            raise Invalid("format", f"unsupported format {str(data.get('format'))[:40]!r}; expected {FORMAT!r}")
        source = _text(get_str(data, "source", "", max_len=MAX_ID), "source", MAX_ID)
        version = _text(get_str(data, "version", "", max_len=MAX_ID), "version", MAX_ID)
        items = get_list(data, "warnings", "", required=True)
    except Invalid as exc:
        raise fail(path, exc.where, exc.reason) from exc
    if len(items) > MAX_RECORDS:
        raise fail(path, "warnings", f"more than the {MAX_RECORDS}-record cap")
    ticker = Ticker(on_progress, len(items))
    out: list[OfficialWarning] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(items):
        ticker.step()
        try:
            _keep(out, _json_warning(raw, f"warnings[{i}]", source), seen, f"warnings[{i}].id", problems)
        except Invalid as exc:
            problems.add(exc.where, exc.reason)
    ticker.finish()
    return _Doc((source,), version, tuple(out))


# -- CSV ----------------------------------------------------------------------------------------------------


def _csv_warning(cells: dict[str, str], where: str) -> OfficialWarning:
    cves = [c for c in re.split(r"[\s;,]+", cells["cves"]) if c]
    return OfficialWarning(
        id=_text(cells["id"], f"{where}, column id", MAX_ID),
        title=_text(cells["title"], f"{where}, column title", MAX_TEXT),
        cves=_cves(cves, f"{where}, column cves"),
        source=_text(cells["source"], f"{where}, column source", MAX_ID),
        date=parse_date(cells["date"], f"{where}, column date"),
        exploited=_exploited(cells["exploited"], f"{where}, column exploited"),
        url=_url(cells.get("url"), f"{where}, column url"),
    )


def _csv_doc(path: Path, text: str, problems: Problems, on_progress: Progress | None) -> _Doc:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = csv_header(",".join(next(reader, [])))
    except csv.Error as exc:
        raise fail(path, "line 1", f"unreadable CSV: {exc}") from exc
    if header is None:
        raise fail(path, "line 1", f"expected the header {','.join(CSV_HEADER)}")
    ticker = Ticker(on_progress, None)
    out: list[OfficialWarning] = []
    seen: dict[str, str] = {}
    previous = reader.line_num
    try:
        for row in reader:
            ticker.step()
            where, previous = f"line {previous + 1}", reader.line_num   # a quoted field may span lines
            if not any(cell.strip() for cell in row):
                continue
            if len(out) >= MAX_RECORDS:
                raise fail(path, where, f"more than the {MAX_RECORDS}-record cap")
            if len(row) != len(header):
                problems.add(where, f"expected {len(header)} columns, got {len(row)}")
                continue
            try:
                warning = _csv_warning(dict(zip(header, row, strict=True)), where)
                _keep(out, warning, seen, f"{where}, column id", problems)
            except Invalid as exc:
                problems.add(exc.where, exc.reason)
    except csv.Error as exc:
        raise fail(path, f"line {reader.line_num}", f"unreadable CSV: {exc}") from exc
    ticker.finish()
    if not out and not problems.items:
        raise fail(path, "", "no warning rows after the header; a CSV names its source in its rows")
    version = max((w.date for w in out), default=None)
    return _Doc(tuple(sorted({w.source for w in out})), version.isoformat() if version else "", tuple(out))


# -- both ---------------------------------------------------------------------------------------------------


def parse_warnings(path: Path, data: Any, *, on_progress: Progress | None, max_bytes: int) -> ParsedFeed:
    """``data`` is the loaded JSON document, or None for a CSV file (read here)."""
    problems = Problems(path)
    if data is None:
        try:
            text = read_file(path, max_bytes).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise fail(path, "", f"not UTF-8 (byte {exc.start}); save the CSV as UTF-8") from exc
        doc = _csv_doc(path, text, problems, on_progress)
    elif isinstance(data, dict):
        doc = _json_doc(path, data, problems, on_progress)
    else:
        raise fail(path, "", "a warnings document is a JSON object")
    problems.check()
    return ParsedFeed("warnings", "warnings:" + "+".join(doc.sources), doc.version, warnings=doc.warnings)
