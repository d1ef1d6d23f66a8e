"""Risky network services (telnet, rsh, tftp, ftp, SNMP, ...): enabled and running state.

systemd (``systemctl list-unit-files`` and ``list-units``) is asked first; inetd.conf and xinetd.d
entries are parsed from files. A unit that is present but neither enabled nor running is not listed.

Keys of the result:
  available: bool; manager: "systemd" | None
  risky: [{name (unit or inetd service), category (telnet, rsh, tftp, ftp, snmp, ...), enabled: str | None,
    active: str | None, source: "systemd" | "inetd" | "xinetd"}]
  enabled_count, running_count: int (all service units); errors: [str]
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import Run, clip, failure, glob_under, read_text, runner_for

CATEGORIES: dict[str, tuple[str, ...]] = {
    "telnet": ("telnet", "telnetd", "inetutils-telnetd"),
    "rsh": ("rsh", "rlogin", "rexec", "rshd", "rlogind", "rexecd"),
    "tftp": ("tftp", "tftpd", "tftpd-hpa", "atftpd"),
    "ftp": ("vsftpd", "proftpd", "pure-ftpd", "ftp", "ftpd"),
    "snmp": ("snmpd", "snmptrapd"),
    "nis": ("ypserv", "ypbind", "yppasswdd"),
    "talk": ("talk", "ntalk"),
    "inetd": ("inetd", "xinetd", "openbsd-inetd", "inetutils-inetd"),
    "rpcbind": ("rpcbind",),
    "nfs": ("nfs-server", "nfs-kernel-server"),
    "samba": ("smbd", "nmbd", "smb"),
    "avahi": ("avahi-daemon",),
    "cups": ("cups", "cupsd"),
    "dhcp_server": ("isc-dhcp-server", "dhcpd", "kea-dhcp4-server"),
    "dns_server": ("named", "bind9"),
    "ldap_server": ("slapd",),
    "http_proxy": ("squid",),
    "vnc": ("vncserver", "xrdp", "x11vnc"),
    "x11": ("gdm", "gdm3", "lightdm", "sddm", "display-manager"),
}
BY_NAME = {name: category for category, names in CATEGORIES.items() for name in names}
UNIT = re.compile(r"^(\S+?)(@[^.]*)?\.(service|socket)$")
INETD_RISKY = ("telnet", "shell", "login", "exec", "tftp", "ftp", "talk", "ntalk", "chargen", "daytime",
               "echo", "discard", "time")


def collect_services(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Risky services and their state (see the module docstring for the keys)."""
    runner = runner_for(root, run)
    errors: list[str] = []
    units: dict[str, dict] = {}
    files = runner(["systemctl", "list-unit-files", "--type=service,socket", "--no-legend", "--no-pager"])
    if files.ok:
        for line in files.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                units.setdefault(parts[0], {})["enabled"] = parts[1]
    elif not files.missing:
        errors.append(failure("systemctl list-unit-files", files))
    listed = runner(["systemctl", "list-units", "--type=service,socket", "--all", "--no-legend", "--no-pager",
                     "--plain"])
    if listed.ok:
        for line in listed.stdout.splitlines():
            parts = line.lstrip("● ").split()
            if len(parts) >= 4:
                units.setdefault(parts[0], {})["active"] = parts[3] if parts[2] == "active" else parts[2]
    elif not listed.missing:
        errors.append(failure("systemctl list-units", listed))
    risky = [row for row in (_risky(name, state) for name, state in sorted(units.items())) if row]
    risky += _inetd(root)
    systemd = files.ok or listed.ok
    services = {n: s for n, s in units.items() if n.endswith(".service")}
    out = {"available": systemd or bool(risky) or read_text(root, "/etc/inetd.conf") is not None,
           "manager": "systemd" if systemd else None, "risky": risky[:200],
           "enabled_count": sum(1 for s in services.values() if s.get("enabled") == "enabled"),
           "running_count": sum(1 for s in services.values() if s.get("active") == "running"),
           "errors": errors}
    if not out["available"]:
        out["error"] = errors[0] if errors else "no service manager found (systemctl)"
    return out


def _risky(unit: str, state: dict) -> dict | None:
    found = UNIT.match(unit)
    if not found or found.group(1) not in BY_NAME:
        return None
    enabled, active = state.get("enabled"), state.get("active")
    if enabled not in ("enabled", "enabled-runtime", "static", "alias") and active not in ("running", "listening",
                                                                                          "active"):
        return None
    if enabled in ("static", "alias") and active not in ("running", "listening", "active"):
        return None
    return {"name": clip(unit, 256), "category": BY_NAME[found.group(1)], "enabled": enabled, "active": active,
            "source": "systemd"}


def _inetd(root: Path) -> list[dict]:
    rows = []
    for line in (read_text(root, "/etc/inetd.conf") or "").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and parts[0] in INETD_RISKY:
            rows.append({"name": parts[0], "category": _inetd_category(parts[0]), "enabled": "enabled",
                         "active": None, "source": "inetd"})
    for path in glob_under(root, "/etc/xinetd.d/*")[:200]:
        text = read_text(root, path) or ""
        name = path.rsplit("/", 1)[-1]
        if name in INETD_RISKY and not re.search(r"^\s*disable\s*=\s*yes", text, re.MULTILINE):
            rows.append({"name": name, "category": _inetd_category(name), "enabled": "enabled", "active": None,
                         "source": "xinetd"})
    return rows


def _inetd_category(name: str) -> str:
    return {"shell": "rsh", "login": "rsh", "exec": "rsh", "ntalk": "talk"}.get(name, name if name in CATEGORIES
                                                                              else "legacy")
