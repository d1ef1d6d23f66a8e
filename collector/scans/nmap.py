"""Run nmap against one chunk of addresses and return typed, sanitised results.

The collector scans a unit's own ranges from the outside to see what an attacker on the network would
see: exposed services, old TLS, expired certificates, SSH that takes passwords. nmap does the network
work; python-nmap parses its XML. Three profiles are modelled on CISA Cyber Hygiene vulnerability
scanning: a light discovery sweep, a standard scan of the 1000 commonest ports with version detection
and a few safe NSE scripts, and a full all-ports scan with OS guessing.

Scanned hosts are hostile: every string that came off the network (titles, banners, certificate
subjects, product names) is stripped of control characters and clipped before it leaves this module.
Targets never pass through a shell and every address is validated with ``ipaddress`` first (nmap has
no ``--`` end-of-options marker, so an unvalidated "-iL/etc/shadow" would be read as an option).

A scan stops at its deadline (SIGTERM, then SIGKILL) with ScanInterrupted so the caller can resume the
chunk in the next window. Pure runner: no FastAPI, no SQLModel.
"""

from __future__ import annotations

import ipaddress
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from xml.etree import ElementTree

import nmap as python_nmap

from collector.scans.targets import TargetError

PROFILES = ("discovery", "standard", "full")
DEFAULT_PROFILE = "standard"
SCRIPTS = ("ssl-cert", "ssl-enum-ciphers", "http-title", "http-server-header", "ssh-auth-methods")
# ssh-auth-methods asks the server which methods a user may try; a recognisable name tells the target's
# administrators who knocked ("Invalid user khien-scanner") instead of the script's random 5-letter default.
SCRIPT_ARGS = "ssh.user=khien-scanner"
HOST_TIMEOUTS = {"discovery": "5m", "standard": "15m", "full": "60m"}
STATS_EVERY = "2s"
WEAK_TLS = frozenset({"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"})
CLIP = 255
TERM_GRACE_S = 5.0
INSTALL_HINT = "apt-get install nmap (Debian/Ubuntu) or dnf install nmap (RHEL family)"

_PORTS = re.compile(r"^(?:-|(?:[TU]:)?\d{1,5}(?:-\d{1,5})?(?:,(?:[TU]:)?\d{1,5}(?:-\d{1,5})?)*)$")
_TIMEOUT = re.compile(r"^\d+(?:ms|s|m|h)?$")
_TIMING = re.compile(r"^(?P<phase>.+?) Timing: About (?P<pct>\d+(?:\.\d+)?)% done")
_STATS = re.compile(r"^Stats: .*?(?P<done>\d+) hosts completed \((?P<up>\d+) up\), "
                    r"(?P<busy>\d+) undergoing (?P<phase>.+)$")
_PROTOCOL_LINE = re.compile(r"^\s*(SSLv2|SSLv3|TLSv1\.[0-3]):\s*$", re.MULTILINE)
_NOT_AFTER = re.compile(r"^Not valid after:\s*(\S+)", re.MULTILINE)
_SUBJECT = re.compile(r"^Subject:\s*(.*)$", re.MULTILINE)


class ScanError(RuntimeError):
    """nmap failed, was killed, or produced output that cannot be read."""


class NmapMissing(ScanError):
    """The nmap binary is not installed (or not where we were told)."""


class ScanInterrupted(ScanError):
    """The scan hit its deadline and was stopped; resume the same chunk in the next window."""


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """What ssl-cert and ssl-enum-ciphers saw; ``expired`` is judged at the scan's finish time."""

    not_after: datetime | None
    expired: bool | None
    subject: str | None
    protocols: tuple[str, ...]
    weak_protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PortResult:
    proto: str
    port: int
    state: str
    service: str | None
    product: str | None
    version: str | None
    extrainfo: str | None
    tls: TlsInfo | None
    http_title: str | None
    http_server: str | None
    ssh_auth_methods: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class HostResult:
    """One host. ``timed_out``: nmap hit --host-timeout and dropped the host's port results, so an empty
    ``ports`` then means "unknown", not "nothing open" -- never close findings on such a host."""

    address: str
    state: str
    hostnames: tuple[str, ...]
    os_guess: str | None
    ports: tuple[PortResult, ...]
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class ScanOutput:
    command: tuple[str, ...]
    started: datetime
    finished: datetime
    hosts: tuple[HostResult, ...]
    nmap_version: str | None
    elapsed_s: float


