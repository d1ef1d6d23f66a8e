"""Account management messages from shadow-utils (useradd, usermod, groupadd, passwd ...) and PAM."""

from __future__ import annotations

import re
from typing import Any

from agent.collectors.authlog.events import NOISE, Parsed, int_or_none

_U = r"'(?P<user>[^']*)'"
_G = r"'(?P<group>[^']*)'"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.S), a) for p, a in (
    (r"new user: name=(?P<user>[^,]*), UID=(?P<uid>\d+), GID=(?P<gid>\d+), home=(?P<home>[^,]*), "
     r"shell=(?P<shell>[^,]*)(?:, .*)?$", "user_added"),
    (r"new group: name=(?P<group>[^,]*), GID=(?P<gid>\d+)(?:, .*)?$", "group_added"),
    (rf"delete user {_U}$", "user_deleted"),
    (rf"removed group {_G} owned by {_U}$", "group_deleted"),
    (rf"group {_G} removed$", "group_deleted"),
    (rf"add {_U} to group {_G}$", "user_added_to_group"),
    (rf"delete {_U} from group {_G}$", "user_removed_from_group"),
    (r"user (?P<user>\S+) added by \S+ to group (?P<group>\S+)$", "user_added_to_group"),
    (r"user (?P<user>\S+) removed by \S+ from group (?P<group>\S+)$", "user_removed_from_group"),
    (rf"change user {_U} shell from '[^']*' to '(?P<shell>[^']*)'$", "user_modified"),
    (rf"change user {_U} home from '[^']*' to '(?P<home>[^']*)'$", "user_modified"),
    (rf"change user {_U} UID from '\d*' to '(?P<uid>\d+)'$", "user_modified"),
    (rf"change user {_U} GID from '\d*' to '(?P<gid>\d+)'$", "user_modified"),
    (rf"change user name {_U} to '[^']*'$", "user_renamed"),
    (rf"(?:change|lock|unlock) user {_U}.*$", "user_modified"),
    (r"group changed in /etc/group \(group (?P<group>[^/,)]+)(?:/(?P<gid>\d+))?.*\)$", "group_modified"),
    (r"members of group (?P<group>\S+) set by \S+ to .*$", "group_modified"),
    (r"pam_\w+\(\S+:chauthtok\): password changed for (?P<user>\S+)$", "password_changed"),
    (rf"password for {_U} changed by '[^']*'$", "password_changed"),
    (r"changed password expiry for (?P<user>\S+)$", "user_modified"),
    (r"(?:changed user (?P<user>\S+) information|changed user '(?P<user2>[^']+)' shell)$", "user_modified"),
))
# Duplicates of an event already taken from a sibling line (shadow files written after the main one).
_NOISE = ("group added to ", "add '", "delete '", "group changed in /etc/gshadow", "pam_unix(", "pam_systemd(",
          "removed shadow group", "group '", "failed adding user", "new user ", "password for ",
          "gkr-pam:", "pam_sss(", "pam_pwquality(", "pam_cracklib(")


def parse(message: str) -> Parsed:
    """One account-management message as ``(account.change, data)``, or why it was ignored."""
    msg = message.strip()
    for pattern, action in _RULES:
        match = pattern.match(msg)
        if match is not None:
            return "account.change", _data(action, match.groupdict())
    return NOISE if msg.startswith(_NOISE) else "unknown_account"


def _data(action: str, g: dict[str, Any]) -> dict[str, Any]:
    return {"action": action, "user": g.get("user") or g.get("user2"), "group": g.get("group"),
            "uid": int_or_none(g.get("uid")), "gid": int_or_none(g.get("gid")), "home": g.get("home"),
            "shell": g.get("shell")}
