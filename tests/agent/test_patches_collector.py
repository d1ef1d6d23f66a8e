"""PatchCollector: a real run on this host (modifies nothing), fixture roots, and wire validation."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from agent.collectors.base import ListSink
from agent.collectors.patches import PATCH_FIELDS, PatchCollector, WindowsPatchCollector
from agent.collectors.patches._common import CommandResult, run_command
from agent.wire import Batch
from collector.ingest.items.patch import PatchStatus
from collector.ingest.schema import parse_batch

FIXTURES = Path(__file__).parent / "fixtures" / "patches"
DPKG_STATUS = Path("/var/lib/dpkg/status")


def validate_items(items) -> list:
    """Every item through the collector's batch validator; returns the parsed data models."""
    raw = json.dumps(Batch(items=[i.to_dict() for i in items]).to_dict()).encode()
    return [item.data for item in parse_batch(raw).items]


class FakeRunner:
    """Answers commands from a table keyed by argv[0] and the last argument; records every call."""

    def __init__(self, answers: dict[tuple[str, str], CommandResult]) -> None:
        self.answers, self.calls = answers, []

    def __call__(self, argv: list[str], timeout_s: float) -> CommandResult:
        self.calls.append(argv)
        return self.answers.get((argv[0], argv[-1]), CommandResult(-1, error=f"{argv[0]}: not found"))


def test_declared_fields_match_the_validator():
    assert PatchCollector.fields == WindowsPatchCollector.fields == {"patch.status": PATCH_FIELDS}
    assert tuple(PatchStatus.model_fields) == PATCH_FIELDS
    assert PatchCollector.interval_s == 86_400


@pytest.mark.skipif(not (shutil.which("apt-get") and DPKG_STATUS.is_file()), reason="needs a Debian host")
def test_real_run_on_this_host_modifies_nothing():
    lists = Path("/var/lib/apt/lists")
    before = (DPKG_STATUS.stat().st_mtime_ns, lists.stat().st_mtime_ns)
    sink = ListSink()
    stats = PatchCollector(timeout_s=120).run(sink)
    assert stats.status == "ok", stats.last_error
    assert (DPKG_STATUS.stat().st_mtime_ns, lists.stat().st_mtime_ns) == before
    [item] = sink.items
    data = item.data
    assert item.type == "patch.status" and data["manager"] == "apt"
    assert not any(e.startswith("apt-get") for e in data["errors"]), data["errors"]
    assert data["pending_count"] == len(data["pending"]) and data["running_kernel"] == os.uname().release
    # The security count is exactly what Lynis's grep over the same simulation finds.
    text = run_command(["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"], 120).stdout
    inst = [line for line in text.splitlines() if line.startswith("Inst ")]
    assert data["pending_count"] == len(inst)
    assert data["security_count"] == sum("security" in line.lower() for line in inst)
    [model] = validate_items(sink.items)
    assert model.manager == "apt"


def debian_root(tmp_path: Path) -> Path:
    """A Debian-shaped fixture root: dpkg status, lists, history, /boot kernels, reboot flag."""
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("Package: bash\nStatus: install ok installed\nVersion: 5.2\n")
    (tmp_path / "var/lib/apt/lists").mkdir(parents=True)
    lists = tmp_path / "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"
    lists.write_text("")
    os.utime(lists, (1_700_000_000, 1_700_000_000))
    (tmp_path / "var/log/apt").mkdir(parents=True)
    shutil.copy(FIXTURES / "apt_history.log", tmp_path / "var/log/apt/history.log")
    (tmp_path / "boot").mkdir()
    for release in ("6.1.0-25-amd64", "6.1.0-26-amd64"):
        (tmp_path / f"boot/vmlinuz-{release}").write_text("")
    (tmp_path / "run").mkdir()
    (tmp_path / "run/reboot-required").write_text("*** System restart required ***\n")
    (tmp_path / "run/reboot-required.pkgs").write_text("linux-image-6.1.0-26-amd64\n")
    return tmp_path


def test_debian_fixture_root(tmp_path):
    root = debian_root(tmp_path)
    runner = FakeRunner({("apt-get", "upgrade"): CommandResult(0, (FIXTURES / "debian12_apt_upgrade.txt").read_text())})
    collector = PatchCollector(root=root, runner=runner, which=lambda name: f"/usr/bin/{name}",
                               kernel_release="6.1.0-25-amd64", clock=lambda: 1_700_003_600.0)
    [item] = list(collector.collect())
    data = item.data
    assert runner.calls == [["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"]]
    assert (data["manager"], data["pending_count"], data["security_count"]) == ("apt", 9, 4)
    assert data["held_back"] == ["linux-image-amd64"] and data["lists_age_s"] == 3600.0
    assert data["last_update"] == "2023-11-14T22:13:20+00:00" and data["last_upgrade"].startswith("2024-05-02T10:11:12")
    assert (data["newest_kernel"], data["kernel_outdated"]) == ("6.1.0-26-amd64", True)
    assert data["reboot_required"] is True and data["reboot_packages"] == ["linux-image-6.1.0-26-amd64"]
    assert data["errors"] == []
    validate_items([item])


def test_outdated_kernel_needs_a_reboot_even_without_the_flag_file(tmp_path):
    root = debian_root(tmp_path)
    (root / "run/reboot-required").unlink()
    runner = FakeRunner({("apt-get", "upgrade"): CommandResult(0, "")})
    collector = PatchCollector(root=root, runner=runner, which=lambda name: name, kernel_release="6.1.0-25-amd64")
    [item] = list(collector.collect())
    assert item.data["reboot_required"] is True
    assert item.data["reboot_packages"] == ["linux-image-6.1.0-26-amd64"]