# --- command -------------------------------------------------------------------------------------------


def _validated(addresses: Sequence[str]) -> tuple[list[str], int]:
    """Canonical address strings and their single IP version; TargetError names the bad item."""
    if not addresses:
        raise TargetError("no addresses to scan")
    parsed = []
    for item in addresses:
        try:
            parsed.append(ipaddress.ip_address(item.strip()))
        except ValueError:
            raise TargetError(f"{item!r} is not a single IP address (chunks hold addresses, not names or CIDR)"
                              ) from None
    versions = {a.version for a in parsed}
    if len(versions) > 1:
        raise TargetError("a chunk mixes IPv4 and IPv6 addresses; nmap scans one family per run")
    if any(a.version == 6 and a.scope_id for a in parsed):  # type: ignore[union-attr]
        raise TargetError("zoned IPv6 addresses (%...) are not supported")
    return [str(a) for a in parsed], versions.pop()


def _port_args(profile: str, ports: str | None, privileged: bool) -> list[str]:
    if ports is None:
        return {"discovery": ["--top-ports", "100"], "standard": ["--top-ports", "1000"], "full": ["-p-"]}[profile]
    ports = ports.replace(" ", "")
    if not _PORTS.match(ports) or any(int(n) > 65535 for n in re.findall(r"\d+", ports)):
        raise ValueError(f"bad port list {ports!r}: use nmap syntax like 22,80,443,8000-8100 or T:22,U:161")
    if "U:" in ports and not privileged:
        raise ValueError("UDP ports (U:...) need a root scan (-sU)")
    return ["-p", ports]


