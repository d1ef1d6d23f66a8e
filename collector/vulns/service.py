"""Storing parsed feeds: versioned, all-or-nothing, and a no-op for a file imported before."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert
from sqlmodel import Session, select

from collector.errors import Conflict
from collector.vulns.models import Feed, KnownExploitedRow, OfficialWarningRow, VulnAffected, VulnRecord
from rules.cvss import best_score
from rules.feeds import ParsedFeed, Vulnerability

CHUNK = 1000
CVE_PREFIX = "CVE-"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    status: str  # imported | unchanged | replaced
    feed: Feed
    replaced: Feed | None = None


def import_feed(session: Session, *, parsed: ParsedFeed, sha256: str, filename: str, now: datetime,
                by: str | None = None, on_progress: Callable[[int, int], None] | None = None) -> ImportOutcome:
    """Store ``parsed`` as the current version of its source, in the caller's transaction."""
    same = session.exec(select(Feed).where(Feed.kind == parsed.kind, Feed.sha256 == sha256,
                                           Feed.replaced_at.is_(None))).first()
    if same is not None:
        return ImportOutcome("unchanged", same)
    current = session.exec(select(Feed).where(Feed.kind == parsed.kind, Feed.source == parsed.source,
                                              Feed.replaced_at.is_(None))).first()
    if current is not None and parsed.version and current.version and parsed.version < current.version:
        raise Conflict(f"{filename} is version {parsed.version} of {parsed.source}, older than the imported "
                       f"version {current.version} (feed {current.id}); refusing to go back")
    feed = Feed(kind=parsed.kind, source=parsed.source, version=parsed.version, sha256=sha256,
                filename=filename[:255], records=_count(parsed), skipped=dict(parsed.skipped),
                imported_at=now, imported_by=by)
    session.add(feed)
    if current is not None:
        _drop_records(session, current.id)
        current.replaced_at = now
        session.add(current)
    session.flush()
    _store_records(session, feed.id, parsed, on_progress)
    return ImportOutcome("replaced" if current else "imported", feed, current)


def _count(parsed: ParsedFeed) -> int:
    return len(parsed.vulnerabilities) + len(parsed.known_exploited) + len(parsed.warnings)


def _drop_records(session: Session, feed_id: int) -> None:
    for table in (VulnAffected, VulnRecord, KnownExploitedRow, OfficialWarningRow):
        session.execute(delete(table).where(table.feed_id == feed_id))


def cves_of(vuln: Vulnerability) -> list[str]:
    """The CVE ids a record stands for: itself if it is one, else its CVE aliases (a DSA lists several)."""
    ids = [vuln.id] if vuln.id.startswith(CVE_PREFIX) else []
    ids += [a for a in vuln.aliases if a.startswith(CVE_PREFIX) and a not in ids]
    return ids


def _store_records(session: Session, feed_id: int, parsed: ParsedFeed,
                   on_progress: Callable[[int, int], None] | None) -> None:
    # Core executemany: the ORM's bulk insert splits batches wherever a different set of fields is
    # None, which on PostgreSQL meant a round trip every few rows.
    conn = session.connection()
    total = _count(parsed)
    done = 0
    records: list[dict[str, Any]] = []
    affected: list[dict[str, Any]] = []

    def flush(force: bool = False) -> None:
        nonlocal done
        if records and (force or len(records) >= CHUNK):
            conn.execute(insert(VulnRecord.__table__), records)
            done += len(records)
            records.clear()
            if on_progress:
                on_progress(done, total)
        if affected and (force or len(affected) >= CHUNK * 4):
            conn.execute(insert(VulnAffected.__table__), affected)
            affected.clear()

    for vuln in parsed.vulnerabilities:
        score = best_score(vuln.cvss_vectors)
        records.append({"feed_id": feed_id, "vuln_id": vuln.id, "aliases": list(vuln.aliases),
                        "summary": vuln.summary[:2000], "published": vuln.published, "modified": vuln.modified,
                        "cvss_vector": score.vector[:255] if score else None,
                        "cvss_version": score.version if score else None,
                        "cvss_score": score.base_score if score else None,
                        "cvss_severity": score.severity if score else None,
                        "severity": (vuln.severity or "")[:32] or None})
        cves = cves_of(vuln)
        for a in vuln.affected:
            affected.append({"feed_id": feed_id, "vuln_id": vuln.id, "cves": cves, "distro": a.distro,
                             "ecosystem": a.ecosystem, "package": a.package, "introduced": a.introduced,
                             "fixed": a.fixed, "last_affected": a.last_affected, "status": a.status,
                             "urgency": a.urgency, "versions": list(a.versions)})
        flush()
    flush(force=True)
    if parsed.known_exploited:
        conn.execute(insert(KnownExploitedRow.__table__), [
            {"feed_id": feed_id, "cve": k.cve, "vendor": k.vendor[:255], "product": k.product[:255],
             "name": k.name[:500], "date_added": k.date_added, "due_date": k.due_date, "ransomware": k.ransomware}
            for k in parsed.known_exploited])
    rows = [{"feed_id": feed_id, "warning_id": w.id[:128], "cve": cve, "title": w.title[:500], "source": w.source[:128],
             "date": w.date, "exploited": w.exploited, "url": (w.url or None) and w.url[:1000]}
            for w in parsed.warnings for cve in w.cves]
    for i in range(0, len(rows), CHUNK):
        conn.execute(insert(OfficialWarningRow.__table__), rows[i:i + CHUNK])
    if on_progress:
        on_progress(total, total)


def list_feeds(session: Session, *, include_replaced: bool = False) -> list[Feed]:
    query = select(Feed).order_by(Feed.id.desc())
    if not include_replaced:
        query = query.where(Feed.replaced_at.is_(None))
    return list(session.exec(query).all())


def generation(session: Session) -> tuple[int, int]:
    """Changes whenever the set of current feeds does: (newest feed id, count of replaced feeds)."""
    newest, replaced = session.execute(select(func.max(Feed.id), func.count(Feed.replaced_at))).one()
    return int(newest or 0), int(replaced or 0)

