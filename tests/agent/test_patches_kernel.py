"""Kernel release ordering, flavour matching, and installed kernels from /boot or dpkg."""

from __future__ import annotations

import pytest

from agent.collectors.patches import kernel


@pytest.mark.parametrize(("older", "newer"), [
    ("6.1.0-9-amd64", "6.1.0-18-amd64"),            # string order gets this wrong
    ("5.15.0-97-generic", "5.15.0-105-generic"),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.28.1.el9_4.x86_64"),
    ("5.14.0-427.28.1.el9_4.x86_64", "5.14.0-503.11.1.el9_5.x86_64"),
    ("4.18.0-553.el8_10.x86_64", "4.18.0-553.5.1.el8_10.x86_64"),
    ("3.10.0-1160.el7.x86_64", "3.10.0-1160.119.1.el7.x86_64"),
    ("6.1.0-18-amd64", "6.10.0-1-amd64"),
    ("6.1~rc1", "6.1"),                             # tilde sorts before the end, as in dpkg
])
def test_release_order(older, newer):
    assert kernel.compare_releases(older, newer) == -1
    assert kernel.compare_releases(newer, older) == 1
    assert kernel.compare_releases(newer, newer) == 0


@pytest.mark.parametrize(("release", "flavour"), [
    ("6.1.0-18-amd64", "amd64"), ("6.1.0-18-cloud-amd64", "cloud-amd64"), ("5.15.0-105-generic", "generic"),
    ("6.8.0-1012-aws", "aws"), ("5.14.0-427.13.1.el9_4.x86_64", ""), ("5.14.0-427.13.1.el9_4.x86_64+debug", "debug"),
])
def test_flavour(release, flavour):
    assert kernel.flavour(release) == flavour


def test_newest_prefers_the_running_flavour():
    installed = ["6.1.0-18-amd64", "6.1.0-25-cloud-amd64", "6.1.0-21-amd64"]
    assert kernel.newest_kernel("6.1.0-18-amd64", installed) == "6.1.0-21-amd64"
    assert kernel.newest_kernel("6.1.0-18-rt-amd64", installed) == "6.1.0-25-cloud-amd64"  # no rt installed
    assert kernel.newest_kernel("6.1.0-18-amd64", []) is None


def test_boot_kernels_skip_rescue_and_other_files(tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    for name in ["vmlinuz-5.14.0-427.13.1.el9_4.x86_64", "vmlinuz-5.14.0-427.31.1.el9_4.x86_64",
                 "vmlinuz-0-rescue-0123456789abcdef", "initramfs-5.14.0-427.13.1.el9_4.x86_64.img", "vmlinuz"]:
        (boot / name).write_text("")
    assert sorted(kernel.boot_kernels(tmp_path)) == ["5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.31.1.el9_4.x86_64"]
    fields, error = kernel.kernel_status(tmp_path, "5.14.0-427.13.1.el9_4.x86_64")
    assert fields == {"running_kernel": "5.14.0-427.13.1.el9_4.x86_64",
                      "newest_kernel": "5.14.0-427.31.1.el9_4.x86_64", "kernel_outdated": True}
    assert error is None
    fields, _ = kernel.kernel_status(tmp_path, "5.14.0-427.31.1.el9_4.x86_64")
    assert fields["kernel_outdated"] is False


DPKG_STATUS = """\
Package: linux-image-amd64
Status: install ok installed
Version: 6.1.112-1

Package: linux-image-6.1.0-25-amd64
Status: install ok installed
Version: 6.1.106-3

Package: linux-image-6.1.0-26-amd64
Status: install ok installed
Version: 6.1.112-1

Package: linux-image-6.1.0-27-amd64
Status: deinstall ok config-files
Version: 6.1.115-1
"""


def test_dpkg_kernels_when_boot_is_empty(tmp_path):
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(DPKG_STATUS)
    assert kernel.dpkg_kernels(tmp_path) == ["6.1.0-25-amd64", "6.1.0-26-amd64"]  # no meta, no config-files
    fields, error = kernel.kernel_status(tmp_path, "6.1.0-25-amd64")
    assert fields["newest_kernel"] == "6.1.0-26-amd64" and fields["kernel_outdated"] is True and error is None


def test_no_kernel_installed_is_unknown(tmp_path):
    fields, error = kernel.kernel_status(tmp_path, "6.18.44")
    assert fields["kernel_outdated"] is None and fields["newest_kernel"] is None
    assert "no installed kernel" in error
