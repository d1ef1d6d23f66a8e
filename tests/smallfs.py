"""A tiny filesystem a test can fill up: a tmpfs of a few MiB mounted on a directory.

The disk-full cases need a real ``ENOSPC`` from the kernel, which only a filesystem of its own can
give without filling the machine's disk. A tmpfs needs root and permission to mount (true in this
project's containers and CI, which run as root); where mounting is refused the test is skipped
with the kernel's reason, since no other way gives the same error (RLIMIT_FSIZE raises EFBIG and a
signal instead, a different failure).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"


@contextlib.contextmanager
def tmpfs(path: Path, *, size_kib: int) -> Iterator[Path]:
    """Mount a ``size_kib`` KiB tmpfs on ``path`` (created if needed) for the duration."""
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip() or mount.returncode}); "
                    "the disk-full cases need a real ENOSPC")
    try:
        yield path
    finally:
        # Lazy: an agent process killed a moment ago may still hold files open.
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> Path:
    """Take every free byte of ``path``'s filesystem with a filler file; returns the file."""
    filler = path / FILLER
    with open(filler, "ab", buffering=0) as fh:  # unbuffered: no data left over to fail at close
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):  # big writes first, then the last partial page
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    assert free_bytes(path) == 0, f"{path} still has {free_bytes(path)} bytes free"
    return filler


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def release(path: Path) -> None:
    """Give the filler's space back."""
    (path / FILLER).unlink(missing_ok=True)
