"""OSV records (https://ossf.github.io/osv-schema/): one file, a directory of files, or an ecosystem zip.

OSV publishes ``<Ecosystem>/all.zip`` with one JSON record per member; agencies carry those in. Only
the distro and language ecosystems Khiên scans are kept (Debian, Ubuntu, Alpine, Rocky Linux,
AlmaLinux, Red Hat, PyPI); other ecosystems and withdrawn records are skipped and counted. Each
ECOSYSTEM/SEMVER range interval becomes one ``Affected`` row; GIT ranges carry no package versions and
are ignored.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rules.feeds.common import (
    CVE_RE,
    MAX_ID,
    MAX_MEMBER_BYTES,
    MAX_NAME,
    MAX_RECORDS,
    MAX_REFERENCES,
    MAX_VERSION,
    Invalid,
    Problems,
    Progress,
    Ticker,
    clip,
    decode_json,
    fail,
    get_dict,
    get_list,
    get_str,
    head,
    iso_z,
    join,
    norm_urgency,
    parse_datetime,
    read_file,
    str_list,
    want_dict,
    want_str,
)
from rules.feeds.model import Affected, ParsedFeed, Vulnerability
from rules.feeds.tracker import distro_key

EVENT_KEYS = ("introduced", "fixed", "last_affected", "limit")
VERSION_RANGES = frozenset({"ECOSYSTEM", "SEMVER"})
CVSS_TYPES = frozenset({"CVSS_V2", "CVSS_V3", "CVSS_V4"})
URGENCY_RANK = {"unimportant": 0, "negligible": 0, "low": 1, "medium": 2, "moderate": 2, "high": 3,
                "important": 3, "critical": 4}
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True, slots=True)
class Target:
    """Where an OSV ``affected[].package.ecosystem`` lands in Khiên."""

    family: str             # "Debian", "Ubuntu", ... as OSV spells the ecosystem
    distro: str | None
    ecosystem: str          # deb | apk | rpm | pypi


@dataclass(frozen=True, slots=True)
class Outcome:
    """One parsed record: kept (vulnerability) or skipped for the reasons given."""

    vulnerability: Vulnerability | None
    modified: datetime
    families: tuple[str, ...]
    skipped: tuple[str, ...] = ()


def is_zip(raw_head: bytes) -> bool:
    return raw_head[:4] in ZIP_MAGIC


def looks_like_record(data: object) -> bool:
    """An OSV record: an object with a string id and ``modified`` or ``affected``."""
    return isinstance(data, dict) and isinstance(data.get("id"), str) and ("modified" in data or "affected" in data)


# -- ecosystems ---------------------------------------------------------------------------------------------


def _major(release: str, where: str, ecosystem: str) -> str:
    match = re.fullmatch(r"(\d+)(\.\d+)*", release.strip())
    if not match:
        raise Invalid(where, f"no release number in ecosystem {ecosystem!r}")
    return match.group(1)


def target(ecosystem: str, where: str) -> Target | str:
    """The Target of an ecosystem string, or the skip reason when Khiên does not scan it."""
    family, _, rest = ecosystem.partition(":")
    parts = rest.split(":") if rest else []
    if family == "PyPI":
        return Target(family, None, "pypi")
    if family in ("Debian", "Ubuntu", "Alpine", "Rocky Linux", "AlmaLinux", "Red Hat") and not rest:
        raise Invalid(where, f"ecosystem {ecosystem!r} names no release")
    if family == "Debian":
        return Target(family, distro_key(rest), "deb")      # "12" → debian:12; a codename maps too
    if family == "Ubuntu":
        if any("fips" in part.lower() for part in parts):
            return "ecosystem:Ubuntu:FIPS"   # FIPS kernels/libraries are a separate stream
        release = next((p for p in parts if re.fullmatch(r"\d{2}\.\d{2}", p)), None)
        if release is None:
            raise Invalid(where, f"no release like 22.04 in ecosystem {ecosystem!r}")
        return Target(family, f"ubuntu:{release}", "deb")
    if family == "Alpine":
        release = rest.strip().removeprefix("v")
        if not re.fullmatch(r"\d+\.\d+", release):
            raise Invalid(where, f"no release like v3.18 in ecosystem {ecosystem!r}")
        return Target(family, f"alpine:{release}", "apk")
    if family == "Rocky Linux":
        return Target(family, f"rocky:{_major(rest, where, ecosystem)}", "rpm")
    if family == "AlmaLinux":
        return Target(family, f"alma:{_major(rest, where, ecosystem)}", "rpm")
    if family == "Red Hat":
        if parts[0] != "enterprise_linux" or len(parts) < 2:
            return f"ecosystem:Red Hat:{parts[0]}"   # EUS/AUS/E4S and layered products are other streams
        return Target(family, f"rhel:{_major(parts[1], where, ecosystem)}", "rpm")
    return f"ecosystem:{family}"


def package_name(name: str, tgt: Target) -> str:
    """PyPI names per PEP 503; everything else as given."""
    return re.sub(r"[-_.]+", "-", name).lower() if tgt.ecosystem == "pypi" else name


# -- one record ---------------------------------------------------------------------------------------------


def _events(events: list[Any], where: str) -> list[tuple[str | None, str | None, str | None]]:
    """(introduced, fixed, last_affected) intervals of one range's events, in the order given."""
    intervals: list[tuple[str | None, str | None, str | None]] = []
    start: str | None = None
    is_open = False
    seen_introduced = False
    for i, raw in enumerate(events):
        event = want_dict(raw, f"{where}[{i}]")
        keys = [k for k in EVENT_KEYS if k in event]
        if len(keys) != 1 or len(event) != 1:
            raise Invalid(f"{where}[{i}]", f"an event has exactly one of {', '.join(EVENT_KEYS)}")
        key = keys[0]
        value = want_str(event[key], f"{where}[{i}].{key}", max_len=MAX_VERSION).strip()
        if key == "introduced":
            if is_open:
                intervals.append((start, None, None))
            start, is_open, seen_introduced = (None if value == "0" else value), True, True
        elif key in ("fixed", "last_affected"):
            intervals.append((start if is_open else None, value if key == "fixed" else None,
                              value if key == "last_affected" else None))
            is_open = False
        # "limit" bounds git-branch ranges; it says nothing about a fix, so it is ignored.
    if not seen_introduced:
        raise Invalid(where, "a range needs an 'introduced' event")
    if is_open:
        intervals.append((start, None, None))
    return intervals


