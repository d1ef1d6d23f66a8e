"""sudo and su messages: commands run as another user, refused or failed elevation."""

from __future__ import annotations

import re
from typing import Any

from agent.collectors.authlog.events import NOISE, Parsed, int_or_none, pam_fields

_SUDO = re.compile(r"\s*(?P<user>\S+) : (?:(?P<what>[^;=]+?) ; )?(?P<kv>(?:TTY|PWD|USER)=.*)$", re.S)
_SUDO_WHAT: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), a) for p, a in (
    (r"(?P<n>\d+) incorrect password attempts?$", "sudo_incorrect_password"),
    (r"user NOT in sudoers$", "sudo_not_in_sudoers"),
    (r"user NOT authorized on host$", "sudo_not_in_sudoers"),
    (r"command not allowed$", "sudo_command_not_allowed"),
    (r"a password is required$", "sudo_password_required"),
))
_PAM_FAIL = re.compile(r"pam_\w+\((?P<svc>[\w-]+):auth\): authentication failure;(?P<kv>.*)$", re.S)
_SUDO_NOISE = ("pam_unix(sudo:session)", "pam_unix(sudo-i:session)", "pam_unix(sudo:auth)", "pam_systemd(",
               "unable to resolve host", "pam_sss(", "pam_env(", "sorry, you must have a tty")

_SU_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), a) for p, a in (
    (r"Successful su for (?P<target>\S+) by (?P<user>\S+)$", "su_success"),
    (r"FAILED su for (?P<target>\S+) by (?P<user>\S+)$", "su_failure"),
    (r"\(to (?P<target>[^)\s]+)\) (?P<user>\S+) on (?P<tty>\S+)$", "su_success"),
    (r"FAILED SU \(to (?P<target>[^)\s]+)\) (?P<user>\S+) on (?P<tty>\S+)$", "su_failure"),
))
# Shadow's su also writes "+ pts/0 alice:root" next to "Successful su ...": one event, not two.
_SU_NOISE = ("+ ", "- ", "pam_unix(su:session)", "pam_unix(su-l:session)", "pam_authenticate:", "pam_systemd(",
             "pam_unix(su:auth)", "pam_unix(su-l:auth)", "pam_env(", "No passwd entry for user")


def parse_sudo(message: str) -> Parsed:
    """One sudo message as ``(auth.sudo, data)``, or why it was ignored."""
    match = _SUDO.match(message)
    if match is None:
        pam = _pam(message, "sudo")
        if pam is not None:
            return pam
        return NOISE if message.lstrip().startswith(_SUDO_NOISE) else "unknown_sudo"
    data: dict[str, Any] = {"user": match["user"], **_sudo_fields(match["kv"])}
    what = match["what"]
    if what is None:
        return "auth.sudo", {"action": "sudo_command", "outcome": "success", **data}
    for pattern, action in _SUDO_WHAT:
        found = pattern.match(what.strip())
        if found is not None:
            count = int_or_none(found.groupdict().get("n"), 1_000_000) or 1
            return "auth.sudo", {"action": action, "outcome": "failure", "count": count, **data}
    return "unknown_sudo"


def _sudo_fields(kv: str) -> dict[str, Any]:
    """``TTY=pts/0 ; PWD=/x ; USER=root ; COMMAND=/bin/ls -l`` (the command may itself hold ' ; ')."""
    head, sep, command = kv.partition(" ; COMMAND=")
    if not sep and kv.startswith("COMMAND="):
        head, command = "", kv[8:]
    pairs = dict(part.split("=", 1) for part in head.split(" ; ") if "=" in part)
    tty = pairs.get("TTY")
    return {"tty": None if tty == "unknown" else tty, "cwd": pairs.get("PWD"),
            "target_user": pairs.get("USER"), "command": command or None, "method": "sudo"}


def parse_su(message: str) -> Parsed:
    """One su message as ``(auth.su, data)``, or why it was ignored."""
    msg = message.strip()
    for pattern, action in _SU_RULES:
        match = pattern.match(msg)
        if match is not None:
            outcome = "success" if action == "su_success" else "failure"
            return "auth.su", {"action": action, "outcome": outcome, "user": match["user"],
                               "target_user": match["target"], "tty": match.groupdict().get("tty"),
                               "method": "su"}
    pam = _pam(msg, "su")
    if pam is not None:
        return pam
    return NOISE if msg.startswith(_SU_NOISE) else "unknown_su"


def _pam(message: str, program: str) -> Parsed | None:
    """``pam_unix(su:auth): authentication failure; ... ruser=alice ... user=root`` as a failure."""
    match = _PAM_FAIL.match(message.strip())
    if match is None:
        return None
    kv = pam_fields(match["kv"])
    tty = kv.get("tty", "").removeprefix("/dev/")
    caller = kv.get("ruser") or kv.get("logname")
    # For su, PAM's user= is the account switched to; for sudo it is the caller re-authenticating.
    target = kv.get("user") if caller and program == "su" else None
    return f"auth.{program}", {"action": "pam_failure", "outcome": "failure", "user": caller or kv.get("user"),
                               "target_user": target, "tty": tty, "method": "pam"}