def test_apt_failure_is_reported_not_raised(tmp_path):
    root = debian_root(tmp_path)
    runner = FakeRunner({("apt-get", "upgrade"): CommandResult(100, "", "E: Could not open lock file")})
    collector = PatchCollector(root=root, runner=runner, which=lambda name: name, kernel_release="6.1.0-26-amd64")
    [item] = list(collector.collect())
    assert item.data["pending"] == [] and item.data["pending_count"] == 0
    assert item.data["errors"] == ["apt-get -s upgrade: exited 100: E: Could not open lock file"]
    assert item.data["kernel_outdated"] is False
    validate_items([item])
    disabled = PatchCollector(root=root, runner=runner, run_apt=False, which=lambda name: name,
                              kernel_release="6.1.0-26-amd64")
    assert "disabled" in next(iter(disabled.collect())).data["errors"][0]


def rhel_root(tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir()
    for release in ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.31.1.el9_4.x86_64"):
        (boot / f"vmlinuz-{release}").write_text("")
    repomd = tmp_path / "var/cache/dnf/baseos-044cae74d71fe9ea/repodata/repomd.xml"
    repomd.parent.mkdir(parents=True)
    repomd.write_text("<repomd/>")
    os.utime(repomd, (1_700_000_000, 1_700_000_000))
    return tmp_path


def test_rhel_fixture_root_with_dnf(tmp_path):
    root = rhel_root(tmp_path)
    runner = FakeRunner({
        ("dnf", "check-update"): CommandResult(100, (FIXTURES / "dnf_check_update.txt").read_text()),
        ("dnf", "--security"): CommandResult(0, (FIXTURES / "dnf_updateinfo_security.txt").read_text()),
        ("needs-restarting", "-r"): CommandResult(1, (FIXTURES / "needs_restarting_reboot.txt").read_text()),
    })
    present = {"dnf", "needs-restarting"}
    collector = PatchCollector(root=root, runner=runner, which=lambda n: n if n in present else None,
                               kernel_release="5.14.0-427.13.1.el9_4.x86_64", clock=lambda: 1_700_000_060.0)
    [item] = list(collector.collect())
    data = item.data
    assert (data["manager"], data["pending_count"], data["security_count"]) == ("dnf", 8, 4)
    assert data["lists_age_s"] == 60.0 and data["kernel_outdated"] is True
    assert data["reboot_required"] is True and data["reboot_packages"] == ["glibc", "kernel", "systemd"]
    assert data["errors"] == []
    validate_items([item])


def test_rhel_cache_missing_and_no_needs_restarting_falls_back_to_kernel(tmp_path):
    root = rhel_root(tmp_path)
    no_cache = CommandResult(1, "", "Error: Cache-only enabled but no cache for 'base'")
    runner = FakeRunner({("yum", "check-update"): no_cache})
    collector = PatchCollector(root=root, runner=runner, which=lambda n: n if n == "yum" else None,
                               kernel_release="5.14.0-427.13.1.el9_4.x86_64")
    [item] = list(collector.collect())
    data = item.data
    assert data["manager"] == "yum" and data["pending"] == []
    assert data["errors"][0].startswith("yum check-update: exited 1: Error: Cache-only")
    assert data["reboot_required"] is True  # a newer kernel is installed than the one running
    validate_items([item])


def test_no_manager(tmp_path):
    collector = PatchCollector(root=tmp_path, runner=FakeRunner({}), which=lambda n: None, kernel_release="6.1.0")
    [item] = list(collector.collect())
    assert item.data["manager"] == "none" and item.data["reboot_required"] is False
    assert "no apt-get, dnf or yum" in item.data["errors"][0]
    validate_items([item])


def test_pending_list_is_capped_but_counted(tmp_path):
    root = debian_root(tmp_path)
    lines = "\n".join(f"Inst pkg{i} [1.0] (1.1 Debian-Security:12/stable-security [amd64])" for i in range(20_050))
    collector = PatchCollector(root=root, runner=FakeRunner({("apt-get", "upgrade"): CommandResult(0, lines)}),
                               which=lambda n: n, kernel_release="6.1.0-26-amd64")
    [item] = list(collector.collect())
    assert len(item.data["pending"]) == 20_000 and item.data["pending_count"] == item.data["security_count"] == 20_050
    validate_items([item])


def test_run_command_never_raises():
    assert run_command(["sleep", "5"], 0.2).error == "sleep: timed out after 0.2s"
    assert run_command(["/nonexistent/apt-get"], 1).error.startswith("/nonexistent/apt-get: ")
    done = run_command(["sh", "-c", "echo $LANG; exit 3"], 5)
    assert (done.returncode, done.stdout.strip(), done.error) == (3, "C", None)


def test_runs_first_daily_and_again_after_package_changes(tmp_path):
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text("")
    now = [1_000_000.0]
    collector = PatchCollector(root=tmp_path, run_apt=False, which=lambda name: "/usr/bin/" + name
                               if name == "apt-get" else None, clock=lambda: now[0], kernel_release="6.1.0-9-amd64")
    assert [i.type for i in collector.collect()] == ["patch.status"]
    now[0] += 600
    assert list(collector.collect()) == []  # nothing changed: the expensive simulation is not repeated
    os.utime(status, (now[0], now[0]))  # a package was installed or removed
    assert len(list(collector.collect())) == 1
    now[0] += 86_400
    assert len(list(collector.collect())) == 1  # daily regardless
