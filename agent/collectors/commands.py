"""Running a host command for a collector: no shell, LANG=C, stdin closed, a timeout, never raises.

Collectors parse English output, so the locale is forced; a command that is not installed, times
out or cannot start comes back as a ``CommandResult`` with ``error`` set instead of an exception.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

SBIN = "/usr/sbin:/sbin"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command left behind; ``error`` is set when it could not run at all."""

    returncode: int
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    missing: bool = False  # the binary is not installed

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0


def run_command(argv: list[str], timeout_s: float) -> CommandResult:
    """Run ``argv`` (admin tools in /usr/sbin found even when PATH lacks it); never raises."""
    if shutil.which(argv[0]) is None and shutil.which(argv[0], path=f"{SBIN}:/usr/bin:/bin") is None:
        return CommandResult(-1, error=f"{argv[0]}: not installed", missing=True)
    env = dict(os.environ, LANG="C", LC_ALL="C", LANGUAGE="C", SYSTEMD_PAGER="", PAGER="cat")
    env["PATH"] = env.get("PATH", "") + ":" + SBIN
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout_s,
                              check=False, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return CommandResult(-1, error=f"{argv[0]}: timed out after {timeout_s:g}s")
    except OSError as exc:
        return CommandResult(-1, error=f"{argv[0]}: {exc.strerror or exc}")
    return CommandResult(done.returncode, done.stdout, done.stderr)


def failure(label: str, result: CommandResult, limit: int) -> str:
    """One short line (at most ``limit`` characters) saying why a command gave no usable answer."""
    if result.error:
        text = result.error if result.error.startswith(label) else f"{label}: {result.error}"
    else:
        detail = (result.stderr.strip().splitlines() or [""])[-1]
        text = f"{label}: exited {result.returncode}: {detail}".rstrip(": ")
    return text[:limit]
