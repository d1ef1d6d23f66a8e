"""Disk encryption (LUKS, from ``lsblk -J``) and mount options of the directories CIS hardens.

Keys of the result:
  available: bool (/proc/mounts read)
  luks_devices: [block devices formatted crypto_LUKS] | None (lsblk failed); encrypted_mounts: [mountpoints
    on an opened LUKS device] | None; root_encrypted: bool | None
  mounts: {"/tmp" | "/var/tmp" | "/dev/shm" | "/home" | "/var" | "/var/log" | "/var/log/audit" | "/boot":
    {separate: bool, device, fstype: str | None, options: [str], nodev, nosuid, noexec: bool}}
  errors: [str]
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.collectors.facts._common import Run, clip, failure, read_file, runner_for

# Mountpoints whose options CIS checks (nodev/nosuid/noexec on the temporary directories).
MOUNTS = ("/tmp", "/var/tmp", "/dev/shm", "/home", "/var", "/var/log", "/var/log/audit", "/boot")  # noqa: S108
LSBLK = ["lsblk", "-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT"]


def collect_storage(root: Path = Path("/"), run: Run | None = None) -> dict:
    """LUKS and mount options (see the module docstring for the keys)."""
    runner = runner_for(root, run)
    errors: list[str] = []
    text, problem = read_file(root, "/proc/mounts")
    if text is None:
        errors.append(f"/proc/mounts: {problem}")
    out: dict = {"available": text is not None, "luks_devices": None, "encrypted_mounts": None,
                 "root_encrypted": None, "mounts": parse_mounts(text or "")}
    result = runner(LSBLK)
    if result.ok:
        try:
            out.update(parse_lsblk(json.loads(result.stdout)))
        except (ValueError, TypeError, AttributeError) as exc:
            errors.append(clip(f"lsblk: unreadable output: {exc}", 256))
    else:
        errors.append(failure("lsblk", result))
    out["errors"] = errors
    if text is None:
        out["error"] = errors[0]
    return out


def parse_mounts(text: str) -> dict[str, dict]:
    """The wanted mountpoints from /proc/mounts (the last entry for a path is the visible one)."""
    found: dict[str, dict] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        point = parts[1].replace("\\040", " ")
        if point in MOUNTS:
            options = parts[3].split(",")[:64]
            found[point] = {"separate": True, "device": clip(parts[0], 256), "fstype": clip(parts[2], 64),
                            "options": [clip(o, 128) for o in options],
                            **{flag: flag in options for flag in ("nodev", "nosuid", "noexec")}}
    for point in MOUNTS:
        found.setdefault(point, {"separate": False, "device": None, "fstype": None, "options": [],
                                 "nodev": False, "nosuid": False, "noexec": False})
    return found


def parse_lsblk(data: dict) -> dict:
    """LUKS containers and the mountpoints below an opened one."""
    luks: list[str] = []
    mounts: list[str] = []

    def walk(devices: list, encrypted: bool) -> None:
        for dev in devices or []:
            if not isinstance(dev, dict):
                continue
            is_luks = dev.get("fstype") == "crypto_LUKS"
            if is_luks and len(luks) < 200:
                luks.append(clip(str(dev.get("name")), 256))
            inside = encrypted or is_luks or dev.get("type") == "crypt"
            point = dev.get("mountpoint")
            if inside and isinstance(point, str) and point and len(mounts) < 200:
                mounts.append(clip(point, 256))
            walk(dev.get("children") or [], inside)

    walk(data.get("blockdevices") or [], False)
    return {"luks_devices": luks, "encrypted_mounts": mounts, "root_encrypted": "/" in mounts}