def nmap_command(addresses: Sequence[str], *, profile: str = DEFAULT_PROFILE, nmap: str = "nmap",
                 extra_scripts: bool = True, ports: str | None = None, output: str = "-",
                 privileged: bool | None = None, host_timeout: str | None = None) -> list[str]:
    """The argv for one chunk. ``ports`` (nmap -p syntax) overrides the profile's port selection.

    ``privileged`` defaults to "running as root": root gets a SYN scan (-sS, and -O for the full profile);
    anyone else a connect scan (-sT). ``extra_scripts`` switches all NSE scripts off when False.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown scan profile {profile!r}: choose one of {', '.join(PROFILES)}")
    privileged = os.geteuid() == 0 if privileged is None else privileged
    host_timeout = host_timeout or HOST_TIMEOUTS[profile]
    if not _TIMEOUT.match(host_timeout):
        raise ValueError(f"bad host timeout {host_timeout!r}: use nmap time syntax like 90s or 15m")
    targets, version = _validated(addresses)
    # No --noninteractive: in nmap 7.93 it also silences --stats-every. stdin is /dev/null instead.
    cmd = [nmap, "-n", "-sS" if privileged else "-sT"]
    port_args = _port_args(profile, ports, privileged)
    if "U:" in "".join(port_args):
        cmd.append("-sU")
    if version == 6:
        cmd.append("-6")
    cmd += port_args
    if profile != "discovery":
        cmd.append("-sV")
        if extra_scripts:
            cmd += ["--script", ",".join(SCRIPTS), "--script-args", SCRIPT_ARGS]
    if profile == "full" and privileged:
        cmd += ["-O", "--osscan-limit"]
    cmd += ["--host-timeout", host_timeout, "--stats-every", STATS_EVERY, "-oX", output]
    return cmd + targets


# --- process -------------------------------------------------------------------------------------------


def _find_nmap(nmap: str | None) -> str:
    name = nmap or "nmap"
    found = (name if os.path.isfile(name) and os.access(name, os.X_OK) else None) if "/" in name else shutil.which(name)
    if found is None:
        raise NmapMissing(f"nmap is not installed ({name} not found): {INSTALL_HINT}")
    return found


class _Progress:
    """Turns nmap's per-phase "About N% done" lines into one rising 0..1 figure.

    nmap restarts its percentage in every phase (and every host group), so each phase gets a slice of the
    range and the figure never goes down. With several host groups in a chunk it is an estimate, floored
    by the share of hosts completed.
    """

    SLICES: ClassVar[dict[str, dict[str, tuple[float, float]]]] = {
        "discovery": {"ping": (0.0, 0.2), "ports": (0.2, 1.0)},
        "standard": {"ping": (0.0, 0.05), "ports": (0.05, 0.35), "service": (0.35, 0.7), "nse": (0.7, 1.0)},
        "full": {"ping": (0.0, 0.02), "ports": (0.02, 0.5), "service": (0.5, 0.75), "os": (0.75, 0.8),
                 "nse": (0.8, 1.0)},
    }

    def __init__(self, profile: str, total_hosts: int) -> None:
        self.slices = self.SLICES[profile]
        self.total = max(total_hosts, 1)
        self.value = 0.0

    @staticmethod
    def _phase(text: str) -> str | None:
        low = text.lower()
        for key, words in (("ping", ("ping",)), ("service", ("service",)), ("nse", ("nse", "script")),
                           ("os", ("os detection",)), ("ports", ("syn", "connect", "udp", "port"))):
            if any(w in low for w in words):
                return key
        return None

    def feed(self, line: str) -> float | None:
        """The new figure when ``line`` moves it forward, else None."""
        candidate = None
        if m := _STATS.match(line):
            candidate = int(m["done"]) / self.total
            span = self.slices.get(self._phase(m["phase"]) or "")
            candidate = max(candidate, span[0]) if span else candidate
        elif m := _TIMING.match(line):
            span = self.slices.get(self._phase(m["phase"]) or "")
            if span:
                candidate = span[0] + (span[1] - span[0]) * min(float(m["pct"]), 100.0) / 100.0
        if candidate is None or candidate <= self.value:
            return None
        self.value = round(min(candidate, 0.99), 4)  # 1.0 is reserved for "finished and parsed"
        return self.value


def _pump(stream: Any, sink: Callable[[str], None]) -> None:
    for line in stream:
        sink(line.rstrip("\n"))
    stream.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after the grace period; always reaps the process."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _execute(cmd: list[str], *, progress: _Progress, on_progress: Callable[[float], None] | None,
             deadline: float | None, on_start: Callable[[int], None] | None) -> tuple[int, list[str]]:
    """Run nmap to completion; returns (exit code, last stderr lines). Callbacks run in this thread."""
    # Progress values and the exit (None) arrive on one queue, so the loop wakes the moment nmap
    # exits (Popen.wait(timeout) polls, adding up to 50 ms to every scan) and still sees the deadline.
    updates: queue.SimpleQueue[float | None] = queue.SimpleQueue()
    err_tail: deque[str] = deque(maxlen=20)

    def on_stdout(line: str) -> None:
        value = progress.feed(line)
        if value is not None:
            updates.put(value)

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", start_new_session=True)
    helpers = [threading.Thread(target=_pump, args=(proc.stdout, on_stdout), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, err_tail.append), daemon=True),
               threading.Thread(target=lambda: (proc.wait(), updates.put(None)), daemon=True)]
    try:
        for helper in helpers:
            helper.start()
        if on_start is not None:
            on_start(proc.pid)
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                value = updates.get(timeout=timeout)
            except queue.Empty:
                _stop(proc)
                raise ScanInterrupted(f"scan stopped at its deadline (nmap pid {proc.pid}); resume this chunk later") \
                    from None
            if value is None:
                break
            if on_progress is not None:
                on_progress(value)
    finally:
        _stop(proc)
        for helper in helpers:
            helper.join(2)
    while not updates.empty():  # progress lines read after the exit was seen
        value = updates.get()
        if value is not None and on_progress is not None:
            on_progress(value)
    return proc.returncode, list(err_tail)


def _check_exit(code: int, err_tail: list[str]) -> None:
    tail = "; ".join(clean(line) or "" for line in err_tail[-5:] if line.strip()) or "(no stderr)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        raise ScanError(f"nmap was killed by {name}: {tail}")
    if code > 0:
        raise ScanError(f"nmap exited with status {code}: {tail}")


def run_nmap(addresses: Sequence[str], *, profile: str = DEFAULT_PROFILE,
             on_progress: Callable[[float], None] | None = None, deadline: float | None = None,
             nmap: str | None = None, ports: str | None = None, on_start: Callable[[int], None] | None = None,
             host_timeout: str | None = None, extra_scripts: bool = True,
             privileged: bool | None = None) -> ScanOutput:
    """Scan one chunk (one address family) and return its parsed results.

    ``deadline`` is a ``time.monotonic()`` value; at it nmap is stopped and ScanInterrupted raised (also
    when it has already passed, without starting nmap). ``on_progress`` gets rising fractions in 0..1,
    ending with 1.0; ``on_start`` gets nmap's pid. Both run in the calling thread. ``privileged=False``
    forces a connect scan even as root.
    """
    binary = _find_nmap(nmap)
    if deadline is not None and time.monotonic() >= deadline:
        raise ScanInterrupted("the scan window had already closed; nothing was started")
    with tempfile.TemporaryDirectory(prefix="khien-nmap-") as tmp:
        xml_path = Path(tmp) / "scan.xml"
        cmd = nmap_command(addresses, profile=profile, nmap=binary, ports=ports, output=str(xml_path),
                           host_timeout=host_timeout, extra_scripts=extra_scripts, privileged=privileged)
        started, t0 = datetime.now(UTC), time.monotonic()
        code, err_tail = _execute(cmd, progress=_Progress(profile, len(addresses)), on_progress=on_progress,
                                  deadline=deadline, on_start=on_start)
        _check_exit(code, err_tail)
        finished, elapsed = datetime.now(UTC), time.monotonic() - t0
        try:
            xml = xml_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ScanError(f"nmap wrote no XML output: {exc}") from None
    hosts, version = _parse(xml, binary, now=finished)
    if on_progress is not None:
        on_progress(1.0)
    return ScanOutput(command=tuple(cmd), started=started, finished=finished, hosts=hosts, nmap_version=version,
                      elapsed_s=round(elapsed, 3))


# --- parsing -------------------------------------------------------------------------------------------


def clean(value: object, limit: int = CLIP) -> str | None:
    """Network text made safe to store and show: control/format characters removed, trimmed, clipped."""
    if value is None:
        return None
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(value))
    text = " ".join(text.split())[:limit].strip()
    return text or None


def _parse(xml: str, binary: str, *, now: datetime) -> tuple[tuple[HostResult, ...], str | None]:
    try:
        # PortScanner() runs `nmap -V` once to learn the version; that is the only use of the binary here.
        scanner = python_nmap.PortScanner(nmap_search_path=(binary,))
        result = scanner.analyse_nmap_xml_scan(nmap_xml_output=xml)
    except (python_nmap.PortScannerError, AttributeError, SyntaxError) as exc:  # ParseError is a SyntaxError
        raise ScanError(f"could not read nmap's XML output: {clean(exc)}") from None
    major, minor = scanner.nmap_version()
    version = f"{major}.{minor}" if (major, minor) != (0, 0) else None
    timed_out = _timed_out(xml)
    hosts = tuple(_host(address, data, now, timed_out=address in timed_out)
                  for address, data in sorted(result.get("scan", {}).items()))
    return hosts, version


def _timed_out(xml: str) -> set[str]:
    """Addresses of hosts nmap gave up on (``<host timedout="true">``).

    Hand-parsed because python-nmap drops the attribute. The XML is nmap's own file in our private temp
    directory (nmap escapes what it read off the network), the same string python-nmap just parsed.
    """
    root = ElementTree.fromstring(xml)  # noqa: S314
    found = set()
    for host in root.iter("host"):
        if host.get("timedout") == "true":
            addresses = {a.get("addrtype"): a.get("addr") for a in host.iter("address")}
            # python-nmap keys a host by its IPv4 address, else by its first address: match that.
            first = next(iter(addresses.values()), None)
            found.add(addresses.get("ipv4") or first or "")
    return found


def _host(address: str, data: dict[str, Any], now: datetime, *, timed_out: bool) -> HostResult:
    names = tuple(n for n in (clean(h.get("name")) for h in data.get("hostnames", [])) if n)
    osmatch = data.get("osmatch") or []
    os_guess = clean(f"{osmatch[0].get('name')} ({osmatch[0].get('accuracy')}%)") if osmatch else None
    ports = [_port(proto, int(port), info, now)
             for proto in ("tcp", "udp", "sctp") for port, info in sorted(data.get(proto, {}).items())]
    return HostResult(address=address, state=(data.get("status") or {}).get("state") or "unknown",
                      hostnames=names, os_guess=os_guess, ports=tuple(ports), timed_out=timed_out)


def _port(proto: str, port: int, info: dict[str, Any], now: datetime) -> PortResult:
    # python-nmap keeps each script's text output but drops the structured <elem>/<table> children and the
    # <service tunnel="ssl"> attribute, so TLS and SSH facts are read from the script text below.
    scripts: dict[str, str] = info.get("script") or {}
    title = clean(scripts.get("http-title"))
    if title and title.startswith("Site doesn't have a title"):
        title = None
    return PortResult(proto=proto, port=port, state=str(info.get("state") or "unknown"),
                      service=clean(info.get("name")), product=clean(info.get("product")),
                      version=clean(info.get("version")), extrainfo=clean(info.get("extrainfo")),
                      tls=tls_info(scripts.get("ssl-cert"), scripts.get("ssl-enum-ciphers"), now=now),
                      http_title=title, http_server=clean(scripts.get("http-server-header")),
                      ssh_auth_methods=ssh_methods(scripts.get("ssh-auth-methods")))


def _not_after(text: str) -> datetime | None:
    m = _NOT_AFTER.search(text)
    if not m:
        return None
    try:
        value = datetime.fromisoformat(m[1])
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # certificate times are UTC


def tls_info(cert_out: str | None, ciphers_out: str | None, *, now: datetime) -> TlsInfo | None:
    """TLS facts from ssl-cert and ssl-enum-ciphers output; None when neither script ran on the port."""
    if cert_out is None and ciphers_out is None:
        return None
    not_after = _not_after(cert_out or "")
    subject = _SUBJECT.search(cert_out or "")
    protocols = _ordered(_PROTOCOL_LINE.findall(ciphers_out or ""))
    return TlsInfo(not_after=not_after, expired=None if not_after is None else not_after < now,
                   subject=clean(subject[1]) if subject else None, protocols=protocols,
                   weak_protocols=tuple(p for p in protocols if p in WEAK_TLS))


def _ordered(protocols: Iterable[str]) -> tuple[str, ...]:
    rank = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    return tuple(sorted(set(protocols), key=rank.index))


def ssh_methods(output: str | None) -> tuple[str, ...] | None:
    """Methods listed under "Supported authentication methods:" in ssh-auth-methods output."""
    if output is None:
        return None
    methods: list[str] = []
    header_indent: int | None = None
    for line in output.splitlines():
        indent = len(line) - len(line.lstrip())
        if header_indent is None:
            if line.strip().lower().startswith("supported authentication methods"):
                header_indent = indent
            continue
        if not line.strip() or indent <= header_indent:
            break
        if method := clean(line, 64):
            methods.append(method)
    return tuple(methods)
