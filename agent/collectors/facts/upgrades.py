"""Automatic updates: unattended-upgrades (Debian/Ubuntu), dnf-automatic or yum-cron (RHEL family).

Keys of the result:
  available: bool (always true: none configured is an answer)
  tool: "unattended-upgrades" | "dnf-automatic" | "yum-cron" | None; installed: bool
  enabled: bool (the tool will run and apply updates); update_lists: bool | None;
  apply_updates: bool | None; security_only: bool | None (upgrade_type = security);
  security_origins: bool | None (unattended-upgrades allows the security archive);
  timer_enabled: bool | None (dnf-automatic timer wanted by timers.target)
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from agent.collectors.facts._common import Run, exists, glob_under, read_text, yes

PERIODIC = re.compile(r'^\s*APT::Periodic::([\w-]+)\s+"?([^";]*)"?\s*;', re.MULTILINE)


def collect_upgrades(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Automatic update configuration (see the module docstring for the keys)."""
    if exists(root, "/etc/apt/apt.conf.d") or exists(root, "/usr/bin/unattended-upgrade"):
        return {"available": True, **_apt(root)}
    for tool, conf, timers in (("dnf-automatic", "/etc/dnf/automatic.conf", "dnf-automatic*.timer"),
                               ("yum-cron", "/etc/yum/yum-cron.conf", None)):
        if exists(root, conf):
            return {"available": True, **_rpm(root, tool, conf, timers)}
    return {"available": True, "tool": None, "installed": False, "enabled": False, "update_lists": None,
            "apply_updates": None, "security_only": None, "security_origins": None, "timer_enabled": None}


def _apt(root: Path) -> dict:
    periodic: dict[str, str] = {}
    security = None
    for path in glob_under(root, "/etc/apt/apt.conf.d/*"):  # lexical order: later files win
        text = re.sub(r"//.*", "", read_text(root, path) or "")
        periodic.update({k: v.strip() for k, v in PERIODIC.findall(text)})
        if "Unattended-Upgrade::Origins-Pattern" in text or "Unattended-Upgrade::Allowed-Origins" in text:
            security = bool(re.search(r"^\s*\"[^\"]*security", text, re.MULTILINE | re.IGNORECASE))
    installed = exists(root, "/usr/bin/unattended-upgrade")
    update_lists = _apt_on(periodic.get("Update-Package-Lists"))
    apply = _apt_on(periodic.get("Unattended-Upgrade"))
    return {"tool": "unattended-upgrades" if installed else None, "installed": installed,
            "enabled": bool(installed and apply and update_lists is not False), "update_lists": update_lists,
            "apply_updates": apply, "security_only": None, "security_origins": security, "timer_enabled": None}


def _apt_on(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value) > 0
    return yes(value)  # "always" and intervals like "1d" also count as on


def _rpm(root: Path, tool: str, conf: str, timers: str | None) -> dict:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(read_text(root, conf) or "")
    except configparser.Error:
        parser = configparser.ConfigParser()
    section = parser["commands"] if parser.has_section("commands") else {}
    apply = yes(section.get("apply_updates"))
    timer = None
    if timers:
        timer = bool(glob_under(root, f"/etc/systemd/system/timers.target.wants/{timers}"))
    upgrade_type = section.get("upgrade_type") or section.get("update_cmd")
    enabled = bool(apply) and (timer is not False)
    return {"tool": tool, "installed": True, "enabled": enabled, "update_lists": yes(section.get("download_updates")),
            "apply_updates": apply, "security_only": upgrade_type == "security" if upgrade_type else None,
            "security_origins": None, "timer_enabled": timer}
