"""Time synchronisation: which daemon, whether the clock is synchronised, the offset, the servers.

chrony (``chronyc -n tracking``), systemd-timesyncd (``timedatectl show`` and ``timedatectl
timesync-status``) and ntpd (``ntpq -pn``) are asked in that order; the first that answers wins.
Configured servers come from chrony.conf(.d), timesyncd.conf(.d) and ntp.conf.

Keys of the result:
  available: bool; daemon: "chrony" | "systemd-timesyncd" | "ntpd" | None
  synchronized: bool | None; ntp_enabled: bool | None (timedatectl NTP=); offset_s: float | None
  source: str | None (reference server); servers: [configured servers]; errors: [str]
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import Run, clip, failure, glob_under, key_values, read_text, runner_for, yes

CONFIGS = {
    "chrony": ("/etc/chrony/chrony.conf", "/etc/chrony.conf", "/etc/chrony/conf.d/*.conf",
               "/etc/chrony/sources.d/*.sources"),
    "ntpd": ("/etc/ntp.conf", "/etc/ntpsec/ntp.conf"),
}


def collect_timesync(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Time sync state (see the module docstring for the keys)."""
    runner = runner_for(root, run)
    out: dict = {"daemon": None, "synchronized": None, "ntp_enabled": None, "offset_s": None, "source": None}
    errors: list[str] = []
    show = runner(["timedatectl", "show"])
    if show.ok:
        props = key_values(show.stdout, sep="=")
        out["ntp_enabled"], out["synchronized"] = yes(props.get("NTP")), yes(props.get("NTPSynchronized"))
    tracking = runner(["chronyc", "-n", "tracking"])
    if tracking.ok and "Reference ID" in tracking.stdout:
        out.update(parse_chrony(tracking.stdout), daemon="chrony")
    else:
        ntpq = runner(["ntpq", "-pn"])
        if ntpq.ok and ntpq.stdout.strip():
            out.update(parse_ntpq(ntpq.stdout), daemon="ntpd")
        elif show.ok and out["ntp_enabled"]:
            out["daemon"] = "systemd-timesyncd"
            status = runner(["timedatectl", "timesync-status"])
            if status.ok:
                out.update(parse_timesync_status(status.stdout))
    if not show.ok and not show.missing:
        errors.append(failure("timedatectl show", show))
    out["servers"] = configured_servers(root)
    out["available"] = out["daemon"] is not None or show.ok
    out["errors"] = errors
    if not out["available"]:
        out["error"] = "no time sync daemon answered (chronyc, ntpq, timedatectl)"
    return out


def parse_chrony(text: str) -> dict:
    """``chronyc tracking``: leap status Normal means synchronised; System time gives the offset."""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}
    offset = None
    found = re.match(r"([\d.]+) seconds (slow|fast)", fields.get("System time", ""))
    if found:
        offset = float(found.group(1)) * (-1 if found.group(2) == "slow" else 1)
    ref = fields.get("Reference ID", "")
    source = re.search(r"\(([^)]*)\)", ref)
    leap = fields.get("Leap status")
    return {"synchronized": leap == "Normal" and not ref.startswith("00000000"), "offset_s": offset,
            "source": clip(source.group(1) if source else ref or None, 256)}


def parse_ntpq(text: str) -> dict:
    """``ntpq -pn``: the peer marked ``*`` is the sync source; its offset column is in ms."""
    for line in text.splitlines():
        if line.startswith("*"):
            parts = line[1:].split()
            try:
                offset = float(parts[8]) / 1000 if len(parts) > 8 else None
            except ValueError:
                offset = None
            return {"synchronized": True, "offset_s": offset, "source": clip(parts[0], 256)}
    return {"synchronized": False}


def parse_timesync_status(text: str) -> dict:
    """``timedatectl timesync-status``: Server and Offset (e.g. ``+1.234ms``)."""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}
    offset = None
    found = re.match(r"([+-]?[\d.]+)(us|µs|ms|s|min)\b", fields.get("Offset", ""))
    if found:
        offset = float(found.group(1)) * {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}[found.group(2)]
    server = fields.get("Server")
    return {"offset_s": offset, "source": clip(server, 256) if server else None}


def configured_servers(root: Path) -> list[str]:
    """server/pool lines of chrony and ntpd, NTP= of timesyncd."""
    servers: list[str] = []
    paths = [p for pattern in (*CONFIGS["chrony"], *CONFIGS["ntpd"]) for p in glob_under(root, pattern)]
    for path in paths:
        for line in (read_text(root, path) or "").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("server", "pool", "peer"):
                servers.append(parts[1])
    for path in ["/etc/systemd/timesyncd.conf", *glob_under(root, "/etc/systemd/timesyncd.conf.d/*.conf")]:
        servers += key_values(read_text(root, path) or "", sep="=").get("NTP", "").split()
    unique = list(dict.fromkeys(clip(s, 256) for s in servers if s))
    return unique[:100]
