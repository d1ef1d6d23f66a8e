"""The normalized records every feed parser returns, and the one error type they raise.

Feeds come from outside (air-gapped agencies carry files in), so the parsers validate everything and
the collector only ever stores these frozen values. Nothing here knows how versions compare: version
strings are kept exactly as the feed gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

FEED_KINDS = ("osv", "debian-tracker", "kev", "warnings")

# Normalized per-distro states, see docs/feeds.md for what each means for a finding.
STATUSES = frozenset({"fixed", "open", "no-dsa", "postponed", "ignored", "not-affected", "undetermined",
                      "end-of-life", "unimportant"})


class FeedError(ValueError):
    """A feed file is unreadable, too big or invalid.

    The message names the file and where in it (zip member, record index, CSV line, JSON key path);
    ``problems`` holds each problem line separately (at most 20) for callers that list them.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


@dataclass(frozen=True, slots=True)
class Affected:
    """One vulnerable range (or list of versions) of one package on one distro release."""

    distro: str | None           # "debian:12", "ubuntu:22.04", "alpine:3.18", "rocky:9", "alma:9", "rhel:9"; None: PyPI
    ecosystem: str               # version comparison: "deb" | "apk" | "rpm" | "pypi"
    package: str                 # deb: source package; PyPI: PEP 503 normalized; else as given
    introduced: str | None       # None = from the beginning ("0" collapses to None)
    fixed: str | None            # first fixed version; None = no fix known
    last_affected: str | None
    status: str                  # one of STATUSES
    urgency: str | None          # tracker urgency / Ubuntu priority, lower-cased, trailing '*' stripped
    versions: tuple[str, ...] = ()  # OSV entry with only a versions list: exactly these (bounds all None)


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One advisory or CVE with every affected package row it names."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    published: datetime | None   # tz-aware UTC
    modified: datetime | None
    cvss_vectors: tuple[str, ...]
    severity: str | None         # non-CVSS severity text
    affected: tuple[Affected, ...]
    references: tuple[str, ...]  # at most 10 urls


@dataclass(frozen=True, slots=True)
class KnownExploited:
    """One entry of the CISA Known Exploited Vulnerabilities catalog."""

    cve: str
    vendor: str
    product: str
    name: str
    date_added: date
    due_date: date | None
    ransomware: bool | None      # True: "Known"; None: "Unknown" or absent
    description: str


@dataclass(frozen=True, slots=True)
class OfficialWarning:
    """One official warning (cảnh báo) from a national authority."""

    id: str
    title: str
    cves: tuple[str, ...]
    source: str
    date: date
    exploited: bool
    url: str | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """Everything one feed file holds, validated; ``source``+``version`` identify it for replacement."""

    kind: str
    source: str
    version: str
    vulnerabilities: tuple[Vulnerability, ...] = ()
    known_exploited: tuple[KnownExploited, ...] = ()
    warnings: tuple[OfficialWarning, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)
