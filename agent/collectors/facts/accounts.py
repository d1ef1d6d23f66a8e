"""Local accounts as compliance sees them: password status, aging, UID 0, last login, inactivity.

Password hashes never leave this module: /etc/shadow is reduced to a status word per user
(set | empty | locked | none | unknown) line by line. Last logins come from /var/log/lastlog (binary,
indexed by uid) and /var/log/wtmp (the newest USER_PROCESS per name); the later of the two wins.

Keys of the result:
  available: bool (/etc/passwd read); shadow_readable: bool; last_login_source: "lastlog" | "wtmp" |
    "lastlog+wtmp" | None
  users: [{name, uid, gid, shell, can_login (shell is not nologin/false), password_status,
    last_change (YYYY-MM-DD | None), password_age_days, min_days, max_days, warn_days, inactive_days,
    expire_days: int | None, last_login (ISO 8601 | None), last_login_from (host | None),
    days_since_login: int | None}] (first 1000; ``truncated`` says when more)
  uid0: [names with uid 0]; empty_password: [names]; locked_count, total: int; errors: [str]
"""

from __future__ import annotations

import os
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

from agent.collectors.facts._common import Run, clip, read_file, to_int, under

DAY_S = 86_400
MAX_USERS = 1000
LASTLOG = struct.Struct("<i32s256s")  # struct lastlog: ll_time, ll_line, ll_host (292 bytes)
UTMP = struct.Struct("<hxxi32s4s32s256shhiii16s20x")  # struct utmp on Linux (384 bytes)
USER_PROCESS = 7
WTMP_TAIL = 16 << 20  # read at most the newest 16 MiB of wtmp
NO_LOGIN_SHELLS = ("nologin", "false", "sync", "shutdown", "halt")
AGING = ("min_days", "max_days", "warn_days", "inactive_days", "expire_days")


def password_status(secret: str) -> str:
    """Classify a shadow password field without keeping it."""
    if secret == "":
        return "empty"
    if secret[0] in "!*":
        return "locked"  # "!", "!!", "*", "*LK*" and "!<hash>": no password login possible
    return "set"


def collect_accounts(root: Path = Path("/"), run: Run | None = None, now: float | None = None) -> dict:
    """Accounts with status, aging and last login (see the module docstring for the keys)."""
    now = time.time() if now is None else now
    passwd, problem = read_file(root, "/etc/passwd")
    if passwd is None:
        return {"available": False, "error": f"/etc/passwd: {problem}", "users": []}
    errors: list[str] = []
    shadow, shadow_problem = read_file(root, "/etc/shadow")
    if shadow is None:
        errors.append(f"/etc/shadow: {shadow_problem}")
    aging = _shadow(shadow or "")
    records = [(p, to_int(p[2]), to_int(p[3])) for p in _records(passwd, 7)]
    records = [(p, uid, gid) for p, uid, gid in records if uid is not None and gid is not None and uid >= 0]
    lastlog, lastlog_ok = _lastlog(root, [uid for _p, uid, _g in records[:MAX_USERS]], errors)
    wtmp, wtmp_ok = _wtmp(root, errors)
    users = [_user(p, uid, gid, aging.get(p[0]), shadow is not None, now, _later(lastlog.get(uid), wtmp.get(p[0])))
             for p, uid, gid in records]
    source = "+".join(n for n, ok in (("lastlog", lastlog_ok), ("wtmp", wtmp_ok)) if ok) or None
    return {"available": True, "shadow_readable": shadow is not None, "last_login_source": source,
            "users": users[:MAX_USERS], "truncated": len(users) > MAX_USERS,
            "uid0": [u["name"] for u in users if u["uid"] == 0][:100],
            "empty_password": [u["name"] for u in users if u["password_status"] == "empty"][:100],
            "locked_count": sum(1 for u in users if u["password_status"] == "locked"),
            "total": len(users), "errors": errors}


