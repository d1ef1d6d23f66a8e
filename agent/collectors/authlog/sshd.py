"""OpenSSH (sshd, sshd-session) messages: logins failed and accepted, probes, pre-auth drops."""

from __future__ import annotations

import re
from typing import Any

from agent.collectors.authlog.events import NOISE, Parsed, int_or_none, ip_or_none, pam_fields

_FROM = r"from (?P<ip>\S+?)(?: port (?P<port>\d+))?"
# User names are greedy: a client-chosen name like "x from 6.6.6.6 port 1" must not win over the
# address sshd appends after it, so the LAST "from ADDR port N" is the real one.
_USER = r"(?P<invalid>(?:invalid|illegal) user )?(?P<user>.*)"
_AUTHED = r"(?:(?:authenticating|invalid) user (?P<user>.*) )?(?P<ip>\S+) port (?P<port>\d+)"

# (message prefix, pattern, action); the prefix test skips regexes that cannot match.
_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple((p, re.compile(r, re.S), a) for p, r, a in (
    ("Failed ", rf"Failed (?P<method>\S+) for {_USER} {_FROM}(?: ssh2?)?(?:: [\w-]+ \S+)?$", "failed"),
    ("Accepted ", rf"Accepted (?P<method>\S+) for (?P<user>.*) {_FROM}(?: ssh2?)?(?:: .*)?$", "accepted"),
    ("Invalid user ", rf"Invalid user (?P<user>.*) {_FROM}$", "invalid_user"),
    ("Illegal user ", rf"Illegal user (?P<user>.*) {_FROM}$", "invalid_user"),
    ("maximum ", rf"maximum authentication attempts exceeded for {_USER} {_FROM}(?: ssh2)?$", "max_auth_attempts"),
    ("Connection closed by ", rf"Connection closed by {_AUTHED}$", "preauth_disconnect"),
    ("Connection reset by ", rf"Connection reset by {_AUTHED}$", "preauth_disconnect"),
    ("Disconnected from ", rf"Disconnected from {_AUTHED}$", "preauth_disconnect"),
    # OpenSSH before 7.x: no port, no user.
    ("Connection closed by ", r"Connection closed by (?P<ip>\S+)$", "preauth_disconnect"),
    ("Disconnected from ", r"Disconnected from (?P<ip>\S+)$", "preauth_disconnect"),
    # With a port first: an IPv6 address followed by ":11:" is otherwise ambiguous.
    ("Received disconnect from ", r"Received disconnect from (?P<ip>\S+) port (?P<port>\d+):\s?\d+:.*$",
     "preauth_disconnect"),
    ("Received disconnect from ", r"Received disconnect from (?P<ip>[^\s:]+):\s?\d+:.*$", "preauth_disconnect"),
    ("Disconnecting ", rf"Disconnecting {_AUTHED}: .*$", "preauth_disconnect"),
    ("Timeout before authentication ", rf"Timeout before authentication for (?:connection )?{_FROM[5:]}$",
     "preauth_disconnect"),
    ("Did not receive identification ", rf"Did not receive identification string {_FROM}$", "no_identification"),
    ("Unable to negotiate ", r"Unable to negotiate with (?P<ip>\S+?)(?: port (?P<port>\d+))?: .*$",
     "negotiation_failed"),
    ("Bad protocol version ", rf"Bad protocol version identification .* {_FROM}$", "bad_protocol"),
    ("banner exchange: ", rf"banner exchange: Connection {_FROM}: .*$", "bad_protocol"),
    ("PAM: Authentication failure ", rf"PAM: Authentication failure for {_USER} {_FROM}$", "pam_failure"),
))


def _by_first_word(rules: tuple[tuple[str, re.Pattern[str], str], ...]) -> dict[str, tuple]:
    """Rules grouped by the message's first word, so a line meets only rules that could match it."""
    grouped: dict[str, tuple] = {}
    for rule in rules:
        word = rule[0].split(" ", 1)[0]
        grouped[word] = (*grouped.get(word, ()), rule)
    return grouped


