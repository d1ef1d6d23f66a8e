"""Log forwarding (rsyslog/syslog-ng remote targets) and retention (journald, logrotate).

Keys of the result (kind name "logging"):
  available: bool (always true: no forwarding is an answer)
  forwarding: bool (any remote target); remote_targets: [{daemon, host, port, protocol, file}]
  rsyslog: {installed: bool, files: [files read]}; syslog_ng: {installed: bool}
  journald: {storage: str ("auto" by default), persistent: bool | None, forward_to_syslog: bool | None,
    system_max_use, max_retention_sec, max_file_sec: str | None, compress: bool | None}
  logrotate: {installed: bool, period: "daily" | "weekly" | "monthly" | "yearly" | None, rotate: int | None,
    retention_days: int | None, compress: bool, syslog: {period, rotate, retention_days} | None}
  errors: [str]
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import Run, clip, exists, glob_under, key_values, read_file, read_text, to_int, yes

RSYSLOG_MAX_FILES = 100
LEGACY = re.compile(r"^[^#\s]\S*\s+(?:-\s*)?(@@?)(\(\S*\))?\[?([\w.:-]+?)\]?(?::(\d+))?(?:;\S+)?\s*$")
OMFWD = re.compile(r"action\s*\((?=[^)]*type\s*=\s*\"omfwd\")([^)]*)\)", re.IGNORECASE | re.DOTALL)
PARAM = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
SYSLOG_NG = re.compile(r"\b(network|tcp|udp|tcp6|udp6|syslog)\s*\(\s*\"?([\w.:-]+)\"?([^;]*)\)", re.IGNORECASE)
PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}


def collect_logging(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Forwarding and retention (see the module docstring for the keys)."""
    errors: list[str] = []
    targets, rsyslog_files = _rsyslog(root, errors)
    targets += _syslog_ng(root)
    return {"available": True, "forwarding": bool(targets), "remote_targets": targets[:100],
            "rsyslog": {"installed": bool(rsyslog_files) or exists(root, "/usr/sbin/rsyslogd"),
                        "files": rsyslog_files},
            "syslog_ng": {"installed": exists(root, "/etc/syslog-ng/syslog-ng.conf")},
            "journald": _journald(root), "logrotate": _logrotate(root), "errors": errors[:50]}


def _rsyslog(root: Path, errors: list[str]) -> tuple[list[dict], list[str]]:
    queue, seen, targets = ["/etc/rsyslog.conf"], [], []
    while queue and len(seen) < RSYSLOG_MAX_FILES:
        path = queue.pop(0)
        if path in seen:
            continue
        text, problem = read_file(root, path)
        if text is None:
            if problem != "missing":
                errors.append(clip(f"{path}: {problem}", 256))
            continue
        seen.append(path)
        for line in text.splitlines():
            stripped = line.strip()
            include = re.match(r'^\$IncludeConfig\s+(\S+)|^include\s*\(\s*file\s*=\s*"([^"]+)"', stripped)
            if include:
                queue += glob_under(root, include.group(1) or include.group(2))
                continue
            legacy = LEGACY.match(stripped)
            if legacy:
                targets.append({"daemon": "rsyslog", "host": clip(legacy.group(3), 256),
                                "port": to_int(legacy.group(4)) or 514,
                                "protocol": "tcp" if legacy.group(1) == "@@" else "udp", "file": path})
        for action in OMFWD.finditer(re.sub(r"#.*", "", text)):
            params = {k.lower(): v for k, v in PARAM.findall(action.group(1))}
            if params.get("target"):
                targets.append({"daemon": "rsyslog", "host": clip(params["target"], 256),
                                "port": to_int(params.get("port")) or 514,
                                "protocol": (params.get("protocol") or "udp").lower(), "file": path})
    return targets, seen


def _syslog_ng(root: Path) -> list[dict]:
    targets = []
    paths = ["/etc/syslog-ng/syslog-ng.conf", *glob_under(root, "/etc/syslog-ng/conf.d/*.conf")]
    for path in paths:
        text = re.sub(r"#.*", "", read_text(root, path) or "")
        for block in re.finditer(r"destination\s+\S+\s*\{(.*?)\};", text, re.DOTALL):
            for found in SYSLOG_NG.finditer(block.group(1)):
                port = re.search(r"port\s*\(\s*(\d+)", found.group(3))
                kind = found.group(1).lower()
                protocol = re.search(r"transport\s*\(\s*\"?(\w+)", found.group(3))
                targets.append({"daemon": "syslog-ng", "host": clip(found.group(2), 256),
                                "port": int(port.group(1)) if port else 514,
                                "protocol": (protocol.group(1) if protocol else kind.rstrip("6")).lower(),
                                "file": path})
    return targets


def _journald(root: Path) -> dict:
    settings: dict[str, str] = {}
    for path in ["/etc/systemd/journald.conf", *glob_under(root, "/etc/systemd/journald.conf.d/*.conf")]:
        settings.update(key_values(read_text(root, path) or "", sep="="))
    storage = (settings.get("Storage") or "auto").lower()
    persistent = {"persistent": True, "volatile": False, "none": False}.get(storage)
    if storage == "auto":
        persistent = under_dir(root, "/var/log/journal")
    return {"storage": clip(storage, 64), "persistent": persistent,
            "forward_to_syslog": yes(settings.get("ForwardToSyslog")),
            "system_max_use": clip(settings.get("SystemMaxUse"), 64),
            "max_retention_sec": clip(settings.get("MaxRetentionSec"), 64),
            "max_file_sec": clip(settings.get("MaxFileSec"), 64), "compress": yes(settings.get("Compress"))}


def under_dir(root: Path, path: str) -> bool:
    return (Path(root) / path.lstrip("/")).is_dir()


def _logrotate(root: Path) -> dict:
    text = read_text(root, "/etc/logrotate.conf")
    if text is None:
        return {"installed": False, "period": None, "rotate": None, "retention_days": None, "compress": False,
                "syslog": None}
    period, rotate, compress = _directives(re.sub(r"\{.*?\}", "", text, flags=re.DOTALL))
    syslog = None
    for name in ("rsyslog", "syslog", "syslog-ng"):
        block = read_text(root, f"/etc/logrotate.d/{name}")
        if block:
            p, r, _c = _directives(block)
            p, r = p or period, r if r is not None else rotate
            syslog = {"period": p, "rotate": r, "retention_days": _days(p, r)}
            break
    return {"installed": True, "period": period, "rotate": rotate, "retention_days": _days(period, rotate),
            "compress": compress, "syslog": syslog}


def _directives(text: str) -> tuple[str | None, int | None, bool]:
    period, rotate, compress = None, None, False
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] in PERIOD_DAYS:
            period = parts[0]
        elif parts[0] == "rotate" and len(parts) > 1:
            rotate = to_int(parts[1])
        elif parts[0] == "compress":
            compress = True
    return period, rotate, compress


def _days(period: str | None, rotate: int | None) -> int | None:
    if rotate is None:
        return None
    return PERIOD_DAYS.get(period or "weekly", 7) * max(rotate, 0)