def _records(text: str, min_fields: int) -> list[list[str]]:
    return [p for p in (line.split(":") for line in text.splitlines() if line and line[0] not in "#+-")
            if len(p) >= min_fields and p[0]]


def _shadow(text: str) -> dict[str, dict]:
    found = {}
    for parts in _records(text, 2):
        fields = (parts[2:8] + [""] * 6)[:6]
        found[parts[0]] = {"status": password_status(parts[1]), "last_change": to_int(fields[0]),
                           **{k: to_int(v) for k, v in zip(AGING, fields[1:], strict=True)}}
    return found


def _user(parts: list[str], uid: int, gid: int, shadow: dict | None, shadow_read: bool, now: float,
          login: tuple[int, str] | None) -> dict:
    name, secret, shell = parts[0], parts[1], parts[6].strip()
    if shadow is not None:
        status = shadow["status"]
    elif secret == "x":
        status = "none" if shadow_read else "unknown"  # no shadow entry at all: no password exists
    else:
        status = password_status(secret)  # a hash kept in passwd itself (pre-shadow systems)
    changed = (shadow or {}).get("last_change")
    today = int(now // DAY_S)
    row = {"name": clip(name, 256), "uid": uid, "gid": gid, "shell": clip(shell or None, 256),
           "can_login": bool(shell) and not shell.rsplit("/", 1)[-1].startswith(NO_LOGIN_SHELLS),
           "password_status": status,
           "last_change": _date(changed * DAY_S) if changed else None,
           "password_age_days": today - changed if changed else None,
           **{k: (shadow or {}).get(k) for k in AGING},
           "last_login": None, "last_login_from": None, "days_since_login": None}
    if login:
        row.update(last_login=datetime.fromtimestamp(login[0], UTC).isoformat(timespec="seconds"),
                   last_login_from=clip(login[1] or None, 256), days_since_login=int((now - login[0]) // DAY_S))
    return row


def _date(seconds: int) -> str | None:
    try:
        return datetime.fromtimestamp(seconds, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _later(a: tuple[int, str] | None, b: tuple[int, str] | None) -> tuple[int, str] | None:
    return max((x for x in (a, b) if x), default=None, key=lambda x: x[0])


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _lastlog(root: Path, uids: list[int], errors: list[str]) -> tuple[dict[int, tuple[int, str]], bool]:
    """uid -> (time, host) from /var/log/lastlog (a sparse file indexed by uid)."""
    found: dict[int, tuple[int, str]] = {}
    try:
        with open(under(root, "/var/log/lastlog"), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            for uid in uids:
                offset = uid * LASTLOG.size
                if offset + LASTLOG.size > size:
                    continue
                fh.seek(offset)
                stamp, _line, host = LASTLOG.unpack(fh.read(LASTLOG.size))
                if stamp > 0:
                    found[uid] = (stamp, _text(host))
    except FileNotFoundError:
        return {}, False
    except OSError as exc:
        errors.append(clip(f"/var/log/lastlog: unreadable: {exc.strerror or exc}"))
        return {}, False
    return found, True


def _wtmp(root: Path, errors: list[str]) -> tuple[dict[str, tuple[int, str]], bool]:
    """Name -> (time, host) of the newest user login recorded in wtmp."""
    path = under(root, "/var/log/wtmp")
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = max(0, size - WTMP_TAIL)
            start -= start % UTMP.size
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return {}, False
    except OSError as exc:
        errors.append(clip(f"/var/log/wtmp: unreadable: {exc.strerror or exc}"))
        return {}, False
    newest: dict[str, tuple[int, str]] = {}
    for offset in range(0, len(data) - UTMP.size + 1, UTMP.size):
        fields = UTMP.unpack_from(data, offset)
        if fields[0] != USER_PROCESS:
            continue
        user, host, stamp = _text(fields[4]), _text(fields[5]), fields[9]
        if user and stamp > 0 and stamp >= newest.get(user, (0, ""))[0]:
            newest[user] = (stamp, host)
    return newest, True
