"""Offline vulnerability feeds: OSV, the Debian security tracker, CISA KEV and official warnings.

Agency networks are air-gapped, so feeds arrive as files. ``parse_feed`` reads one, validates all of it
(all-or-nothing: any invalid record raises ``FeedError`` listing up to 20 problems) and returns frozen,
normalized records; the collector stores them. Pure: stdlib only. Format reference: docs/feeds.md.
"""

from __future__ import annotations

from rules.feeds.model import (
    FEED_KINDS,
    STATUSES,
    Affected,
    FeedError,
    KnownExploited,
    OfficialWarning,
    ParsedFeed,
    Vulnerability,
)
from rules.feeds.parse import detect_kind, parse_feed

__all__ = [
    "FEED_KINDS",
    "STATUSES",
    "Affected",
    "FeedError",
    "KnownExploited",
    "OfficialWarning",
    "ParsedFeed",
    "Vulnerability",
    "detect_kind",
    "parse_feed",
]