def _status(fixed: str | None, urgency: str | None) -> str:
    if fixed is not None:
        return "fixed"
    return urgency if urgency in ("unimportant", "end-of-life") else "open"


def _entry_urgency(entry: dict[str, Any], default: str | None) -> str | None:
    """Debian urgency / Ubuntu priority of one affected entry (free-form blocks: non-strings ignored)."""
    for block in ("ecosystem_specific", "database_specific"):
        extra = entry.get(block)
        if isinstance(extra, dict):
            for key in ("urgency", "ubuntu_priority", "priority"):
                if isinstance(extra.get(key), str) and extra[key].strip():
                    return norm_urgency(extra[key])
    return default


def _rows(entry: dict[str, Any], where: str, tgt: Target, name: str, urgency: str | None) -> list[Affected]:
    package = package_name(name, tgt)
    rows: list[Affected] = []
    for i, raw in enumerate(get_list(entry, "ranges", where)):
        rng = want_dict(raw, f"{where}.ranges[{i}]")
        kind = get_str(rng, "type", f"{where}.ranges[{i}]", required=True)
        events = get_list(rng, "events", f"{where}.ranges[{i}]", required=True)
        if kind not in VERSION_RANGES:
            continue
        for introduced, fixed, last in _events(events, f"{where}.ranges[{i}].events"):
            rows.append(Affected(tgt.distro, tgt.ecosystem, package, introduced, fixed, last,
                                 _status(fixed, urgency), urgency))
    versions = tuple(str_list(entry, "versions", where, max_len=MAX_VERSION))
    if versions and not rows:
        # Only an enumeration: a row of exactly these versions. Next to ranges it is redundant (OSV
        # enumerates the ranges), and a bound-less row would read as "every version" to a range matcher.
        rows.append(Affected(tgt.distro, tgt.ecosystem, package, None, None, None, _status(None, urgency),
                             urgency, versions))
    return rows


def _severity(record: dict[str, Any], where: str) -> tuple[list[str], str | None]:
    """CVSS vectors and the non-CVSS severity text of one ``severity`` list."""
    vectors: list[str] = []
    text: str | None = None
    for i, raw in enumerate(get_list(record, "severity", where)):
        item = want_dict(raw, join(where, f"severity[{i}]"))
        kind = get_str(item, "type", join(where, f"severity[{i}]"), required=True)
        score = get_str(item, "score", join(where, f"severity[{i}]"), required=True, max_len=MAX_NAME)
        if kind in CVSS_TYPES:
            vectors.append(score.strip())
        elif kind == "Ubuntu" and text is None:
            text = score.strip()
    return vectors, text


