"""Turn what a network scan saw on one host into finding observations.

The scanner reports facts (port 3389 open, TLS 1.0 offered, SSH takes passwords); this module decides
which of them are findings and of which class, using the risky-service table in
``rules/data/scans/exposure.yaml``. It also cross-checks the scan against the host agent's own list of
listening sockets: a port open from the network that the agent cannot see points at something in front
of or hidden on the host, and a service listening on every interface that the unit never allowed is
exposure waiting to happen.

Pure: takes plain dataclasses (the collector converts its scan results), stdlib and pyyaml only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "scans" / "exposure.yaml"
FINDING_CLASSES = frozenset({"critical_misconfig", "failed_check"})
CHECK_RULES = ("tls-weak-protocol", "tls-expired-certificate", "ssh-password-auth", "port-open-not-listening",
               "port-listening-not-allowed")
SERVICE_KEYS = frozenset({"id", "title_en", "title_vi", "names", "products", "ports", "finding_class",
                          "remediation_en", "remediation_vi"})
CHECK_KEYS = frozenset({"finding_class", "title_en", "title_vi", "remediation_en", "remediation_vi"})
UNNAMED = frozenset({"", "unknown", "tcpwrapped"})  # nmap could not tell what answers: fall back to the port
WILDCARD = frozenset({"0.0.0.0", "::", "*", "[::]", "::ffff:0.0.0.0"})  # noqa: S104 - matched, not bound
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PORT = re.compile(r"^(tcp|udp)/(\d{1,5})$")


class ExposureDataError(ValueError):
    """exposure.yaml is malformed; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class RiskyService:
    """One service that should not face the network. ``products`` match nmap's product (case-insensitive)."""

    id: str
    names: tuple[str, ...]
    ports: tuple[tuple[str, int], ...]
    finding_class: str
    title_vi: str
    title_en: str
    remediation_vi: str
    remediation_en: str
    products: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckText:
    """Class and wording of a finding that is not about one service (TLS, SSH, reconciliation)."""

    rule: str
    finding_class: str
    title_vi: str
    title_en: str
    remediation_vi: str
    remediation_en: str


@dataclass(frozen=True, slots=True)
class ScannedPort:
    """One port as the scan saw it. ``tls_not_after``, when given, is judged against ``now``."""

    proto: str
    port: int
    state: str
    service: str | None = None
    tls_weak: tuple[str, ...] = ()
    tls_expired: bool | None = None
    ssh_password: bool | None = None
    http_title: str | None = None
    http_server: str | None = None
    product: str | None = None
    version: str | None = None
    tls_not_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScannedHost:
    address: str
    ports: tuple[ScannedPort, ...] = ()


@dataclass(frozen=True, slots=True)
class Observation:
    """One finding candidate on one host; the collector turns it into (or matches it to) a finding."""

    rule: str
    location: str
    finding_class: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)


# --- loading -------------------------------------------------------------------------------------------


def _fail(path: Path, where: str, problem: str) -> ExposureDataError:
    return ExposureDataError(f"{path}: {where}: {problem}")


def _text(entry: Mapping[str, Any], key: str, path: Path, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"{where}.{key}", "expected a non-empty string")
    return " ".join(value.split())


def _strings(entry: Mapping[str, Any], key: str, path: Path, where: str, *, required: bool) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, f"{where}.{key}", "expected a non-empty list of strings")
    return tuple(v.strip() for v in value)


def _ports(entry: Mapping[str, Any], path: Path, where: str) -> tuple[tuple[str, int], ...]:
    ports = []
    for item in _strings(entry, "ports", path, where, required=True):
        m = _PORT.match(item)
        if not m or not 0 < int(m[2]) < 65536:
            raise _fail(path, f"{where}.ports", f"{item!r} is not proto/port like tcp/3389 or udp/161")
        ports.append((m[1], int(m[2])))
    return tuple(ports)


def _class(entry: Mapping[str, Any], path: Path, where: str) -> str:
    value = entry.get("finding_class")
    if value not in FINDING_CLASSES:
        raise _fail(path, f"{where}.finding_class", f"{value!r} is not one of {sorted(FINDING_CLASSES)}")
    return str(value)


