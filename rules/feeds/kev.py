"""The CISA Known Exploited Vulnerabilities catalog (known_exploited_vulnerabilities.json).

A finding whose CVE is in KEV is being exploited in the wild, so Khiên raises its priority; the catalog
must therefore be complete and exact: ``count`` has to match the list, and every entry is validated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rules.feeds.common import (
    MAX_ID,
    MAX_NAME,
    MAX_RECORDS,
    Invalid,
    Problems,
    Progress,
    Ticker,
    clip,
    fail,
    get_list,
    get_str,
    parse_cve,
    parse_date,
    parse_datetime,
    str_list,
    want_dict,
)
from rules.feeds.model import KnownExploited, ParsedFeed

SOURCE = "cisa-kev"
RANSOMWARE = {"known": True, "unknown": None}


def looks_like_kev(data: object) -> bool:
    return isinstance(data, dict) and "vulnerabilities" in data and "catalogVersion" in data


def _entry(raw: object, where: str) -> KnownExploited:
    item = want_dict(raw, where)
    cve = parse_cve(item.get("cveID"), f"{where}.cveID")
    ransom_text = get_str(item, "knownRansomwareCampaignUse", where, max_len=MAX_NAME)
    if ransom_text is not None and ransom_text.strip().lower() not in RANSOMWARE:
        raise Invalid(f"{where}.knownRansomwareCampaignUse", f"expected Known or Unknown, got {ransom_text[:40]!r}")
    get_str(item, "notes", where, empty=True)
    str_list(item, "cwes", where, max_len=MAX_ID)
    get_str(item, "requiredAction", where, empty=True)
    due = item.get("dueDate")
    return KnownExploited(
        cve=cve,
        vendor=get_str(item, "vendorProject", where, required=True, max_len=MAX_NAME).strip(),
        product=get_str(item, "product", where, required=True, max_len=MAX_NAME).strip(),
        name=get_str(item, "vulnerabilityName", where, required=True, max_len=MAX_NAME * 2).strip(),
        date_added=parse_date(item.get("dateAdded"), f"{where}.dateAdded"),
        due_date=parse_date(due, f"{where}.dueDate") if due else None,
        ransomware=RANSOMWARE[ransom_text.strip().lower()] if ransom_text else None,
        description=clip(get_str(item, "shortDescription", where, empty=True) or ""),
    )


def _header(doc: dict[str, Any], path: Path) -> tuple[str, list[Any]]:
    """catalogVersion and the list, after checking the header fields and ``count``."""
    try:
        get_str(doc, "title", "", empty=True)
        version = get_str(doc, "catalogVersion", "", required=True, max_len=MAX_ID).strip()
        if doc.get("dateReleased") is not None:
            parse_datetime(doc["dateReleased"], "dateReleased")
        items = get_list(doc, "vulnerabilities", "", required=True)
        count = doc.get("count")
        if count is None or isinstance(count, bool) or not isinstance(count, int):
            raise Invalid("count", "required integer")
    except Invalid as exc:
        raise fail(path, exc.where, exc.reason) from exc
    if count != len(items):
        raise fail(path, "count", f"says {count} but the catalog lists {len(items)} vulnerabilities (truncated?)")
    if len(items) > MAX_RECORDS:
        raise fail(path, "vulnerabilities", f"more than the {MAX_RECORDS}-record cap")
    return version, items


def parse_kev(path: Path, data: Any, *, on_progress: Progress | None) -> ParsedFeed:
    if not isinstance(data, dict):
        raise fail(path, "", "the KEV catalog is a JSON object")
    version, items = _header(data, path)
    problems = Problems(path)
    ticker = Ticker(on_progress, len(items))
    entries: list[KnownExploited] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        ticker.step()
        where = f"vulnerabilities[{i}]"
        try:
            entry = _entry(raw, where)
        except Invalid as exc:
            problems.add(exc.where, exc.reason)
            continue
        if entry.cve in seen:
            problems.add(f"{where}.cveID", f"duplicate {entry.cve}: also vulnerabilities[{seen[entry.cve]}]")
            continue
        seen[entry.cve] = i
        entries.append(entry)
    ticker.finish()
    problems.check()
    return ParsedFeed("kev", SOURCE, version, known_exploited=tuple(entries))