def _worst(urgencies: list[str | None]) -> str | None:
    ranked = [u for u in urgencies if u in URGENCY_RANK]
    return max(ranked, key=URGENCY_RANK.__getitem__) if ranked else None


def _references(record: dict[str, Any]) -> tuple[str, ...]:
    urls: list[str] = []
    for i, raw in enumerate(get_list(record, "references", "")):
        ref = want_dict(raw, f"references[{i}]")
        url = get_str(ref, "url", f"references[{i}]", required=True, max_len=2048).strip()
        if url.startswith(("https://", "http://")) and url not in urls:
            urls.append(url)
    return tuple(urls[:MAX_REFERENCES])


def _aliases(record: dict[str, Any], own: str) -> tuple[str, ...]:
    found = str_list(record, "aliases", "")
    found += [a for key in ("upstream", "related") for a in str_list(record, key, "") if CVE_RE.fullmatch(a)]
    return tuple(dict.fromkeys(a.strip() for a in found if a.strip() != own))


def _summary(record: dict[str, Any]) -> str:
    summary = (get_str(record, "summary", "", empty=True) or "").strip()
    details = (get_str(record, "details", "", empty=True) or "").strip()
    if summary and details and details != summary:
        return clip(f"{summary}\n\n{details}")
    return clip(summary or details)


def parse_record(record: dict[str, Any]) -> Outcome:
    """Validate one OSV record; raises Invalid with the key path of the first problem."""
    vid = get_str(record, "id", "", required=True, max_len=MAX_ID).strip()
    if record.get("modified") is None:
        raise Invalid("modified", "required")
    modified = parse_datetime(record["modified"], "modified")
    published = parse_datetime(record["published"], "published") if record.get("published") else None
    vectors, ubuntu = _severity(record, "")
    extra = get_dict(record, "database_specific", "")
    text = ubuntu
    if text is None and isinstance(extra.get("severity"), str) and extra["severity"].strip():
        text = extra["severity"].strip()      # Red Hat "Important", GHSA "HIGH": severity, not urgency
    record_urgency = norm_urgency(extra["urgency"]) if isinstance(extra.get("urgency"), str) else None
    record_urgency = record_urgency or norm_urgency(ubuntu)
    rows: list[Affected] = []
    families: list[str] = []
    skipped: list[str] = []
    entries = get_list(record, "affected", "")
    for i, raw in enumerate(entries):
        where = f"affected[{i}]"
        entry = want_dict(raw, where)
        package = get_dict(entry, "package", where, required=True)
        ecosystem = get_str(package, "ecosystem", f"{where}.package", required=True, max_len=MAX_NAME).strip()
        name = get_str(package, "name", f"{where}.package", required=True, max_len=MAX_NAME).strip()
        tgt = target(ecosystem, f"{where}.package.ecosystem")
        if isinstance(tgt, str):
            skipped.append(tgt)
            continue
        families.append(tgt.family)
        entry_vectors, _ = _severity(entry, where)
        vectors += entry_vectors
        rows += _rows(entry, where, tgt, name, _entry_urgency(entry, record_urgency))
    aliases, references, summary = _aliases(record, vid), _references(record), _summary(record)
    if record.get("withdrawn"):
        parse_datetime(record["withdrawn"], "withdrawn")
        return Outcome(None, modified, tuple(dict.fromkeys(families)), ("withdrawn",))
    if not families:
        return Outcome(None, modified, (), tuple(dict.fromkeys(skipped)) or ("no-affected",))
    vuln = Vulnerability(vid, aliases, summary, published, modified, tuple(dict.fromkeys(vectors)),
                         text or _worst([r.urgency for r in rows]), tuple(rows), references)
    return Outcome(vuln, modified, tuple(dict.fromkeys(families)))


# -- files --------------------------------------------------------------------------------------------------


