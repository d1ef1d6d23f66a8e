"""Stat and hash one path, and compare two records. Symlinks are read, never followed."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from datetime import UTC, datetime

from agent.collectors.fim.baseline import COLUMNS, Record

CHUNK = 1 << 16
# Metadata that, when unchanged, lets us trust the previous hash (content changes move one of them).
HASH_KEYS = ("size", "mtime", "inode", "mode", "kind")
_HASH_AT = tuple(COLUMNS.index(k) for k in HASH_KEYS)
# A directory's size and mtime move with every entry added or removed: its children report that.
DIR_IGNORED = frozenset({"size", "mtime"})
CONTENT_KEYS = frozenset({"size", "sha256", "kind", "target"})


class Unreadable(OSError):
    """The file exists but its content could not be read (permission denied, vanished...)."""


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"  # fifos, sockets, devices: recorded, never opened


def record_of(path: str, st: os.stat_result) -> Record:
    """A record from an lstat result, without the hash."""
    kind = kind_of(st.st_mode)
    target = None
    if kind == "symlink":
        try:
            target = os.readlink(path)
        except OSError:
            target = None
    # Some filesystems hand out 64-bit unsigned inodes; SQLite and the wire take signed 63-bit.
    inode = st.st_ino & 0x7FFF_FFFF_FFFF_FFFF
    return Record(st.st_size, st.st_mode, st.st_uid, st.st_gid, st.st_mtime, inode, kind, None, target)


def sha256_file(path: str, st: os.stat_result) -> str:
    """Stream the file in chunks; refuses anything that is not the regular file we lstat'ed."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise Unreadable(exc.errno or errno.EIO, exc.strerror or "open failed", path) from None
    with os.fdopen(fd, "rb", buffering=0) as fh:
        fst = os.fstat(fh.fileno())
        if not stat.S_ISREG(fst.st_mode) or fst.st_ino != st.st_ino:  # swapped since lstat: not ours
            raise Unreadable(errno.ESTALE, "replaced while hashing", path)
        digest = hashlib.sha256()
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def needs_hash(old: Record | None, new: Record) -> bool:
    """Hash a new file, or one whose size/mtime/inode/mode moved; otherwise reuse the old hash.

    A file that could not be hashed (unreadable, too large) is not retried until its metadata moves,
    so it is reported once per change rather than at every rescan.
    """
    if new.kind != "file":
        return False
    if old is None or old.kind != "file":
        return True
    return any(old[i] != new[i] for i in _HASH_AT)


def diff(old: Record, new: Record) -> dict[str, tuple[object, object]]:
    """Attributes that differ, as raw (old, new) pairs; a directory's size/mtime are ignored."""
    if old == new:
        return {}
    both_dirs = new.kind == "dir" and old.kind == "dir"
    return {key: (a, b) for key, a, b in zip(COLUMNS, old, new, strict=True)
            if a != b and not (both_dirs and key in DIR_IGNORED)}


def action_of(changed: dict[str, tuple[object, object]]) -> str:
    """``modified`` when content (size, hash, kind, link target) moved, else ``attributes``."""
    return "modified" if CONTENT_KEYS & changed.keys() else "attributes"


def mode_str(mode: int | None) -> str | None:
    return None if mode is None else f"{stat.S_IMODE(mode):04o}"


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def wire_value(key: str, value: object) -> object:
    """Attribute value as sent: mode in octal, mtime in ISO 8601 UTC, the rest as is."""
    if key == "mode":
        return mode_str(value)  # type: ignore[arg-type]
    if key == "mtime":
        return iso(value)  # type: ignore[arg-type]
    return value
