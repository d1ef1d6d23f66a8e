"""``PatchCollector``: one ``patch.status`` item per run for Debian/Ubuntu (apt) or RHEL (dnf/yum).

Daily by default (``interval_s``); the scheduler should also run it again when the inventory's
packages section changes, so after an upgrade the pending list catches up within one inventory
cycle. That is affordable: a run costs one ``apt-get -s upgrade`` (1-8 s, depending on the size of
the lists) or two cache-only dnf calls. Whatever cannot be determined is left null and explained
in ``errors``; a partial answer beats none.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from agent.collectors import base
from agent.collectors.inventory.packages import PackagesError, rpm_packages
from agent.collectors.patches import apt, dnf
from agent.collectors.patches._common import (
    MAX_ERRORS,
    MAX_PENDING,
    PATCH_FIELDS,
    Runner,
    clip,
    empty_status,
    failure,
    run_command,
)
from agent.collectors.patches.kernel import kernel_status
from agent.wire import Item

DAY_S = 86_400
# Files whose change means the pending list is out of date: packages installed/removed, lists updated.
CHANGE_MARKERS = ("var/lib/dpkg/status", "var/lib/apt/lists", "var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages",
                  "var/cache/dnf")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class PatchCollector(base.Collector):
    """Pending updates, security flags, list freshness, kernel and reboot state of a Linux host."""

    name = "patches"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"patch.status": PATCH_FIELDS}
    interval_s: ClassVar[int] = DAY_S

    def __init__(self, *, root: Path = Path("/"), timeout_s: float = 120.0, run_apt: bool = True,
                 run_dnf: bool = True, runner: Runner = run_command,
                 which: Callable[[str], str | None] = shutil.which, kernel_release: str | None = None,
                 clock: Callable[[], float] = time.time, every_s: float = DAY_S) -> None:
        super().__init__()
        self.root, self.timeout_s, self.runner, self.which, self.clock = root, timeout_s, runner, which, clock
        self.run_apt, self.run_dnf = run_apt, run_dnf
        self.kernel_release = kernel_release or os.uname().release
        self.every_s = every_s
        self._last_run: float | None = None
        self._last_fingerprint: tuple[float, ...] | None = None

    def due(self) -> bool:
        """First run, ``every_s`` since the last, or the package database or lists changed since."""
        if self._last_run is None or self.clock() - self._last_run >= self.every_s:
            return True
        return self._fingerprint() != self._last_fingerprint

    def _fingerprint(self) -> tuple[float, ...]:
        # mtimes only: checking is cheap enough to do every few minutes, a run (apt-get -s) is not.
        return tuple(_mtime(self.root / p) for p in CHANGE_MARKERS)

    def manager(self) -> str:
        """apt when dpkg's database and apt-get exist, else dnf, else yum, else none."""
        if (self.root / "var/lib/dpkg/status").is_file() and self.which("apt-get"):
            return "apt"
        return next((m for m in ("dnf", "yum") if self.which(m)), "none")

    def collect(self) -> Iterable[Item]:
        if not self.due():
            return
        self._last_run, self._last_fingerprint = self.clock(), self._fingerprint()
        manager = self.manager()
        data = empty_status(manager)
        errors: list[str] = []
        if manager == "apt":
            self._apt(data, errors)
        elif manager in ("dnf", "yum"):
            self._rpm(data, errors, manager)
        else:
            errors.append("manager: no apt-get, dnf or yum found")
        kernel, kernel_error = kernel_status(self.root, self.kernel_release)
        data.update(kernel)
        if kernel_error:
            errors.append(kernel_error)
        self._reboot(data, errors, manager)
        data["errors"] = [clip(e) for e in errors][:MAX_ERRORS]
        yield Item("patch.status", data)

    def _set_pending(self, data: dict, pending: list[dict]) -> None:
        """Counts cover everything found; the list itself is capped for the wire."""
        data.update(pending=pending[:MAX_PENDING], pending_count=len(pending),
                    security_count=sum(1 for r in pending if r["security"]))

    def _apt(self, data: dict, errors: list[str]) -> None:
        """Simulated upgrade, list age, last update and last upgrade."""
        if self.run_apt:
            result = self.runner(apt.APT_UPGRADE, self.timeout_s)
            if result.error is None and result.returncode == 0:
                pending, held = apt.parse_apt_simulation(result.stdout)
                self._set_pending(data, pending)
                data["held_back"] = held[:MAX_PENDING]
            else:
                errors.append(failure("apt-get -s upgrade", result))
        else:
            errors.append("pending: apt simulation disabled by configuration")
        data["lists_age_s"], age_error = apt.lists_age(self.root, self.clock())
        if age_error:
            errors.append(age_error)
        data["last_update"] = apt.last_update_iso(self.root)
        data["last_upgrade"] = apt.last_upgrade(self.root)

    def _rpm(self, data: dict, errors: list[str], manager: str) -> None:
        """Cache-only check-update and security updateinfo, with installed versions from rpm."""
        if not self.run_dnf:
            errors.append(f"pending: {manager} check disabled by configuration")
        else:
            self._rpm_pending(data, errors, manager)
        mtime = dnf.newest_metadata_mtime(self.root)
        data["lists_age_s"] = max(0.0, round(self.clock() - mtime, 1)) if mtime is not None else None
        if mtime is None:
            errors.append(f"lists_age: no cached {manager} metadata (repomd.xml)")
        data["last_update"] = dnf.last_update_iso(self.root)
        data["last_upgrade"] = dnf.last_upgrade(self.root)

    def _rpm_pending(self, data: dict, errors: list[str], manager: str) -> None:
        commands = dnf.COMMANDS[manager]
        check = self.runner(commands["check"], self.timeout_s)
        if not dnf.check_update_ok(check):
            errors.append(failure(f"{manager} check-update", check))
            return
        pending = dnf.parse_check_update(check.stdout)
        security = self.runner(commands["security"], self.timeout_s)
        if security.error is None and security.returncode == 0:
            dnf.mark_security(pending, dnf.parse_updateinfo_security(security.stdout))
        else:
            errors.append(failure(f"{manager} updateinfo (security flags unknown)", security))
        installed = self._rpm_installed(errors)
        for row in pending:
            row["installed_version"] = installed.get((row["name"], row["arch"]))
        self._set_pending(data, pending)

    def _rpm_installed(self, errors: list[str]) -> dict[tuple[str, str | None], str]:
        """(name, arch) -> installed version; check-update prints only the candidate."""
        try:
            rows = rpm_packages(self.root)
        except PackagesError as exc:
            errors.append(clip(f"installed versions: {exc}"))
            return {}
        return {(r["name"], r["arch"]): r["version"] for r in rows}

    def _reboot(self, data: dict, errors: list[str], manager: str) -> None:
        """The OS's own answer (flag file, needs-restarting), then the kernel comparison on top."""
        if manager == "apt":
            data["reboot_required"], data["reboot_packages"] = apt.reboot_required(self.root)
        elif manager in ("dnf", "yum") and self.which("needs-restarting"):
            result = self.runner(dnf.NEEDS_RESTARTING, self.timeout_s)
            required, names = dnf.parse_needs_restarting(result)
            if required is None:
                errors.append(failure("needs-restarting -r", result))
            else:
                data["reboot_required"], data["reboot_packages"] = required, names
        # Plain Debian writes no reboot-required flag, and a kernel installed before the last boot but
        # not booted satisfies needs-restarting: either way the newest kernel is not running.
        if data["kernel_outdated"] is True and not data["reboot_required"]:
            package = f"linux-image-{data['newest_kernel']}" if manager == "apt" else "kernel"
            data["reboot_required"], data["reboot_packages"] = True, [*data["reboot_packages"], package]