def _directory(path: Path, max_bytes: int, problems: Problems) -> tuple[int, Iterator[tuple[str, bytes | None]]]:
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if len(files) > MAX_RECORDS:
        raise fail(path, "", f"{len(files)} files, more than the {MAX_RECORDS}-record cap")
    total = sum(p.stat().st_size for p in files)
    if total > max_bytes:
        raise fail(path, "", f"directory holds {total} bytes of JSON, more than the {max_bytes}-byte cap")

    def items() -> Iterator[tuple[str, bytes | None]]:
        for file in files:
            try:
                yield str(file), read_file(file, MAX_MEMBER_BYTES)
            except ValueError as exc:
                problems.add("", str(exc).removeprefix(f"{file}: "), str(file))
                yield str(file), None
    return len(files), items()


def _zip(path: Path, max_bytes: int, problems: Problems,
         skipped: Counter[str]) -> tuple[int, Iterator[tuple[str, bytes | None]]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise fail(path, "", f"not a readable zip archive: {exc}") from exc
    infos = [info for info in archive.infolist() if not info.is_dir()]
    total = sum(info.file_size for info in infos)
    if len(infos) > MAX_RECORDS or total > max_bytes:
        archive.close()
        if len(infos) > MAX_RECORDS:
            raise fail(path, "", f"{len(infos)} members, more than the {MAX_RECORDS}-record cap")
        raise fail(path, "", f"zip bomb refused: members expand to {total} bytes, more than the {max_bytes}-byte cap")
    members = [info for info in infos if info.filename.lower().endswith(".json")]
    if len(members) < len(infos):
        skipped["file:not-json"] += len(infos) - len(members)

    def items() -> Iterator[tuple[str, bytes | None]]:
        with archive:
            for info in members:
                label = f"{path} member {info.filename}"
                yield label, _member(archive, info, label, problems)
    return len(members), items()


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, problems: Problems) -> bytes | None:
    if info.file_size > MAX_MEMBER_BYTES:
        problems.add("", f"member expands to {info.file_size} bytes, more than the {MAX_MEMBER_BYTES}-byte cap",
                     label)
        return None
    if info.flag_bits & 0x1:
        problems.add("", "member is encrypted", label)
        return None
    try:
        with archive.open(info) as handle:
            raw = handle.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        problems.add("", f"cannot decompress: {exc}", label)
        return None
    if len(raw) > MAX_MEMBER_BYTES:
        problems.add("", f"member is larger than the {MAX_MEMBER_BYTES}-byte cap", label)
        return None
    return raw


def parse_osv(path: Path, *, on_progress: Progress | None, max_bytes: int,
              single: dict[str, Any] | None = None) -> ParsedFeed:
    """Parse an OSV record file, a directory of them, or a zip; ``single`` is an already-loaded record file."""
    problems = Problems(path)
    skipped: Counter[str] = Counter()
    if single is not None:
        count, items = 1, iter([(str(path), None)])
    elif path.is_dir():
        count, items = _directory(path, max_bytes, problems)
    elif is_zip(head(path)):
        count, items = _zip(path, max_bytes, problems, skipped)
    else:
        count, items = 1, iter([(str(path), read_file(path, max_bytes))])
    ticker = Ticker(on_progress, count)
    kept: list[Vulnerability] = []
    families: set[str] = set()
    seen_families: set[str] = set()
    newest: datetime | None = None
    ids: dict[str, str] = {}
    for label, raw in items:
        ticker.step()
        data: Any = single
        if single is None:
            if raw is None:
                continue
            try:
                data = decode_json(raw)
            except Invalid as exc:
                problems.add(exc.where, exc.reason, label)
                continue
        if not isinstance(data, dict):
            problems.add("", "an OSV record is a JSON object", label)
            continue
        try:
            outcome = parse_record(data)
        except Invalid as exc:
            problems.add(exc.where, exc.reason, label)
            continue
        newest = outcome.modified if newest is None else max(newest, outcome.modified)
        seen_families.update(outcome.families)
        skipped.update(outcome.skipped)
        if outcome.vulnerability is None:
            continue
        vid = outcome.vulnerability.id
        if vid in ids:
            problems.add("id", f"duplicate id {vid!r}: also in {ids[vid]}", label)
            continue
        ids[vid] = label
        families.update(outcome.families)
        kept.append(outcome.vulnerability)
    ticker.finish()
    problems.check()
    others = {reason.removeprefix("ecosystem:") for reason in skipped if reason.startswith("ecosystem:")}
    source = "osv:" + "+".join(sorted(families or seen_families or others))
    return ParsedFeed("osv", source, iso_z(newest) if newest else "", vulnerabilities=tuple(kept),
                      skipped=dict(sorted(skipped.items())))