_BY_WORD = _by_first_word(_RULES)
# Pre-auth drops only mean something before authentication; after it they are normal logouts.
_PREAUTH_ONLY = frozenset({"Connection closed by ", "Connection reset by ", "Disconnected from ",
                           "Received disconnect from ", "Disconnecting "})
_PAM_FAIL = re.compile(r"pam_\w+\(sshd:auth\): authentication failure;(?P<kv>.*)$", re.S)
_PAM_MORE = re.compile(r"PAM (?P<n>\d+) more authentication failures?;(?P<kv>.*)$", re.S)
_NOISE = (
    "pam_unix(sshd:session)", "pam_unix(sshd:auth): check pass", "pam_systemd(", "pam_env(", "pam_lastlog(",
    "pam_sss(sshd:account)", "pam_sss(sshd:auth): received for user", "Server listening on", "Received signal",
    "Connection from ", "Starting session", "Close session", "Postponed ", "User child is on pid",
    "Transferred: ", "subsystem request", "Exiting on signal", "fatal: ", "error: kex_exchange_identification",
    "kex_exchange_identification", "ssh_dispatch_run_fatal", "input_userauth_request: ",
    "reverse mapping checking", "Address ", "error: Received disconnect", "Accepted key ", "Read error from",
    "error: Bind to port", "Timeout, client not responding", "drop connection #", "beginning MaxStartups",
    "exited MaxStartups", "Protocol major versions differ", "error: Protocol major", "error: userauth_",
    "syslogin_perform_logout", "lastlog_openseek",
    "PAM service(sshd) ignoring max retries", "pam_succeed_if(", "error: connect_to", "pam_unix(sshd:account)",
    "Disconnected from user ", "Received disconnect from", "Connection closed by", "Connection reset by",
    "Disconnecting", "debug", "rexec line", "Invalid user", "userauth_pubkey: ", "error: PAM: ",
)


def parse(message: str) -> Parsed:
    """One sshd message as ``(item type, data)``, or why it was ignored."""
    msg = message.rstrip()
    preauth = msg.endswith(" [preauth]")
    if preauth:
        msg = msg[:-10]
    # OpenSSH marks some of these "error: " or "fatal: " depending on version; the rest is the same.
    body = msg[7:] if msg.startswith(("error: ", "fatal: ")) else msg
    for prefix, pattern, action in _BY_WORD.get(body.partition(" ")[0], ()):
        if body.startswith(prefix):
            if prefix in _PREAUTH_ONLY and not preauth:
                break
            match = pattern.match(body)
            if match is not None:
                return _event(action, match.groupdict())
    return _pam(msg) or (NOISE if msg.startswith(_NOISE) else "unknown_sshd")


def _event(action: str, g: dict[str, Any]) -> Parsed:
    method = g.get("method")
    data: dict[str, Any] = {"user": g.get("user"), "source_ip": ip_or_none(g.get("ip")),
                            "source_port": int_or_none(g.get("port"), 65535)}
    if action in ("failed", "accepted"):
        data["method"] = method
        action = f"{action}_{_method_kind(method or '')}"
    elif action in ("invalid_user", "pam_failure"):
        data["method"] = "pam" if action == "pam_failure" else None
    if action.startswith("accepted_"):
        return "auth.success", {"action": action, "outcome": "success", **data}
    return "auth.failure", {"action": action, "outcome": "failure", **data}


def _method_kind(method: str) -> str:
    """The action suffix for an auth method (``keyboard-interactive/pam`` -> keyboard_interactive)."""
    base = method.split("/", 1)[0]
    if base in ("password", "publickey", "hostbased", "none"):
        return base
    if base == "keyboard-interactive":
        return "keyboard_interactive"
    return "other"


def _pam(msg: str) -> Parsed | None:
    """PAM's own failure lines, logged under sshd's name."""
    match = _PAM_FAIL.match(msg)
    count = 1
    if match is None:
        match = _PAM_MORE.match(msg)
        if match is None:
            return None
        count = int_or_none(match["n"], 1_000_000) or 1
    kv = pam_fields(match["kv"])
    return "auth.failure", {"action": "pam_failure", "outcome": "failure", "user": kv.get("user"),
                            "source_ip": ip_or_none(kv.get("rhost")), "method": "pam", "count": count}