def _service(index: int, entry: object, path: Path) -> RiskyService:
    where = f"services[{index}]"
    if not isinstance(entry, dict):
        raise _fail(path, where, "expected a mapping")
    if not isinstance(entry.get("id"), str) or not _ID.match(entry["id"]):
        raise _fail(path, f"{where}.id", f"{entry.get('id')!r} must be lower-case letters, digits and dashes")
    where = f"services.{entry['id']}"
    if unknown := set(entry) - SERVICE_KEYS:
        raise _fail(path, where, f"unknown keys {sorted(unknown)}")
    return RiskyService(
        id=entry["id"], names=tuple(n.lower() for n in _strings(entry, "names", path, where, required=True)),
        ports=_ports(entry, path, where), finding_class=_class(entry, path, where),
        title_vi=_text(entry, "title_vi", path, where), title_en=_text(entry, "title_en", path, where),
        remediation_vi=_text(entry, "remediation_vi", path, where),
        remediation_en=_text(entry, "remediation_en", path, where),
        products=_strings(entry, "products", path, where, required=False))


def _check(rule: str, entry: object, path: Path) -> CheckText:
    where = f"checks.{rule}"
    if not isinstance(entry, dict):
        raise _fail(path, where, "expected a mapping")
    if unknown := set(entry) - CHECK_KEYS:
        raise _fail(path, where, f"unknown keys {sorted(unknown)}")
    return CheckText(rule=rule, finding_class=_class(entry, path, where),
                     title_vi=_text(entry, "title_vi", path, where), title_en=_text(entry, "title_en", path, where),
                     remediation_vi=_text(entry, "remediation_vi", path, where),
                     remediation_en=_text(entry, "remediation_en", path, where))


def _read(path: Path) -> dict[str, Any]:
    try:
        # libyaml's loader when present: the pure-Python one takes ~0.1 s for this file.
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise ExposureDataError(f"{path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), list) or not isinstance(
            raw.get("checks"), dict):
        raise _fail(path, "top level", "expected a 'services' list and a 'checks' mapping")
    if unknown := set(raw) - {"services", "checks"}:
        raise _fail(path, "top level", f"unknown keys {sorted(unknown)}")
    return raw


def load_exposure(path: Path | None = None) -> tuple[RiskyService, ...]:
    """The risky-service table, validated; ExposureDataError names the file and the key."""
    path = path or DATA_FILE
    services = tuple(_service(i, entry, path) for i, entry in enumerate(_read(path)["services"]))
    seen: set[str] = set()
    for svc in services:
        if svc.id in seen:
            raise _fail(path, f"services.{svc.id}.id", "id is used twice")
        seen.add(svc.id)
    load_checks(path)  # one file, one verdict: a broken checks section fails the table too
    return services


def load_checks(path: Path | None = None) -> dict[str, CheckText]:
    """Wording and class of the TLS, SSH and reconciliation findings, validated."""
    path = path or DATA_FILE
    raw = _read(path)["checks"]
    if missing := [rule for rule in CHECK_RULES if rule not in raw]:
        raise _fail(path, "checks", f"missing {missing}")
    if unknown := sorted(set(raw) - set(CHECK_RULES)):
        raise _fail(path, "checks", f"unknown checks {unknown}")
    return {rule: _check(rule, raw[rule], path) for rule in CHECK_RULES}


@lru_cache(maxsize=1)
def default_exposure() -> tuple[RiskyService, ...]:
    return load_exposure()


@lru_cache(maxsize=1)
def _default_checks() -> dict[str, CheckText]:
    return load_checks()


# --- one host ------------------------------------------------------------------------------------------


def match_service(port: ScannedPort, risky: Iterable[RiskyService]) -> RiskyService | None:
    """The risky service this port is, by nmap name, then product, then (when nmap had no name) port."""
    name = (port.service or "").strip().lower()
    product = (port.product or "").lower()
    candidates = list(risky)
    for svc in candidates:
        if name and name in svc.names:
            return svc
    for svc in candidates:
        if product and any(p.lower() in product for p in svc.products):
            return svc
    if name in UNNAMED:
        for svc in candidates:
            if (port.proto, port.port) in svc.ports:
                return svc
    return None


def _location(port: ScannedPort) -> str:
    return f"{port.proto}/{port.port}"


