"""Effective OpenSSH server settings: ``sshd -T`` when it works, else the parsed config with includes.

Keys of the result:
  available: bool; installed: bool (sshd binary or sshd_config present)
  source: "sshd -T" | "config" | None
  settings: {lowercased keyword: str, or list of str for repeatable keywords (port, listenaddress,
    hostkey, acceptenv, allowusers, ...)}; in "config" mode OpenSSH's defaults fill the keywords the
    files leave unset, and ``defaults_applied`` lists them
  match_blocks: [{"criteria": str, "settings": {...}}] (config mode; ``sshd -T`` shows the global view)
  files: [config files read, in order]; errors: [str] (unreadable files, include loops, sshd -T failure)
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import (
    MAX_LIST,
    Run,
    clip,
    exists,
    failure,
    glob_under,
    read_file,
    runner_for,
)

CONFIG = "/etc/ssh/sshd_config"
MAX_INCLUDE_DEPTH = 16
MAX_MATCH_BLOCKS = 50
KEYWORD = re.compile(r"([^\s=]+)(?:\s*=\s*|\s+|$)(.*)")  # "Key value" or "Key=value"
MULTI = frozenset({
    "port", "listenaddress", "hostkey", "hostcertificate", "acceptenv", "setenv", "subsystem",
    "allowusers", "allowgroups", "denyusers", "denygroups", "authorizedkeysfile", "include",
})
# OpenSSH's compiled-in defaults for the keywords compliance checks read (sshd_config(5)).
DEFAULTS: dict[str, str | list[str]] = {
    "port": ["22"], "permitrootlogin": "prohibit-password", "passwordauthentication": "yes",
    "pubkeyauthentication": "yes", "permitemptypasswords": "no", "x11forwarding": "no",
    "maxauthtries": "6", "logingracetime": "120", "clientaliveinterval": "0", "clientalivecountmax": "3",
    "usepam": "no", "hostbasedauthentication": "no", "ignorerhosts": "yes", "permituserenvironment": "no",
    "allowtcpforwarding": "yes", "allowagentforwarding": "yes", "maxsessions": "10", "loglevel": "INFO",
    "kbdinteractiveauthentication": "yes", "gssapiauthentication": "no", "banner": "none",
    "maxstartups": "10:30:100", "strictmodes": "yes", "permittunnel": "no", "compression": "yes",
}


def collect_sshd(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Effective sshd settings (see the module docstring for the keys)."""
    runner = runner_for(root, run)
    errors: list[str] = []
    result = runner(["sshd", "-T"])
    config_exists = exists(root, CONFIG)
    if result.ok and result.stdout.strip():
        return {"available": True, "installed": True, "source": "sshd -T",
                "settings": parse_sshd_t(result.stdout), "match_blocks": [], "files": [],
                "defaults_applied": [], "errors": []}
    if not result.missing:
        errors.append(failure("sshd -T", result))
    if not config_exists and result.missing:
        return {"available": False, "installed": False, "error": "OpenSSH server not installed",
                "source": None, "settings": {}, "match_blocks": [], "files": [], "defaults_applied": [],
                "errors": errors}
    parsed = ConfigParser(root)
    parsed.read(CONFIG, depth=0)
    errors += parsed.errors
    settings = dict(parsed.settings)
    applied = sorted(k for k in DEFAULTS if k not in settings)
    for key in applied:
        settings[key] = DEFAULTS[key]
    available = bool(parsed.files)
    out = {"available": available, "installed": True, "source": "config" if available else None,
           "settings": settings if available else {}, "match_blocks": parsed.matches,
           "files": parsed.files, "defaults_applied": applied if available else [], "errors": errors[:50]}
    if not available:
        out["error"] = errors[-1] if errors else "sshd_config unreadable"
    return out


def parse_sshd_t(text: str) -> dict[str, str | list[str]]:
    """``sshd -T`` output: one ``keyword value`` per line; repeatable keywords become lists."""
    settings: dict[str, str | list[str]] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if not parts or len(parts[0]) > 64:
            continue
        key, value = parts[0].lower(), clip(parts[1].strip() if len(parts) > 1 else "")
        if key in MULTI:
            values = settings.setdefault(key, [])
            if isinstance(values, list) and len(values) < MAX_LIST:
                values.append(value)
        elif key not in settings and len(settings) < 400:
            settings[key] = value
    return settings


class ConfigParser:
    """sshd_config(5) semantics: first value wins, Include (globs, relative to /etc/ssh), Match blocks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings: dict[str, str | list[str]] = {}
        self.matches: list[dict] = []
        self.files: list[str] = []
        self.errors: list[str] = []
        self._stack: list[str] = []

    def read(self, path: str, depth: int) -> None:
        if path in self._stack:
            self.errors.append(clip(f"include loop: {' -> '.join([*self._stack, path])}"))
            return
        if depth > MAX_INCLUDE_DEPTH:
            self.errors.append(clip(f"include depth over {MAX_INCLUDE_DEPTH} at {path}"))
            return
        text, problem = read_file(self.root, path)
        if text is None:
            self.errors.append(clip(f"{path}: {problem}"))
            return
        if len(self.files) < 200:
            self.files.append(path)
        self._stack.append(path)
        try:
            self._lines(text, depth)
        finally:
            self._stack.pop()

    def _lines(self, text: str, depth: int) -> None:
        match: dict | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            found = KEYWORD.match(line)
            if found is None:
                continue
            key, value = found.group(1).lower(), found.group(2).strip().strip('"')
            if key == "include":
                for pattern in value.split():
                    self._include(pattern, depth)
            elif key == "match":
                match = {"criteria": clip(value), "settings": {}}
                if len(self.matches) < MAX_MATCH_BLOCKS:
                    self.matches.append(match)
            elif key and len(key) <= 64:
                self._set(match["settings"] if match is not None else self.settings, key, value)

    def _include(self, pattern: str, depth: int) -> None:
        path = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
        if any(c in path for c in "*?["):
            for found in glob_under(self.root, path):
                self.read(found, depth + 1)
        else:
            self.read(path, depth + 1)

    @staticmethod
    def _set(target: dict, key: str, value: str) -> None:
        if key in MULTI:
            values = target.setdefault(key, [])
            for item in value.split() if key.startswith(("allow", "deny", "acceptenv")) else [value]:
                if len(values) < MAX_LIST:
                    values.append(clip(item))
        elif key not in target and len(target) < 400:
            target[key] = clip(value)
