"""The Debian Security Tracker JSON (https://security-tracker.debian.org/tracker/data/json).

The file maps source package → CVE (or TEMP) id → per-release state. Khiên wants one vulnerability per
CVE, so the same id under several source packages merges into one ``Vulnerability`` with one
``Affected`` row per (package, release). The tracker's mix of status, urgency and no-DSA markers is
folded into one normalized state (see ``release_state``) because that is what a finding needs: is a
fix available, and if not, why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.feeds.common import (
    MAX_ID,
    MAX_NAME,
    MAX_RECORDS,
    MAX_REFERENCES,
    MAX_VERSION,
    Invalid,
    Problems,
    Progress,
    Ticker,
    clip,
    fail,
    get_dict,
    get_str,
    norm_urgency,
    want_dict,
    want_str,
)
from rules.feeds.model import Affected, ParsedFeed, Vulnerability

SOURCE = "debian-security-tracker"
CODENAMES = {"buster": "debian:10", "bullseye": "debian:11", "bookworm": "debian:12", "trixie": "debian:13",
             "forky": "debian:14", "sid": "debian:sid"}
TRACKER_STATUSES = frozenset({"resolved", "open", "undetermined"})
URGENCY_RANK = {"unimportant": 0, "low": 1, "medium": 2, "high": 3}
TRACKER_URL = "https://security-tracker.debian.org/tracker/"
MAX_NODSA = 2_000
MAX_CODENAME = 64


@dataclass(slots=True)
class _Merged:
    """One CVE being assembled across source packages."""

    description: str = ""
    rows: list[Affected] = field(default_factory=list)
    bugs: list[int] = field(default_factory=list)


def distro_key(codename: str) -> str:
    """``bookworm`` → ``debian:12``; unknown codenames → ``debian:<codename>``."""
    name = codename.strip().lower()
    return CODENAMES.get(name, f"debian:{name}")


def looks_like_tracker(data: object) -> bool:
    """An object whose first values are objects of ``{id: {"releases": {...}}}``."""
    if not isinstance(data, dict) or not data:
        return False
    for entries in list(data.values())[:5]:
        if not isinstance(entries, dict):
            return False
        first = next(iter(entries.values()), None)
        if first is not None and not (isinstance(first, dict) and "releases" in first):
            return False
    return any(isinstance(v, dict) and v for v in list(data.values())[:5])


def release_state(status: str, fixed_version: str | None, urgency: str | None, nodsa: bool,
                  nodsa_reason: str | None) -> str:
    """The normalized state of one CVE in one release."""
    if status == "resolved":
        if fixed_version is None:
            return "undetermined"        # resolved without a version: cannot tell fixed from not affected
        return "not-affected" if fixed_version.strip() == "0" else "fixed"
    if urgency == "end-of-life":
        return "end-of-life"
    if urgency == "unimportant":
        return "unimportant"
    if nodsa_reason in ("postponed", "ignored"):
        return nodsa_reason
    if nodsa or nodsa_reason:
        return "no-dsa"
    return status


def _release(package: str, codename: str, raw: object, where: str) -> Affected:
    if not codename.strip() or len(codename) > MAX_CODENAME:
        raise Invalid(where, f"release codenames are 1 to {MAX_CODENAME} characters")
    rel = want_dict(raw, where)
    status = get_str(rel, "status", where, required=True)
    if status not in TRACKER_STATUSES:
        raise Invalid(f"{where}.status", f"expected one of {sorted(TRACKER_STATUSES)}, got {status[:40]!r}")
    for repo, version in get_dict(rel, "repositories", where).items():
        want_str(version, f"{where}.repositories.{repo}", max_len=MAX_VERSION)
    fixed = get_str(rel, "fixed_version", where, max_len=MAX_VERSION)
    urgency = norm_urgency(get_str(rel, "urgency", where, max_len=MAX_NAME, empty=True))
    nodsa = get_str(rel, "nodsa", where, max_len=MAX_NODSA, empty=True)
    reason = (get_str(rel, "nodsa_reason", where, max_len=MAX_NAME, empty=True) or "").strip().lower()
    state = release_state(status, fixed, urgency, nodsa is not None, reason)
    return Affected(distro_key(codename), "deb", package, None, fixed.strip() if state == "fixed" and fixed else None,
                    None, state, urgency)


def _entry(package: str, raw: object, merged: _Merged, where: str) -> None:
    entry = want_dict(raw, where)
    description = get_str(entry, "description", where, empty=True) or ""
    get_str(entry, "scope", where, max_len=MAX_NAME, empty=True)
    bug = entry.get("debianbug")
    if bug is not None and (isinstance(bug, bool) or not isinstance(bug, int)):
        raise Invalid(f"{where}.debianbug", "expected an integer bug number")
    releases = get_dict(entry, "releases", where, required=True)
    rows = [_release(package, codename, rel, f"{where}.releases.{codename}") for codename, rel in releases.items()]
    merged.description = merged.description or description.strip()
    merged.rows += rows
    if bug and bug not in merged.bugs:
        merged.bugs.append(bug)


def _vulnerability(vid: str, merged: _Merged) -> Vulnerability:
    ranked = [r.urgency for r in merged.rows if r.urgency in URGENCY_RANK and r.status != "not-affected"]
    severity = max(ranked, key=URGENCY_RANK.__getitem__) if ranked else None
    refs = [TRACKER_URL + vid] + [f"https://bugs.debian.org/{bug}" for bug in merged.bugs]
    return Vulnerability(vid, (), clip(merged.description), None, None, (), severity, tuple(merged.rows),
                         tuple(refs[:MAX_REFERENCES]))


def parse_tracker(path: Path, data: Any, *, on_progress: Progress | None) -> ParsedFeed:
    """Validate the whole tracker document and merge it per CVE."""
    if not isinstance(data, dict):
        raise fail(path, "", "the tracker JSON is an object of source packages")
    problems = Problems(path)
    ticker = Ticker(on_progress, len(data))
    merged: dict[str, _Merged] = {}
    records = 0
    for package, entries in data.items():
        ticker.step()
        if len(package) > MAX_NAME or not package.strip():
            problems.add(package[:40], f"package names are 1 to {MAX_NAME} characters")
            continue
        if not isinstance(entries, dict):
            problems.add(package, "expected an object of CVE ids")
            continue
        records += len(entries)
        if records > MAX_RECORDS:
            raise fail(path, package, f"more than the {MAX_RECORDS}-record cap")
        for vid, entry in entries.items():
            if len(vid) > MAX_ID or not vid.strip():
                problems.add(f"{package}.{vid[:40]}", f"ids are 1 to {MAX_ID} characters")
                continue
            target = merged.setdefault(vid, _Merged())
            try:
                _entry(package, entry, target, f"{package}.{vid}")
            except Invalid as exc:
                problems.add(exc.where, exc.reason)
    ticker.finish()
    problems.check()
    return ParsedFeed("debian-tracker", SOURCE, "",
                      vulnerabilities=tuple(_vulnerability(vid, m) for vid, m in merged.items()))