def _service_evidence(port: ScannedPort) -> dict[str, Any]:
    evidence = {"service": port.service, "product": port.product, "version": port.version,
                "http_title": port.http_title, "http_server": port.http_server}
    return {k: v for k, v in evidence.items() if v is not None}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # naive times are UTC here


def _expired(port: ScannedPort, now: datetime) -> bool | None:
    if port.tls_not_after is None:
        return port.tls_expired
    return _aware(port.tls_not_after) < now


def _observe(check: CheckText, port: ScannedPort, evidence: dict[str, Any]) -> Observation:
    return Observation(rule=check.rule, location=_location(port), finding_class=check.finding_class,
                       title=check.title_en, evidence=evidence)


def _port_observations(port: ScannedPort, risky: tuple[RiskyService, ...], now: datetime,
                       checks: Mapping[str, CheckText]) -> list[Observation]:
    found: list[Observation] = []
    if svc := match_service(port, risky):
        found.append(Observation(rule=f"exposed-service:{svc.id}", location=_location(port),
                                 finding_class=svc.finding_class, title=svc.title_en,
                                 evidence=_service_evidence(port)))
    if port.tls_weak:
        found.append(_observe(checks["tls-weak-protocol"], port,
                              {"protocols": list(port.tls_weak), **_service_evidence(port)}))
    if _expired(port, now):
        evidence: dict[str, Any] = dict(_service_evidence(port))
        if port.tls_not_after is not None:
            evidence["not_after"] = _aware(port.tls_not_after).isoformat()
            evidence["days_expired"] = (now - _aware(port.tls_not_after)).days
        found.append(_observe(checks["tls-expired-certificate"], port, evidence))
    if port.ssh_password:
        found.append(_observe(checks["ssh-password-auth"], port, _service_evidence(port)))
    return found


def assess_host(host: ScannedHost, *, risky: tuple[RiskyService, ...], now: datetime,
                checks: Mapping[str, CheckText] | None = None) -> list[Observation]:
    """Observations for the open ports of one scanned host, in port order."""
    checks = checks or _default_checks()
    now = _aware(now)
    found: list[Observation] = []
    for port in sorted(host.ports, key=lambda p: (p.proto, p.port)):
        if port.state == "open":
            found += _port_observations(port, risky, now, checks)
    return found


# --- scan versus agent ---------------------------------------------------------------------------------


def _row_key(row: Mapping[str, Any]) -> tuple[str, int] | None:
    try:
        return str(row.get("proto") or "").lower(), int(row.get("port"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def reconcile_ports(*, scanned_open: set[tuple[str, int]], agent_listening: list[dict[str, Any]],
                    allowed: set[int] | None, checks: Mapping[str, CheckText] | None = None) -> list[Observation]:
    """Disagreements between the network's view and the agent's view of one host.

    ``scanned_open`` holds (proto, port) the scan found open; ``agent_listening`` the agent's
    listening_ports rows. Call it only with a fresh agent inventory: an empty list means "nothing
    listens", so every open port would be reported.
    """
    checks = checks or _default_checks()
    listening = {key for row in agent_listening if (key := _row_key(row))}
    found: list[Observation] = []
    missing = checks["port-open-not-listening"]
    for proto, port in sorted(scanned_open - listening):
        found.append(Observation(rule=missing.rule, location=f"{proto}/{port}", finding_class=missing.finding_class,
                                 title=missing.title_en, evidence={"proto": proto, "port": port}))
    if allowed is not None:
        found += _not_allowed(agent_listening, allowed, checks["port-listening-not-allowed"])
    return found


def _not_allowed(rows: list[dict[str, Any]], allowed: set[int], check: CheckText) -> list[Observation]:
    wide: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        key = _row_key(row)
        if key is None or key[1] in allowed or str(row.get("address") or "").strip() not in WILDCARD:
            continue
        entry = wide.setdefault(key, {"proto": key[0], "port": key[1], "addresses": [], "processes": []})
        for field_name, value in (("addresses", row.get("address")), ("processes", row.get("process"))):
            if value and value not in entry[field_name]:
                entry[field_name].append(value)
    return [Observation(rule=check.rule, location=f"{proto}/{port}", finding_class=check.finding_class,
                        title=check.title_en, evidence=evidence) for (proto, port), evidence in sorted(wide.items())]
