"""Operating-system end-of-life lookups over the dated table in ``rules/data/os_eol.yaml``.

``eol_status("debian", "12", date.today())`` says whether that release still gets security updates
from its standard channel, how many days are left, and what paid extension exists after it. The
agent reports os-release ``ID``/``VERSION_ID``; the collector calls this (the agent cannot import
rules). Pure: stdlib and pyyaml only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

DATA_FILE = Path(__file__).parent / "data" / "os_eol.yaml"
SOON_DAYS = 180
VERSION_KEYS = frozenset({"eol", "standard_end", "extended_end", "extended", "codename", "builds"})
PRODUCT_KEYS = frozenset({"name", "aliases", "versions"})

Status = Literal["supported", "eol_soon", "eol", "unknown"]


class EolDataError(ValueError):
    """The EOL table is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Release:
    """One row of the table."""

    product: str
    version: str
    eol: date
    standard_end: date | None = None
    extended_end: date | None = None
    extended: str | None = None
    codename: str | None = None
    builds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EolTable:
    """The loaded table: releases by product alias, and the date it was last checked."""

    as_of: date
    releases: dict[str, dict[str, Release]] = field(default_factory=dict)  # alias -> version key -> row


@dataclass(frozen=True, slots=True)
class EolStatus:
    """Where one OS release stands on a given day; days_left is negative once past the end."""

    product: str | None
    version: str | None
    eol_date: date | None
    status: Status
    days_left: int | None
    extended_end: date | None = None
    extended: str | None = None


def version_key(version: str) -> str:
    """Normalised lookup key: ``2012ServerR2``, ``2012 R2`` and ``2012r2`` are the same Windows release."""
    return re.sub(r"\s+|server", "", version.strip().lower())


def _fail(path: Path, where: str, problem: str) -> EolDataError:
    return EolDataError(f"{path}: {where}: {problem}")


def _date(value: object, path: Path, where: str, *, required: bool = False) -> date | None:
    """A YAML date (unquoted ``2024-06-30``); anything else is an error."""
    if value is None and not required:
        return None
    if isinstance(value, date):
        return value
    raise _fail(path, where, f"expected a date like 2024-06-30, got {value!r}")


def _release(product: str, version: object, entry: object, path: Path) -> Release:
    """One validated version entry."""
    where = f"products.{product}.versions.{version}"
    if not isinstance(version, str):
        raise _fail(path, where, "version keys must be quoted strings (12.10 would read as 12.1)")
    if not isinstance(entry, dict):
        raise _fail(path, where, "expected a mapping with at least 'eol'")
    unknown = set(entry) - VERSION_KEYS
    if unknown:
        raise _fail(path, where, f"unknown keys {sorted(unknown)}")
    row = Release(product=product, version=version, eol=_date(entry.get("eol"), path, f"{where}.eol", required=True),
                  standard_end=_date(entry.get("standard_end"), path, f"{where}.standard_end"),
                  extended_end=_date(entry.get("extended_end"), path, f"{where}.extended_end"),
                  extended=entry.get("extended"), codename=entry.get("codename"),
                  builds=tuple(entry.get("builds") or ()))
    if (row.standard_end and row.standard_end > row.eol) or (row.extended_end and row.extended_end < row.eol):
        raise _fail(path, where, "dates out of order: need standard_end <= eol <= extended_end")
    return row


def _product(product: str, spec: object, path: Path) -> tuple[list[str], dict[str, Release]]:
    """Aliases and version rows of one product."""
    where = f"products.{product}"
    if not isinstance(spec, dict) or set(spec) - PRODUCT_KEYS or not isinstance(spec.get("versions"), dict):
        raise _fail(path, where, f"expected keys {sorted(PRODUCT_KEYS)} with a 'versions' mapping")
    aliases = spec.get("aliases") or [product]
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise _fail(path, f"{where}.aliases", "expected a list of strings")
    name = str(spec.get("name") or product)
    rows: dict[str, Release] = {}
    for version, entry in spec["versions"].items():
        row = _release(product, version, entry, path)
        rows[version_key(version)] = replace(row, product=name)
    return [a.lower() for a in aliases], rows


def load_table(path: Path = DATA_FILE) -> EolTable:
    """Parse and validate the table; EolDataError names the file and the bad entry."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EolDataError(f"{path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("products"), dict):
        raise _fail(path, "top level", "expected 'as_of' and a 'products' mapping")
    as_of = _date(raw.get("as_of"), path, "as_of", required=True)
    releases: dict[str, dict[str, Release]] = {}
    for product, spec in raw["products"].items():
        aliases, rows = _product(str(product), spec, path)
        for alias in aliases:
            if alias in releases:
                raise _fail(path, f"products.{product}.aliases", f"alias {alias!r} is used twice")
            releases[alias] = rows
    return EolTable(as_of=as_of, releases=releases)


@lru_cache(maxsize=4)
def default_table(path: Path = DATA_FILE) -> EolTable:
    """The shipped table, loaded once."""
    return load_table(path)


def find_release(rows: dict[str, Release], version_id: str, *, by_build: bool) -> Release | None:
    """Exact version, then shorter dotted prefixes (``9.4`` -> ``9``), then codename or build."""
    key = version_key(version_id)
    while key:
        if key in rows:
            return rows[key]
        key = key.rpartition(".")[0]
    for row in rows.values():
        if row.codename == version_id.strip().lower() or (by_build and version_id.strip() in row.builds):
            return row
    return None


def eol_status(os_id: str, version_id: str, on: date, *, soon_days: int = SOON_DAYS,
               table: EolTable | None = None) -> EolStatus:
    """Where ``os_id``/``version_id`` (os-release ID and VERSION_ID) stands on day ``on``."""
    table = table or default_table()
    alias = (os_id or "").strip().lower()
    rows = table.releases.get(alias)
    # A bare build number identifies a server release only when the caller knows it is a server:
    # Windows 10/11 clients share builds 14393, 17763 and 26100 with Server 2016, 2019 and 2025.
    row = find_release(rows, version_id or "", by_build=alias == "windows_server") if rows else None
    if row is None:
        # "windows" also names Windows 10/11 clients, which this table does not cover: no product guess.
        product = next(iter(rows.values())).product if rows and alias != "windows" else None
        return EolStatus(product, version_id or None, None, "unknown", None)
    days_left = (row.eol - on).days
    status: Status = "eol" if days_left < 0 else "eol_soon" if days_left <= soon_days else "supported"
    return EolStatus(row.product, row.version, row.eol, status, days_left, row.extended_end, row.extended)


def eol_for_os(os_row: Mapping[str, object], on: date, *, soon_days: int = SOON_DAYS,
               table: EolTable | None = None) -> EolStatus:
    """EOL status from an inventory ``os`` row (``id``, ``version_id``, ``version``)."""
    os_id = str(os_row.get("id") or os_row.get("platform") or "")
    versions = [os_row.get("version_id"), os_row.get("version")]
    # Windows rows carry the build in version_id and the product ("2019Server") in version.
    if os_id.lower() == "windows":
        versions.reverse()
    first: EolStatus | None = None
    for version in versions:
        status = eol_status(os_id, str(version or ""), on, soon_days=soon_days, table=table)
        if status.status != "unknown":
            return status
        first = first or status
    return first or eol_status(os_id, "", on, soon_days=soon_days, table=table)
