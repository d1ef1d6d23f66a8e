"""Ownership and permissions of sensitive files (metadata only: no file content is read or sent).

Keys of the result:
  available: bool (always true)
  files: {host path: {exists: bool, type: "file" | "dir" | "link" | "other" | None, mode: "0640" | None,
    uid, gid: int | None, owner, group: str | None, world_readable, world_writable, group_writable: bool | None,
    error?: str}} for a fixed list (passwd/shadow/group files, sudoers, sshd_config, SSH host keys,
    GRUB config, cron files and directories, log and audit directories)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.collectors.facts._common import Run, clip, glob_under, read_text, under

PATHS = (
    "/etc/passwd", "/etc/passwd-", "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/group",
    "/etc/group-", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d",
    "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/grub2/user.cfg", "/etc/crontab", "/etc/cron.d",
    "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/etc/cron.allow",
    "/etc/cron.deny", "/etc/at.allow", "/etc/at.deny", "/etc/security/opasswd", "/etc/login.defs",
    "/etc/issue", "/etc/issue.net", "/etc/motd", "/etc/hosts.allow", "/etc/hosts.deny", "/var/log",
    "/var/log/audit", "/etc/audit/auditd.conf", "/etc/rsyslog.conf", "/etc/fstab",
)
HOST_KEYS = "/etc/ssh/ssh_host_*_key"


def collect_files(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Metadata of the sensitive files (see the module docstring for the keys)."""
    users = _names(read_text(root, "/etc/passwd"))
    groups = _names(read_text(root, "/etc/group"))
    paths = [*PATHS, *glob_under(root, HOST_KEYS)[:20], *(f"{p}.pub" for p in glob_under(root, HOST_KEYS)[:20])]
    return {"available": True, "files": {path: file_meta(root, path, users, groups) for path in paths}}


def file_meta(root: Path, path: str, users: dict[int, str], groups: dict[int, str]) -> dict:
    """lstat of one path as plain facts."""
    try:
        st = os.lstat(under(root, path))
    except FileNotFoundError:
        return {"exists": False, "type": None, "mode": None}
    except OSError as exc:
        return {"exists": None, "type": None, "mode": None, "error": clip(exc.strerror or str(exc), 256)}
    mode = stat.S_IMODE(st.st_mode)
    kind = ("file" if stat.S_ISREG(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode)
            else "link" if stat.S_ISLNK(st.st_mode) else "other")
    return {"exists": True, "type": kind, "mode": f"{mode:04o}", "uid": st.st_uid, "gid": st.st_gid,
            "owner": users.get(st.st_uid), "group": groups.get(st.st_gid),
            "world_readable": bool(mode & stat.S_IROTH), "world_writable": bool(mode & stat.S_IWOTH),
            "group_writable": bool(mode & stat.S_IWGRP)}


def _names(text: str | None) -> dict[int, str]:
    names: dict[int, str] = {}
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names.setdefault(int(parts[2]), clip(parts[0], 256))
    return names
