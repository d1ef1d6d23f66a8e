"""Linux audit: whether auditd runs, the kernel's audit state, loaded and configured rules.

Keys of the result:
  available: bool (auditctl answered, or the audit config exists); installed: bool
  enabled: int | None (0 off, 1 on, 2 immutable); immutable: bool | None; running: bool | None (pid > 0)
  failure, backlog_limit, lost, backlog: int | None (``auditctl -s``)
  rule_count: int | None (``auditctl -l``); configured_rule_count: int (rules.d/*.rules and audit.rules)
  watches: [paths watched with -w or path=/dir= filters] (first 200)
  config: {auditd.conf keys: max_log_file, num_logs, max_log_file_action, space_left_action,
    admin_space_left_action, disk_full_action, disk_error_action}; errors: [str]
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import (
    Run,
    clip,
    exists,
    failure,
    glob_under,
    key_values,
    read_text,
    runner_for,
    to_int,
)

CONF_KEYS = ("max_log_file", "num_logs", "max_log_file_action", "space_left_action", "admin_space_left_action",
             "disk_full_action", "disk_error_action", "log_file", "flush")
WATCH = re.compile(r"(?:^-w\s+(\S+)|\b(?:path|dir)=(\S+))")


def collect_auditd(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Audit state (see the module docstring for the keys)."""
    runner = runner_for(root, run)
    errors: list[str] = []
    out: dict = {"installed": False, "enabled": None, "immutable": None, "running": None, "failure": None,
                 "backlog_limit": None, "lost": None, "backlog": None, "rule_count": None}
    status = runner(["auditctl", "-s"])
    if status.ok:
        out.update(parse_status(status.stdout), installed=True)
        rules = runner(["auditctl", "-l"])
        if rules.ok:
            loaded = parse_rules(rules.stdout)
            out["rule_count"], out["watches"] = len(loaded), _watches(loaded)
        else:
            errors.append(failure("auditctl -l", rules))
    elif not status.missing:
        out["installed"] = True
        errors.append(failure("auditctl -s", status))
    configured = []
    for path in ["/etc/audit/audit.rules", *glob_under(root, "/etc/audit/rules.d/*.rules")]:
        configured += parse_rules(read_text(root, path) or "")
    out["configured_rule_count"] = len(configured)
    out.setdefault("watches", _watches(configured))
    conf = key_values(read_text(root, "/etc/audit/auditd.conf") or "", sep="=", lower=True)
    out["config"] = {k: (to_int(conf[k]) if to_int(conf[k]) is not None else clip(conf[k], 256))
                     for k in CONF_KEYS if k in conf}
    out["installed"] = out["installed"] or exists(root, "/etc/audit/auditd.conf") or exists(root, "/sbin/auditd")
    out["available"] = status.ok or out["installed"]
    out["errors"] = errors
    if not out["available"]:
        out["error"] = "auditd not installed"
    return out


def parse_status(text: str) -> dict:
    """``auditctl -s``: ``key value`` lines."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            values[parts[0]] = to_int(parts[1])
    enabled, pid = values.get("enabled"), values.get("pid")
    return {"enabled": enabled, "immutable": enabled == 2 if enabled is not None else None,
            "running": pid > 0 if pid is not None else None, "failure": values.get("failure"),
            "backlog_limit": values.get("backlog_limit"), "lost": values.get("lost"),
            "backlog": values.get("backlog")}


def parse_rules(text: str) -> list[str]:
    """Rule lines (``-a``, ``-w``; not control lines such as -D, -b, -e, -f), "No rules" is none."""
    return [line.strip() for line in text.splitlines()
            if line.strip().startswith(("-a", "-A", "-w", "-W"))]


def _watches(rules: list[str]) -> list[str]:
    found = []
    for rule in rules:
        match = WATCH.search(rule)
        if match and len(found) < 200:
            found.append(clip(match.group(1) or match.group(2), 256))
    return found
